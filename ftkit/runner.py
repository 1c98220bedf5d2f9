"""Run a runbook with papermill and archive what it did (what ``ftkit run`` calls).

::

    entry = run_runbook("readiness-check", {"system": "sim://lab", "config": "upgrade.toml"})
    entry.outcome, entry.html        # 'checked', '20250301T020000Z-readiness-check.html'

A runbook is a name in the ``runbooks/`` folder (``$FTKIT_RUNBOOKS``, else the one beside
the ftkit package) or a path. Parameters are checked against the notebook's
``parameters`` cell before anything runs (:mod:`ftkit.preflight`). Whether the run
succeeds or fails, the executed notebook goes to the report archive
(:func:`ftkit.archive.archive_run`); a failure is then raised as one-line
:class:`~ftkit.errors.FtkitError`. papermill is imported only when a runbook is run: its
parameters are read with ``json`` and ``ast``.
"""

from __future__ import annotations

import ast
import copy
import io
import json
import os
import tempfile
import threading
import tokenize
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ftkit import home
from ftkit.archive import LedgerEntry, archive_run
from ftkit.errors import FtkitError, SessionBusyError
from ftkit.redact import register_env_secrets, scrub, secret_values

__all__ = [
    "Executed",
    "controlling",
    "execute",
    "find_file",
    "now",
    "parameter_value",
    "parse_cli_value",
    "record_app_run",
    "resolve_runbook",
    "run_runbook",
    "runbook_parameters",
    "runbook_title",
    "runbooks_folder",
]


def now() -> datetime:
    """The wall-clock time in UTC (patch this in tests)."""
    return datetime.now(UTC)


def runbooks_folder(runbooks_dir: Path | None = None) -> Path:
    """RUNBOOKS_DIR, else ``$FTKIT_RUNBOOKS``, else ``runbooks/`` beside the ftkit package."""
    if runbooks_dir is not None:
        return Path(runbooks_dir)
    env = os.environ.get("FTKIT_RUNBOOKS")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent / "runbooks"


def resolve_runbook(runbook: str | Path, *, runbooks_dir: Path | None = None) -> Path:
    """The notebook file RUNBOOK names: a path, or a name (``.ipynb`` optional) in the folder."""
    text = str(runbook)
    as_path = Path(text).expanduser()
    if as_path.is_file():
        return as_path
    folder = runbooks_folder(runbooks_dir)
    looks_like_path = os.sep in text or "/" in text
    if not looks_like_path:
        name = text if text.endswith(".ipynb") else f"{text}.ipynb"
        candidate = folder / name
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in folder.glob("*.ipynb")) if folder.is_dir() else []
    where = f"file {as_path}" if looks_like_path else f"runbook {text!r} in {folder}"
    raise FtkitError(
        f"no {where}",
        f"use one of: {', '.join(known)}" if known else "set $FTKIT_RUNBOOKS or give a path",
    )


def runbook_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """The parameters a runbook declares in its cell tagged ``parameters``; read-only.

    ``{name: {"name", "inferred_type_name", "default", "help"}}`` in the cell's order, as
    ``papermill.inspect_notebook`` gives them: ``default`` is the value's source text,
    ``help`` the comment on its line. Read with ``json`` and ``ast`` only, so listing the
    runbooks (``ftkit run --help``) and checking a run's parameters cost no notebook
    machinery's start-up. A notebook that cannot be read is an FtkitError.
    """
    try:
        stat = Path(path).stat()
        key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
        if key in _DECLARED:  # a campaign checks one runbook for each of its systems
            return copy.deepcopy(_DECLARED[key])
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
        cells = notebook.get("cells", []) if isinstance(notebook, dict) else []
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise FtkitError(f"cannot read runbook {path}: {err}",
                         "give a notebook (.ipynb) written by Jupyter") from None
    declared = _parameters_cell(cells, path)
    _DECLARED.clear()
    _DECLARED[key] = declared
    return copy.deepcopy(declared)


#: ast.parse (and literal_eval) is not thread-safe on Python 3.11: its AST constructor's
#: recursion depth is shared ("SystemError: AST constructor recursion depth mismatch"), and
#: a Dask worker checks the runbooks of the systems it runs side by side, one a thread
_AST_LOCK = threading.Lock()

