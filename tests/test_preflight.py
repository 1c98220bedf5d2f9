"""The one check before a run (:mod:`ftkit.preflight`): every runbook parameter's hostile
values are refused by :func:`ftkit.preflight.check_run` (what ``ftkit run`` calls before a
kernel starts) with one line of exit status 2, and nothing is created; the command line
prints no control character raw; a ``host://`` FIFO or device is refused at once; a full
disk is one line.

hypothesis draws the hostile values; a handful of ``ftkit`` subprocesses prove the command
line's path end to end.
"""

from __future__ import annotations

import errno
import json
import math
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFIG, DECISIONS, PACKAGES, REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftkit.cli import main
from ftkit.cli.codes import EXIT_BAD_INPUT, exit_code
from ftkit.errors import FtkitError
from ftkit.preflight import PARAMETERS, check_run, check_value, visible
from ftkit.runner import runbook_parameters

RUNBOOKS = REPO / "runbooks"
BOOKS = sorted(p.stem for p in RUNBOOKS.glob("*.ipynb"))
#: What every hostile value's run would otherwise be: valid, so that only the value is wrong.
VALID: dict[str, Any] = {
    "system": "sim://preflight", "config": str(CONFIG), "packages": [str(p) for p in PACKAGES],
    "mode": "auto", "decisions": DECISIONS, "soak_minutes": 0, "change_id": "CHG-PF",
    "operator": "alice", "reason": "monthly patches", "scenario": "demo", "time_scale": 0.0,
    "handover": False, "window_start": "", "window_end": "",
    "campaign": str(REPO / "examples" / "campaign.toml"), "scheduler": "",
}
#: The parameters whose value is a name or text (any plain string is one of them).
NAMES = ("operator", "change_id", "reason")

# a character that can clear a screen, fake a line or reorder one
UNSAFE = st.one_of(
    st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp"]),
    st.sampled_from(["\x1b", "\n", "\r", "\x00", "\u202e", "\u2066", "\u200f", "\u2028"]),
)
NUMBERS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, -1.5, -1e-9, 10**4000]),
    st.floats(max_value=-1e-300),  # negative, or -inf
    st.floats(allow_nan=True, allow_infinity=True).filter(
        lambda x: not math.isfinite(x) or x > 1e9),  # nan, inf, huge
)
TEXT = st.builds(lambda a, c, b: a + c + b, st.text("abcXYZ-_ ", max_size=8), UNSAFE,
                 st.text("abcXYZ-_ ", max_size=8))
PATHS = st.sampled_from(["../../etc/passwd", "/etc/passwd", "FIFO", "/dev/zero", "DIR",
                         "sim:///dev/zero", "host://FIFO", "host:///dev/zero", "host://DIR",
                         "sim://../escape", "sim://TWIN"])
PATHISH = ("system", "config", "packages", "scenario", "mode", "decisions", "soak_minutes",
           "time_scale", "handover", "campaign")


def hostile(name: str) -> st.SearchStrategy[Any]:
    """Values parameter NAME must refuse."""
    strategies = [NUMBERS, TEXT]
    if name in PATHISH:
        strategies.append(PATHS)
    if name not in NAMES:
        strategies.append(st.just([["nested"]]) if name != "decisions" else st.just([]))
    return st.one_of(strategies)


def declared(book: str) -> dict[str, Any]:
    return runbook_parameters(RUNBOOKS / f"{book}.ipynb")


def valid_params(book: str) -> dict[str, Any]:
    return {name: VALID[name] for name in declared(book)}


PAIRS = sorted((book, name) for book in BOOKS for name in declared(book))