#: the last runbook read by runbook_parameters, keyed by (path, mtime, size)
_DECLARED: dict[tuple[str, int, int], dict[str, dict[str, Any]]] = {}


def _parameters_cell(cells: list[Any], path: Path) -> dict[str, dict[str, Any]]:
    for cell in cells:
        tags = (cell.get("metadata") or {}).get("tags") or []
        if cell.get("cell_type") == "code" and "parameters" in tags:
            source = cell.get("source", "")
            return _declared(source if isinstance(source, str) else "".join(source), path)
    return {}


def _declared(source: str, path: Path) -> dict[str, dict[str, Any]]:
    """The assignments of a parameters cell's SOURCE, with the comment on each one's line."""
    try:
        with _AST_LOCK:
            tree = ast.parse(source)
    except SyntaxError as err:
        raise FtkitError(f"runbook {path} has a parameters cell that is not Python ({err.msg}, "
                         f"line {err.lineno})", "fix the cell tagged parameters") from None
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    declared: dict[str, dict[str, Any]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, annotation = node.targets[0], None
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, annotation = node.target, node.annotation
        else:
            continue
        if not isinstance(target, ast.Name) or node.value is None:
            continue
        # as papermill: a value over several lines is joined, each line stripped
        default = "".join(line.strip() for line in
                          (ast.get_source_segment(source, node.value) or "").splitlines())
        declared[target.id] = {
            "name": target.id,
            # as papermill: the annotation's text, else "None"
            "inferred_type_name": (ast.get_source_segment(source, annotation) or "None")
            if annotation is not None else "None",
            "default": default,
            "help": comments.get(node.end_lineno or node.lineno, ""),
        }
    return declared


def runbook_title(path: Path) -> str:
    """The first heading of a runbook's first markdown cell ("" if none); read-only."""
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return ""
    for cell in notebook.get("cells", []) if isinstance(notebook, dict) else []:
        if cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            text = source if isinstance(source, str) else "".join(source)
            for line in text.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
            return ""
    return ""


def parse_cli_value(text: str) -> Any:
    """A ``-p NAME VALUE`` string as papermill's ``-p`` reads it, plus YAML/JSON collections.

    ``True``/``False``/``None``, ints and floats convert as papermill does; text starting
    with ``{`` or ``[`` is read with ``yaml.safe_load`` (so ``{split: proceed}`` is a dict);
    anything else stays a string.
    """
    if text == "True":
        return True
    if text == "False":
        return False
    if text == "None":
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if text.lstrip().startswith(("{", "[")):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise FtkitError(
                f"cannot read {text!r} as a mapping or list ({mark})",
                "write it like {split: proceed, merge: proceed} or as JSON",
            ) from None
    return text


def run_runbook(
    runbook: str,
    parameters: Mapping[str, Any],
    *,
    reports: Path | None = None,
    runbooks_dir: Path | None = None,
    kernel_name: str | None = None,
    progress: bool = False,
) -> LedgerEntry:
    """Execute RUNBOOK with PARAMETERS through papermill and archive it under REPORTS.

    Unknown parameters, bad values, files and decisions, and interactive mode are refused
    before anything runs (:func:`ftkit.preflight.check_run`). Returns the ledger entry
    (check its ``outcome``: a run whose notebook reports no result is ``failed``). If
    execution fails the run is archived as ``failed`` and an :class:`FtkitError` with
    papermill's ``ename: evalue`` is raised.
    """
    path = resolve_runbook(runbook, runbooks_dir=runbooks_dir)
    params = dict(parameters)
    from ftkit.preflight import check_run

    # ftkit run checked the system and session too
    config, _packages = check_run(path, params, system=False)
    if config is not None:  # the archive masks them too, whatever the kernel printed
        register_env_secrets(config.secret_env)
    reports = Path(reports) if reports is not None else home.reports_dir()
    preflight_archive(reports)  # before anything changes: the record can be kept
    with controlling(path, params), tempfile.TemporaryDirectory(prefix="ftkit-run-") as scratch:
        output = Path(scratch) / path.name
        started = now()
        try:
            ran = execute(path, params, output, kernel_name=kernel_name, progress=progress)
        except KeyboardInterrupt:
            _archive_failure(output, path, params, started, reports, "interrupted")
            raise
        if ran.error is not None:
            entry = _archive_failure(output, path, params, ran.started, reports, ran.error)
            if ran.finished:
                raise FtkitError(f"runbook {path.stem} failed: {ran.error}", _see(entry, reports))
            remedy = (_see(entry, reports) if entry
                      else "check the kernel (--kernel) and the runbook")
            # it may have run part of the way (a kernel that died mid-step): "did not finish";
            # a session it left is resumed by the next run of the runbook
            raise FtkitError(f"runbook {path.stem} did not finish: {ran.error}",
                             f"{remedy}; run it again to resume what it left")
        entry = archive_run(
            output,
            runbook=path.stem,
            parameters=params,
            started=ran.started,
            ended=ran.ended,
            reports=reports,
        )
        anchor(entry, reports=reports)
        return entry


@dataclass(frozen=True)
class Executed:
    """How one papermill execution of a runbook went (:func:`execute`)."""

    started: datetime
    ended: datetime
    #: None when every cell ran; else one line: the runbook's own error, or why it stopped
    error: str | None = None
    #: False when the kernel died, timed out or never started (the run may be half done)
    finished: bool = True
    #: True when no cell ran at all (the kernel did not start): safe to try again
    unstarted: bool = False


def execute(path: Path, params: Mapping[str, Any], output: Path, *,
            kernel_name: str | None = None, progress: bool = False) -> Executed:
    """Execute the runbook at PATH with PARAMS through papermill into OUTPUT; archives
    nothing (:func:`run_runbook` and a campaign's controller do). Writes OUTPUT (also when
    a cell fails, if papermill got that far); the caller holds the system's lock
    (:func:`controlling`). KeyboardInterrupt is raised as it comes."""
    papermill = load_papermill()
    from papermill.exceptions import PapermillExecutionError

    from ftkit.lock import handoff_env

    secrets = secret_values(params)
    started = now()
    try:
        papermill.execute_notebook(
            str(path),
            str(output),
            parameters=dict(params),
            kernel_name=kernel_name,
            progress_bar=progress,
            log_output=False,
            # the kernel's own warnings (TCP on 127.0.0.1, HMAC-signed) are noise on an
            # operator's terminal; its errors still show. The executed notebook is the
            # record: no IPython history database (shared by every kernel of this account,
            # a write lock that concurrent runs of a campaign would queue on)
            extra_arguments=["--IPKernelApp.log_level=ERROR", "--HistoryManager.enabled=False"],
            # the lock this thread holds handed to this kernel by name, whatever other
            # threads of this process hold (a Dask worker runs systems side by side)
            kernel_manager_class=_asked_to_shut_down(env=handoff_env()),
        )
    except PapermillExecutionError as err:
        from ftkit.errors import is_ftkit_error

        said = _first_line(err.evalue, secrets)
        return Executed(started, now(), said if is_ftkit_error(err.ename)
                        else f"{err.ename}: {said}")
    except Exception as err:  # kernel died, timeout, no such kernel, …
        return Executed(started, now(), f"{type(err).__name__}: {_first_line(str(err), secrets)}",
                        finished=False, unstarted=not _any_cell_ran(output))
    return Executed(started, now())


def _asked_to_shut_down(*, env: Mapping[str, str]) -> type:
    """nbclient's kernel manager, except that the kernel is started with ENV over this
    process's environment, and that a kernel whose run is over is asked to shut down
    without a SIGINT first and terminated 1 s after the request rather than 2.5 s.

    jupyter_client interrupts before every shutdown request: an idle kernel hit by it
    prints "KeyboardInterrupt caught in kernel" into the operator's terminal. And now and
    then (about 1 run in 5 here) ipykernel's control thread hangs flushing its output
    after the shutdown reply, so the kernel lives until it is terminated; a kernel that
    exits does so in under 0.6 s, after everything the run wrote was committed. An
    interrupt while the run goes on (a cell's timeout) is still sent."""
    global _MANAGER
    if _MANAGER is None:
        from jupyter_client import AsyncKernelManager
        from traitlets import Float

        class AskedToShutDown(AsyncKernelManager):
            shutdown_wait_time = Float(2.0)  # half of it before SIGTERM, half before SIGKILL
            kernel_env: Mapping[str, str] = {}

            async def _async_pre_start_kernel(self, **kw: Any) -> Any:
                if self.kernel_env:
                    kw["env"] = {**(kw.get("env") or os.environ), **self.kernel_env}
                return await super()._async_pre_start_kernel(**kw)

            async def _async_interrupt_kernel(self) -> None:
                if not self.shutting_down:
                    await super()._async_interrupt_kernel()

            interrupt_kernel = _async_interrupt_kernel

        _MANAGER = AskedToShutDown
    return type(_MANAGER.__name__, (_MANAGER,), {"kernel_env": dict(env)})


_MANAGER: type | None = None


def _any_cell_ran(output: Path) -> bool:
    """Whether the notebook papermill left at OUTPUT shows any cell that ran (read-only)."""
    try:
        cells = json.loads(output.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return False
    return any(c.get("execution_count") for c in cells if isinstance(c, dict))


def serve_app(path: Path, params: Mapping[str, Any], *, port: int = 8866,
              browser: bool = False) -> int:
    """``ftkit app``: serve the runbook at PATH, its PARAMS injected (papermill's
    ``prepare_only``: nothing runs here), as an operator app without code through Voilà on
    127.0.0.1:PORT until interrupted. Each page opened runs the runbook in a kernel of its
    own (interactive mode: its panels are clicked in the page; a page opened again resumes
    the session where the journal stands). Writes the prepared notebook into a temporary
    folder, removed at the end; returns Voilà's exit status."""
    import subprocess
    import sys
    import tempfile

    papermill = load_papermill()

    with tempfile.TemporaryDirectory(prefix="ftkit-app-") as folder:
        app = Path(folder) / path.name
        papermill.execute_notebook(str(path), str(app), parameters=dict(params),
                                   prepare_only=True, progress_bar=False, log_output=False)
        # what a page's kernel needs to archive its record once its session ends
        # (record_app_run): Voilà's kernels inherit this environment
        env = {**os.environ, APP_RUNBOOK: str(path.resolve()),
               APP_PARAMETERS: json.dumps(dict(params), default=str)}
        command = [sys.executable, "-m", "voila", str(app), f"--port={port}",
                   "--Voila.ip=127.0.0.1", "--Voila.port_retries=0",
                   # outputs as each cell ends: a panel that waits for a click is shown
                   "--VoilaConfiguration.progressive_rendering=True"]
        if not browser:
            command.append("--no-browser")
        print(f"serving {path.stem} at http://127.0.0.1:{port}/ (Ctrl-C stops it)",
              flush=True)
        try:
            return subprocess.call(command, env=env)
        except KeyboardInterrupt:
            return 0


# the runbook and parameters ``ftkit app`` serves, handed to the page's kernels
APP_RUNBOOK = "FTKIT_APP_RUNBOOK"
APP_PARAMETERS = "FTKIT_APP_PARAMETERS"


def record_app_run(*, reports: Path | None = None) -> LedgerEntry | None:
    """Archive the record of an ``ftkit app`` page whose session just ended, the way
    ``ftkit run`` archives its runs: the runbook the app serves (``FTKIT_APP_RUNBOOK``,
    with its ``FTKIT_APP_PARAMETERS``, both set by :func:`serve_app` for its kernels) is
    run once more through papermill here — a run of a change that ended renders its whole
    record from the journal (each step done, each decision taken, the result) and changes
    nothing on the system — and that executed notebook goes to the archive under REPORTS
    (:func:`ftkit.archive.archive_run`, then :func:`anchor`). Writes the archive's files,
    its ledger line and one journal entry. Returns the ledger entry; None outside an app.

    Refused with a one-line :class:`FtkitError`, nothing archived: a session of that change
    that has not ended (its record would run the upgrade again), an archive that cannot be
    kept, a record whose notebook failed.
    """
    given = os.environ.get(APP_RUNBOOK)
    if not given:
        return None
    path = Path(given)
    params = json.loads(os.environ.get(APP_PARAMETERS) or "{}")
    from ftkit.preflight import check_run

    config, _packages = check_run(path, params, system=False, clicks=True)
    if config is not None:
        register_env_secrets(config.secret_env)
    _ended_change(path, params)
    reports = Path(reports) if reports is not None else home.reports_dir()
    preflight_archive(reports)
    with tempfile.TemporaryDirectory(prefix="ftkit-app-record-") as scratch:
        output = Path(scratch) / path.name
        ran = execute(path, params, output)
        if ran.error is not None:
            raise FtkitError(f"the app's record of {path.stem} could not be made: {ran.error}",
                             f"archive the page's run with ftkit run {path.stem} … or "
                             "ftkit reports add; the session itself ended as its journal says")
        entry = archive_run(output, runbook=path.stem, parameters=params, started=ran.started,
                            ended=ran.ended, reports=reports)
        anchor(entry, reports=reports)
        return entry


def _ended_change(path: Path, params: Mapping[str, Any]) -> None:
    """Refuse (one line) unless the change the app ran has a session that ended: its
    record is then a rendering that changes nothing. Read-only."""
    from ftkit.journal import Journal

    declared = runbook_parameters(path)
    system = str(parameter_value(params, declared, "system"))
    change = str(parameter_value(params, declared, "change_id"))
    with Journal.open(system) as journal:
        ended = [s for s in journal.sessions() if s.change_id == change and s.ended]
    if not ended:
        raise FtkitError(f"change {change} has no ended session on {system}: no record to "
                         "archive yet", "end the session in the app (commit or abort, then "
                         "Finish); its record is archived then")


def load_papermill() -> Any:
    """papermill, imported (once per process) without the IRI grammar: see below."""
    _without_iri_grammar()
    import papermill

    return papermill


def _without_iri_grammar() -> None:
    """Import papermill without the IRI grammar jsonschema builds at import time.

    papermill imports nbformat, which imports jsonschema, whose format checkers import the
    optional ``rfc3987_syntax`` when it is installed (jupyter-events pulls it in): about
    1.8 s of grammar compiling on every run, for an "iri" format that nothing ftkit or
    nbformat validates uses. jsonschema treats the package as optional; marking it absent
    in this process (never in a kernel) skips that checker and nothing else. Nothing is
    done when jsonschema was imported already (its checkers are built)."""
    import sys

    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


@contextmanager
def controlling(path: Path, params: Mapping[str, Any]) -> Iterator[None]:
    """Hold the controller lock of the system that a run of the runbook at PATH with
    PARAMS can change (it declares ``system`` and ``operator``, and does not run in plan
    mode) from before its kernel starts until the run ends, and hand it to that kernel
    (:func:`ftkit.lock.holding`): of runs racing for one system one goes on, the others
    are refused here with :class:`SessionBusyError` naming who drives it and since when,
    before a kernel starts and before anything is written but the lock file. Re-entrant
    (``ftkit run`` holds it while it checks the session, then runs). Nothing to hold for
    a run that changes nothing, or a system no process here can reach."""
    declared = runbook_parameters(path)
    mode = parameter_value(params, declared, "mode") if "mode" in declared else None
    if not {"system", "operator"} <= set(declared) or mode == "plan":
        yield
        return
    from ftkit.journal import lock_path_of
    from ftkit.lock import holding

    target = str(parameter_value(params, declared, "system"))
    where = lock_path_of(target)
    if where is None:
        yield
        return
    operator = parameter_value(params, declared, "operator") or "unknown"
    change = (parameter_value(params, declared, "change_id") if "change_id" in declared
              else "") or "no change id"
    with holding(where, holder=f"ftkit run {path.stem} by {operator} ({change})") as busy:
        if busy is not None:
            raise SessionBusyError(
                f"{target} is driven by {busy}",
                "wait for that run to end, or stop it; nothing was run or recorded here")
        yield


def preflight_archive(reports: Path) -> None:
    """Before a run changes anything: REPORTS can be written (a file is created and
    removed there) and its ledger verifies (incrementally, from its checkpoint). Raises a
    one-line FtkitError otherwise; an upgrade never commits only to find that its record
    cannot be kept."""
    from ftkit.archive import verify_reports

    try:
        reports.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=reports, prefix=".ftkit-preflight-"):
            pass
    except OSError as err:
        raise FtkitError(f"the reports folder {reports} cannot be written ({err.strerror})",
                         "fix its permissions or set $FTKIT_REPORTS elsewhere, then run "
                         "again; nothing was changed") from None
    problems = verify_reports(reports, since_checkpoint=True)
    if problems:
        raise FtkitError(f"the archive in {reports} does not verify: {problems[0]}",
                         "run ftkit reports verify, restore it from a backup, then run "
                         "again; nothing was changed")


def anchor(entry: LedgerEntry, *, reports: Path | None = None) -> None:
    """Journal the archived run's ledger entry (seq and hash) with its system, and the
    checkpoint written for it in REPORTS (:func:`ftkit.checkpoints.journal_detail`), so
    that a dropped tail or entry, an emptied archive or an edited, re-chained ledger is
    found by ``ftkit reports verify``. One journal transaction; the journal is made if the
    system has none yet (a readiness check is anchored like an upgrade). A system that
    cannot be reached is skipped."""
    if not entry.system:
        return
    from ftkit.drivers import connect
    from ftkit.journal import Journal

    try:
        driver = connect(entry.system)
    except FtkitError:
        return
    try:
        from ftkit.checkpoints import journal_detail

        detail = journal_detail(reports or home.reports_dir(), seq=entry.seq,
                                entry=entry.to_dict())
        with Journal.of(driver) as journal:
            journal.log(None, "info", f"archived {entry.runbook} ({entry.outcome}) as ledger "
                        f"entry {entry.seq}", step="checkpoint", detail=detail)
    finally:
        driver.close()


def find_file(name: str | os.PathLike[str], *, parameter: str = "file",
              runbooks_dir: Path | None = None) -> Path:
    """The file a runbook parameter names, found as the runbooks find it: from the current
    folder, else the runbooks folder, else its parent (the repository root); read-only.

    So ``"../examples/demo-config.toml"`` works whether a run starts from the repository
    root or from ``runbooks/``.
    """
    given = Path(name).expanduser()
    folder = runbooks_folder(runbooks_dir)
    candidates = [given] if given.is_absolute() else [Path.cwd() / given, folder / given,
                                                       folder.parent / given]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise FtkitError(
        f"no file {str(name)!r} for parameter {parameter} (looked in the current folder, "
        f"{folder.name}/ and the folder above)",
        f"check -p {parameter}: a relative path starts from the current folder or the "
        "repository root")


def parameter_value(params: Mapping[str, Any], declared: Mapping[str, Any], name: str) -> Any:
    """PARAMS[NAME], else the runbook's default for it (a Python literal in its source)."""
    if name in params:
        return params[name]
    default = declared[name].get("default", "") if isinstance(declared[name], Mapping) else ""
    try:
        with _AST_LOCK:
            return ast.literal_eval(str(default))
    except (ValueError, SyntaxError):
        return str(default)


def _first_line(text: str, secrets: set[str]) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return scrub(lines[0], extra=secrets) if lines else ""


def _see(entry: LedgerEntry | None, reports: Path) -> str:
    """Where the report of a failed run is: its file in its folder (read-only)."""
    if entry is None:
        return "nothing was archived"
    return f"see the report {reports / (entry.html or entry.notebook or '')}"


def _archive_failure(
    output: Path,
    runbook: Path,
    params: dict[str, Any],
    started: datetime,
    reports: Path,
    reason: str,
) -> LedgerEntry | None:
    """Archive a failed run if papermill left an output notebook; else None."""
    if not output.is_file():
        return None
    entry = archive_run(
        output,
        runbook=runbook.stem,
        parameters=params,
        started=started,
        ended=now(),
        reports=reports,
        error=reason,
    )
    anchor(entry, reports=reports)
    return entry