@pytest.fixture
def hostile_files(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A FIFO (with a .db twin FIFO beside it) and a folder to name."""
    fifo, twin = tmp_path / "fifo.toml", tmp_path / "fifo.db"
    os.mkfifo(fifo)
    os.mkfifo(twin)
    folder = tmp_path / "folder"
    folder.mkdir()
    yield {"FIFO": str(fifo), "DIR": str(folder), "TWIN": str(twin)}


@pytest.fixture
def existing(capsys: pytest.CaptureFixture[str]) -> str:
    """The system every run here names, created: so that a refusal is the value's own
    (the abort and status runbooks refuse a system that does not exist)."""
    assert main(["sim", "create", "preflight"]) == 0
    capsys.readouterr()
    return "sim://preflight"


def resolve(value: Any, files: dict[str, str]) -> Any:
    """A placeholder of PATHS (``FIFO``, ``host://DIR``, …) as the path it stands for."""
    if isinstance(value, str):
        for key, path in files.items():
            if value == key:
                return path
            if value.endswith("://" + key):
                return value[: -len(key)] + path
    return value


def snapshot(root: Path) -> list[tuple[str, int]]:
    """Every file under ROOT with its size (what "nothing created" compares)."""
    if not root.exists():
        return []
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*")
                  if p.is_file() or p.is_dir())


def refused_one_line(call: Callable[[], Any]) -> FtkitError:
    try:
        call()
    except FtkitError as err:
        assert exit_code(err) == EXIT_BAD_INPUT, f"{type(err).__name__}: {err}"
        assert "\n" not in str(err) and "\r" not in str(err), repr(err)
        assert not any(c in str(err) for c in "\x1b\u202e\u2066\u2028"), repr(err)
        assert err.message and err.remedy, repr(err)
        return err
    raise AssertionError("accepted")


# --- the public check ftkit run makes ---------------------------------------------------------


def test_every_declared_parameter_has_a_check() -> None:
    assert {name for book in BOOKS for name in declared(book)} <= set(PARAMETERS)


@pytest.mark.parametrize("book", BOOKS)
def test_valid_parameters_pass_and_create_nothing(book: str, ftkit_dirs: Any,
                                                  existing: str) -> None:
    params = valid_params(book)
    before = snapshot(ftkit_dirs.home)
    config, packages = check_run(RUNBOOKS / f"{book}.ipynb", params)
    assert (config is None) == ("config" not in params)
    assert (packages is None) == ("packages" not in params)
    assert snapshot(ftkit_dirs.home) == before and not ftkit_dirs.reports.exists()


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_values_are_refused_in_one_line_and_create_nothing(
        data: st.DataObject, ftkit_dirs: Any, hostile_files: dict[str, str],
        existing: str) -> None:
    book, name = data.draw(st.sampled_from(PAIRS), label="runbook, parameter")
    value = resolve(data.draw(hostile(name), label=name), hostile_files)
    before = snapshot(ftkit_dirs.home)
    refused_one_line(lambda: check_run(RUNBOOKS / f"{book}.ipynb",
                                       {**valid_params(book), name: value}))
    assert snapshot(ftkit_dirs.home) == before  # no system file, no journal
    assert not (ftkit_dirs.reports / "ledger.jsonl").exists()  # no ledger row


@pytest.mark.parametrize(("name", "value", "said"), [
    ("time_scale", math.inf, "time_scale must be a finite number, not inf"),
    ("time_scale", 1e300, "time_scale 1e+300 is not between 0 and 1000"),
    ("time_scale", -1, "time_scale -1 is not between 0 and 1000"),
    ("soak_minutes", math.nan, "soak_minutes must be a finite number"),
    ("scenario", "../../etc/passwd", "a scenario is a name, not a path"),
    ("operator", "eve\x1b[2J", r"operator eve\x1b[2J holds the control or format "
                               r"character \x1b"),
    ("change_id", "CHG-1\nCHG-2", r"holds the control or format character \n"),
    ("reason", "ok\u202eko", r"holds the control or format character \u202e"),
    ("reason", "x" * 2001, "reason is 2001 characters, more than 2000"),
    ("system", "host:///dev/zero", "is not a regular file"),
])
def test_a_refusal_says_which_parameter_and_why(name: str, value: Any, said: str) -> None:
    err = refused_one_line(lambda: check_run(RUNBOOKS / "active-upgrade.ipynb",
                                             {**valid_params("active-upgrade"), name: value}))
    assert said in str(err)


def test_an_integer_change_id_is_a_name() -> None:
    assert check_value("change_id", 1234) == 1234  # -p change_id 1234 arrives as an int


def test_the_runbook_first_cell_makes_the_same_check() -> None:
    from ftkit_widgets import check_mode

    for bad in ({"operator": "a\x1bb"}, {"reason": "r\u2066"}, {"change_id": "C\r"}):
        kwargs = {"operator": "al", "reason": "r", "change_id": "C1", **bad}
        refused_one_line(lambda kw=kwargs: check_mode("auto", DECISIONS, **kw))
    assert check_mode("auto", DECISIONS, operator="al", reason="r", change_id="C1") is not None


def test_sim_create_refuses_a_time_scale_that_is_not_finite(
        capsys: pytest.CaptureFixture[str], ftkit_dirs: Any) -> None:
    for scale in ("nan", "inf", "-1", "1e308"):
        assert main(["sim", "create", "lab", "--time-scale", scale]) == EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--time-scale" in err, err
    assert snapshot(ftkit_dirs.home / "systems") == []


# --- what the command line prints ---------------------------------------------------------------


def test_visible_escapes_what_could_clear_a_screen_or_fake_a_line() -> None:
    assert visible("plain, ünïcødé — fine") == "plain, ünïcødé — fine"
    assert visible("a\x1b[2Jb\nc\u202ed\u2028") == r"a\x1b[2Jb\nc\u202ed\u2028"


def test_reports_list_prints_no_control_character_raw(capsys: pytest.CaptureFixture[str],
                                                      ftkit_dirs: Any) -> None:
    """A ledger line written by another tool (plain papermill, an old ftkit) may hold
    anything: ``reports list`` shows it escaped, on one line."""
    from ftkit.archive import read_ledger

    hostile = {"change_id": "CHG\x1b[2J\x1b[H", "operator": "eve\nseq 99 fake line",
               "runbook": "run\u202ekoobnur"}
    _archive_one(ftkit_dirs.reports, **hostile)
    assert read_ledger(ftkit_dirs.reports)[0].operator == hostile["operator"]
    capsys.readouterr()
    assert main(["reports", "list"]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\u202e\r") and len(out.splitlines()) == 3, out
    assert r"CHG\x1b[2J\x1b[H" in out and r"eve\nseq 99 fake line" in out


def _archive_one(reports: Path, **params: str) -> None:
    """One ledger line for an executed-looking notebook, archived by ftkit reports add."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    runbook = params.pop("runbook", "rb")
    nb = new_notebook(cells=[new_code_cell("1", execution_count=1)])
    nb.metadata["papermill"] = {"parameters": params, "input_path": f"{runbook}.ipynb"}
    path = reports.parent / "executed.ipynb"
    nbformat.write(nb, path)
    assert main(["reports", "add", str(path), "--runbook", runbook]) == 0


# --- host:// targets that are not regular files -----------------------------------------------


@pytest.mark.parametrize("what", ["FIFO", "DIR", "/dev/zero"])
def test_status_of_a_host_target_that_is_no_file_is_refused_at_once(
        what: str, capsys: pytest.CaptureFixture[str], hostile_files: dict[str, str]) -> None:
    target = "host://" + hostile_files.get(what, what)
    assert main(["status", target]) == EXIT_BAD_INPUT  # a FIFO would block: it returns
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("not a regular file" in err or "is a directory" in err)


def test_reports_verify_over_a_ledger_naming_a_fifo_neither_hangs_nor_reads(
        capsys: pytest.CaptureFixture[str], ftkit_dirs: Any,
        hostile_files: dict[str, str]) -> None:
    for system in ("host://" + hostile_files["FIFO"], "host:///dev/zero"):
        _archive_one(ftkit_dirs.reports, system=system, change_id="C", operator="o")
    capsys.readouterr()
    assert main(["reports", "verify"]) == 0
    assert "2 ledger entries" in capsys.readouterr().out


def test_reports_verify_does_not_wait_on_a_fifo_key_or_report(
        capsys: pytest.CaptureFixture[str], ftkit_dirs: Any,
        hostile_files: dict[str, str]) -> None:
    """A FIFO or device named as the public key, or put in an archived report's place, is
    refused (or found changed) at once: verify neither blocks nor reads without end."""
    for key in (hostile_files["FIFO"], "/dev/zero"):
        assert main(["reports", "verify", "--public-key", key]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is not a regular file" in err, err
    _archive_one(ftkit_dirs.reports, system="sim://x", change_id="C", operator="o")
    report = next(ftkit_dirs.reports.glob("*.html"))
    report.unlink()
    os.mkfifo(report)
    capsys.readouterr()
    assert main(["reports", "verify"]) == 1
    assert report.name in capsys.readouterr().err


# --- a full disk ------------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "where"), [
    (sqlite3.OperationalError("database or disk is full"), "FTKIT_HOME"),
    (OSError(errno.ENOSPC, "No space left on device", "/srv/reports/ledger.jsonl"),
     "/srv/reports/ledger.jsonl"),
])
def test_a_full_disk_is_one_line_with_the_remedy(
        error: Exception, where: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], ftkit_dirs: Any) -> None:
    from ftkit.sim import admin

    def full(*_a: Any, **_k: Any) -> None:
        try:
            raise error
        except Exception as inner:  # as deep in a write path: raised while handling it
            raise RuntimeError("the write failed") from inner

    monkeypatch.setattr(admin, "create", full)
    assert main(["sim", "create", "lab"]) == 1
    err = capsys.readouterr().err
    where = str(ftkit_dirs.home) if where == "FTKIT_HOME" else where
    assert err == (f"ftkit: the disk holding {where} is full — free space, then run again "
                   "(the run resumes)\n")


@pytest.mark.slow
def test_a_really_full_disk_is_one_line(tmp_path: Path) -> None:
    """``$FTKIT_HOME`` on a 256 KiB tmpfs, mounted in a mount namespace of its own (gone
    with the process): systems are created until the disk is full; that one says so in
    one line."""
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("no unshare (util-linux) here")
    home = tmp_path / "small"
    home.mkdir()
    script = (f"mount -t tmpfs -o size=256k tmpfs {home} || exit 77; "
              f"for i in $(seq 1 40); do {sys.executable} -m ftkit sim create s$i "
              ">/dev/null || exit 1; done")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                          text=True, cwd=REPO, env={**os.environ, "FTKIT_HOME": str(home)},
                          timeout=300, check=False)
    if done.returncode == 77 or "unshare" in done.stderr:
        pytest.skip(f"no tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 1
    assert done.stderr == (f"ftkit: the disk holding {home} is full — free space, then run "
                           "again (the run resumes)\n")


# --- ftkit run end to end (subprocesses: the command line's own path) ---------------------------


def _ftkit(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # the timeout guards the suite against a hang; it asserts nothing
    return subprocess.run([sys.executable, "-m", "ftkit", *argv], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120, check=False)


@pytest.fixture
def env(ftkit_dirs: Any) -> dict[str, str]:
    return {**os.environ, "FTKIT_HOME": str(ftkit_dirs.home),
            "FTKIT_REPORTS": str(ftkit_dirs.reports)}


def _run_upgrade(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return _ftkit("run", "active-upgrade", "-p", "system", "sim://e2e", "-p", "mode", "auto",
                  "-p", "decisions", json.dumps(DECISIONS), "-p", "change_id", "CHG-E2E",
                  "-p", "operator", "alice", *extra, env=env)


@pytest.mark.parametrize("extra", [
    ("-p", "time_scale", "inf"),
    ("-p", "scenario", "../../etc/passwd"),
    ("-p", "operator", "eve\x1b[2J\u202e"),
])
def test_ftkit_run_refuses_before_a_kernel_starts(extra: tuple[str, ...], env: dict[str, str],
                                                  ftkit_dirs: Any) -> None:
    done = _run_upgrade(env, *extra)
    assert done.returncode == EXIT_BAD_INPUT and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("ftkit: "), done.stderr
    assert "\x1b" not in done.stderr and "\u202e" not in done.stderr
    assert snapshot(ftkit_dirs.home) == [] and not ftkit_dirs.reports.exists()


@pytest.mark.slow
@pytest.mark.parametrize("extra", [
    ("-p", "time_scale", "1e300"), ("-p", "time_scale", "-1"), ("-p", "soak_minutes", "nan"),
    ("-p", "reason", "line one\nline two"), ("-p", "change_id", "CHG\u2066-1"),
    ("-p", "config", "/dev/zero"), ("-p", "system", "host:///dev/zero"),
])
def test_ftkit_run_refuses_more_before_a_kernel_starts(
        extra: tuple[str, ...], env: dict[str, str], ftkit_dirs: Any) -> None:
    test_ftkit_run_refuses_before_a_kernel_starts(extra, env, ftkit_dirs)


@pytest.mark.slow
@pytest.mark.notebook
def test_plain_papermill_refuses_them_too_before_anything_changes(tmp_path: Path,
                                                                 ftkit_dirs: Any) -> None:
    """Without ftkit run, the runbook's own first cells refuse them: check_mode (the same
    check) and the simulator, which creates a system only with a time scale preflight
    accepts and a scenario by name."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    base = {"system": "sim://nb-pf", "mode": "auto", "decisions": DECISIONS,
            "change_id": "CHG-NB", "operator": "nb", "reason": "test"}
    for name, value, said in (("time_scale", math.inf, "time_scale must be a finite number"),
                              ("scenario", "../../etc/passwd", "unknown scenario"),
                              ("operator", "eve\x1b[2J", "holds the control or format")):
        with pytest.raises(PapermillExecutionError) as info:
            papermill.execute_notebook(
                str(RUNBOOKS / "active-upgrade.ipynb"), str(tmp_path / f"{name}.ipynb"),
                parameters={**base, name: value}, kernel_name="python3", cwd=str(RUNBOOKS),
                progress_bar=False, log_output=False)
        assert said in info.value.evalue and "\n" not in info.value.evalue
        assert snapshot(ftkit_dirs.home / "systems") == []
