"""The report archive: executed notebooks, their HTML, and a hash-chained ledger.

Each run leaves under ``reports/`` (SPEC §8 "Reports")::

    20250301T020000Z-active-upgrade-CHG-42.ipynb   executed notebook, facts in metadata.ftkit
    20250301T020000Z-active-upgrade-CHG-42.html    its rendering (nbconvert, template "lab")
    ledger.jsonl                                   one line per run, chained by hash

A ledger line holds ``seq``, the files' SHA-256, the runbook, its parameters (redacted),
change id, operator, system, start and end (ISO UTC), outcome, measured outage, ``error``,
``prev`` (the previous line's hash, 64 zeros for the first) and ``hash`` (SHA-256 of the
canonical JSON of the line without ``hash``). :func:`verify_reports` finds a line that
was edited, removed or reordered and a report file that was edited or removed.

A runbook reports its result by displaying a :class:`RunResult` (mimetype
``application/vnd.ftkit.result+json``); the last one in the notebook wins. nbformat and
nbconvert are imported only when a notebook is read or written.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from ftkit.errors import ArchiveError
from ftkit.redact import MASK, is_secret_key, redact, scrub, secret_values

__all__ = [
    "LEDGER",
    "RESULT_MIME",
    "LedgerEntry",
    "Outcome",
    "RunResult",
    "archive_run",
    "ensure_verified",
    "read_ledger",
    "result_from_notebook",
    "verify_reports",
]

RESULT_MIME = "application/vnd.ftkit.result+json"
LEDGER = "ledger.jsonl"
LOCK = ".ledger.lock"
ZERO_HASH = "0" * 64
# report files archive_run writes: verify_reports flags one the ledger does not list
_REPORT_NAME = re.compile(r"^\d{8}T\d{6}Z-.+\.(ipynb|html)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Outcome(StrEnum):
    """How a run ended, as the ledger records it."""

    CHECKED = "checked"  # readiness check passed; nothing changed
    PLANNED = "planned"  # plan mode; nothing changed
    COMMITTED = "committed"
    ABORTED = "aborted"
    STOPPED = "stopped"  # the operator stopped before the split; nothing changed
    FAILED = "failed"


# --- results out of a notebook ---------------------------------------------------------


@dataclass
class RunResult:
    """What a runbook reports; display it (or leave it last in a cell) to record it.

    ``_repr_mimebundle_`` gives ``application/vnd.ftkit.result+json`` plus text/plain and
    a small HTML table, so core code needs no IPython import to produce it.
    """

    outcome: Outcome | str
    system: str = ""
    change_id: str = ""
    operator: str = ""
    outage_s: float | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-able data (redacted)."""
        outcome = self.outcome.value if isinstance(self.outcome, Outcome) else str(self.outcome)
        data: dict[str, Any] = {
            **self.extra,
            "outcome": outcome,
            "outage_s": None if self.outage_s is None else float(self.outage_s),
            "system": self.system,
            "change_id": self.change_id,
            "operator": self.operator,
            "message": self.message,
        }
        return json.loads(_json(redact(data)))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        data = self.to_dict()
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
            f"<td style='text-align:left'>{html.escape('' if v is None else str(v))}</td></tr>"
            for k, v in data.items()
            if v not in (None, "", {})
        )
        outage = "no outage measured" if self.outage_s is None else f"outage {self.outage_s:g} s"
        plain = f"{data['outcome']}: {data['system'] or '?'} {data['change_id']} ({outage})"
        if data["message"]:
            plain += f" — {data['message']}"
        return {
            RESULT_MIME: data,
            "text/plain": plain,
            "text/html": f"<table class='ftkit-result'>{rows}</table>",
        }


def result_from_notebook(nb: Any) -> dict[str, Any] | None:
    """The last ftkit result displayed in notebook NB (a NotebookNode or dict), else None."""
    found: dict[str, Any] | None = None
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            if output.get("output_type") not in ("display_data", "execute_result"):
                continue
            data = (output.get("data") or {}).get(RESULT_MIME)
            if isinstance(data, str):
                with contextlib.suppress(ValueError):
                    data = json.loads(data)
            if isinstance(data, Mapping):
                found = json.loads(json.dumps(data, default=str))
    return found


# --- the ledger ------------------------------------------------------------------------


def _json(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8; unknown types become their str()."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry_hash(entry: Mapping[str, Any]) -> str:
    return _sha256(_json({k: v for k, v in entry.items() if k != "hash"}).encode("utf-8"))


def _iso(moment: datetime) -> str:
    """ISO 8601 UTC with a Z; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class LedgerEntry:
    """One line of ``reports/ledger.jsonl``."""

    seq: int
    files: dict[str, str] = field(hash=False)
    runbook: str
    parameters: dict[str, Any] = field(hash=False)
    change_id: str
    operator: str
    system: str
    started: str
    ended: str
    outcome: str
    outage_s: float | None
    error: str | None
    prev: str
    hash: str

    @property
    def notebook(self) -> str | None:
        """File name of the executed notebook."""
        return next((n for n in self.files if n.endswith(".ipynb")), None)

    @property
    def html(self) -> str | None:
        """File name of the HTML rendering."""
        return next((n for n in self.files if n.endswith(".html")), None)

    def to_dict(self) -> dict[str, Any]:
        """The ledger line as a dict."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LedgerEntry:
        """Build from a parsed ledger line (missing optional fields become None)."""
        return cls(
            seq=int(data["seq"]),
            files=dict(data["files"]),
            runbook=str(data["runbook"]),
            parameters=dict(data.get("parameters") or {}),
            change_id=str(data.get("change_id") or ""),
            operator=str(data.get("operator") or ""),
            system=str(data.get("system") or ""),
            started=str(data["started"]),
            ended=str(data["ended"]),
            outcome=str(data["outcome"]),
            outage_s=None if data.get("outage_s") is None else float(data["outage_s"]),
            error=data.get("error"),
            prev=str(data["prev"]),
            hash=str(data["hash"]),
        )


def _parse_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, parsed dict or None, raw text) for each non-blank ledger line."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except ValueError:
                data = None
            yield number, data if isinstance(data, dict) else None, raw


def read_ledger(reports: Path) -> list[LedgerEntry]:
    """Every entry of ``REPORTS/ledger.jsonl`` in file order ([] if none); read-only.

    Raises :class:`ArchiveError` for a line that is not a ledger entry; whether the chain
    holds is :func:`verify_reports`' business.
    """
    path = Path(reports) / LEDGER
    entries = []
    for number, data, _raw in _parse_lines(path):
        try:
            if data is None:
                raise ValueError("not a JSON object")
            entries.append(LedgerEntry.from_dict(data))
        except (KeyError, TypeError, ValueError) as err:
            raise ArchiveError(
                f"{path}:{number} is not a ledger entry ({err})",
                "run `ftkit reports verify` and restore the ledger from a backup",
            ) from None
    return entries


def verify_reports(reports: Path) -> list[str]:
    """Every problem found in the ledger and report files of REPORTS ([] = fine); read-only.

    Finds an edited line (hash mismatch), a removed or reordered line (``seq`` gap or
    ``prev`` not the previous line's hash), an edited or missing report file (SHA-256),
    and a report file no line lists (its line was removed).
    """
    reports = Path(reports)
    path = reports / LEDGER
    problems: list[str] = []
    prev_hash, prev_seq = ZERO_HASH, 0
    listed: set[str] = set()
    for number, data, _raw in _parse_lines(path):
        where = f"{LEDGER} line {number}"
        if data is None or not {"seq", "prev", "hash", "files"} <= data.keys():
            problems.append(f"{where} is not a ledger entry (edited or damaged)")
            prev_hash, prev_seq = "", prev_seq + 1
            continue
        seq = data.get("seq")
        where += f" (seq {seq})"
        if _entry_hash(data) != data["hash"]:
            problems.append(f"{where} was edited: its hash does not match its content")
        if not isinstance(seq, int) or seq != prev_seq + 1:
            problems.append(f"{where} follows seq {prev_seq}: an entry was removed or reordered")
        elif data["prev"] != prev_hash and prev_hash:
            problems.append(
                f"{where} does not chain to the line before it: an entry was removed, "
                "reordered or edited"
            )
        files = data["files"] if isinstance(data["files"], dict) else {}
        for name, digest in sorted(files.items()):
            listed.add(name)
            file = reports / name
            if not file.is_file():
                problems.append(f"report {name} ({where}) is missing")
            elif _sha256(file.read_bytes()) != digest:
                problems.append(f"report {name} ({where}) was edited: SHA-256 mismatch")
        prev_hash = str(data["hash"])
        prev_seq = seq if isinstance(seq, int) else prev_seq + 1
    if reports.is_dir():
        for file in sorted(reports.iterdir()):
            if _REPORT_NAME.match(file.name) and file.name not in listed:
                problems.append(f"report {file.name} is not in the ledger: its entry was removed")
    return problems


def ensure_verified(reports: Path) -> None:
    """Raise :class:`ArchiveError` with the first problem :func:`verify_reports` finds."""
    problems = verify_reports(reports)
    if problems:
        more = f" ({len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ArchiveError(
            f"{Path(reports)}: {problems[0]}{more}",
            "run `ftkit reports verify` to list them; restore the reports from a backup",
        )


@contextlib.contextmanager
def _ledger_lock(reports: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``REPORTS/.ledger.lock`` (flock; msvcrt on Windows)."""
    with (reports / LOCK).open("a+b") as handle:
        if sys.platform == "win32":
            import msvcrt

            while True:
                handle.seek(0)
                try:
                    msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)  # retries for 10 s
                    break
                except OSError:
                    continue
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write DATA to PATH through a temporary file in the same folder and os.replace."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _append_line(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("._-")[:60]


def _scrub_notebook(nb: Any, extra: set[str]) -> None:
    """Mask secrets in NB in place: the injected parameters and every string in it."""
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags or "parameters" in tags:
            cell.source = "\n".join(_mask_assignment(line) for line in str(cell.source).split("\n"))
    papermill = nb.metadata.get("papermill")
    if isinstance(papermill, dict) and isinstance(papermill.get("parameters"), dict):
        papermill["parameters"] = redact(papermill["parameters"], extra=extra)

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return scrub(node, extra=extra)
        if isinstance(node, dict):
            for key in list(node):
                node[key] = walk(node[key])
            return node
        if isinstance(node, list):
            for index, item in enumerate(node):
                node[index] = walk(item)
            return node
        return node

    walk(nb)


_ASSIGNMENT = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*)(\s*(?::[^=]*)?=\s*)(.+)$")


def _mask_assignment(line: str) -> str:
    """``password = "x"`` → ``password = "***"`` for a secret-looking variable name."""
    match = _ASSIGNMENT.match(line)
    if (
        match
        and is_secret_key(match.group(2))
        and match.group(4).strip() not in ("None", '""', "''")
    ):
        indent, name, eq, _value = match.groups()
        return f"{indent}{name}{eq}{MASK!r}"
    return line


def archive_run(
    executed: Path,
    *,
    runbook: str,
    parameters: Mapping[str, Any],
    started: datetime,
    ended: datetime,
    reports: Path,
    error: str | None = None,
) -> LedgerEntry:
    """Archive the executed notebook EXECUTED under REPORTS and append its ledger line.

    The facts come from the notebook's last :class:`RunResult`, else from PARAMETERS; the
    outcome is ``failed`` when ERROR is given or the notebook reported no result. The
    notebook (secrets masked, facts in ``metadata.ftkit``) and its HTML are written
    tmp-then-rename; the ledger line is appended under a file lock, so concurrent runs
    keep the chain. Raises :class:`ArchiveError` if the existing ledger is unreadable
    (the report files are written first, and named in the error).
    """
    import nbformat

    reports = Path(reports)
    reports.mkdir(parents=True, exist_ok=True)
    try:
        nb = nbformat.read(str(executed), as_version=4)
    except (OSError, ValueError) as err:  # NotJSONError, NBFormatError are ValueErrors
        raise ArchiveError(
            f"cannot read executed notebook {executed}: {type(err).__name__}: {err}",
            "give the output notebook papermill wrote",
        ) from err
    result = result_from_notebook(nb) or {}
    params = dict(parameters)
    secrets = secret_values(params)  # literals to mask wherever they were echoed

    def fact(name: str) -> str:
        value = result.get(name)
        if value in (None, ""):
            value = params.get(name)
        return scrub("" if value is None else str(value), extra=secrets)

    notes: list[str] = [error.strip()] if error else []
    outcome: Outcome | None = None
    if result:
        try:
            outcome = Outcome(str(result.get("outcome", "")).lower())
        except ValueError:
            notes.append(f"unknown outcome {result.get('outcome')!r} reported")
    elif not error:
        notes.append("the runbook reported no result")
    if error or outcome is None:
        outcome = Outcome.FAILED
    outage = result.get("outage_s")
    try:
        outage_s = None if outage is None else float(outage)
    except (TypeError, ValueError):
        outage_s = None
    runbook_stem = Path(runbook).stem if runbook.endswith(".ipynb") else Path(runbook).name
    facts: dict[str, Any] = {
        "runbook": runbook_stem,
        "parameters": json.loads(_json(redact(params, extra=secrets))),
        "change_id": fact("change_id"),
        "operator": fact("operator"),
        "system": fact("system"),
        "started": _iso(started),
        "ended": _iso(ended),
        "outcome": outcome.value,
        "outage_s": outage_s,
        "error": scrub("; ".join(notes), extra=secrets) if notes else None,
    }
    stamp = started.replace(tzinfo=started.tzinfo or UTC).astimezone(UTC)
    base = f"{stamp:%Y%m%dT%H%M%SZ}-{_safe(runbook_stem) or 'runbook'}"
    if _safe(facts["change_id"]):
        base += f"-{_safe(facts['change_id'])}"

    _scrub_notebook(nb, secrets)
    with _ledger_lock(reports):
        name, counter = base, 1
        while (reports / f"{name}.ipynb").exists() or (reports / f"{name}.html").exists():
            counter += 1
            name = f"{base}-{counter}"
        ledger = reports / LEDGER
        damaged: ArchiveError | None = None
        try:
            previous = read_ledger(reports)
        except ArchiveError as err:
            previous, damaged = [], err
        seq = previous[-1].seq + 1 if previous else 1
        nb.metadata["ftkit"] = {"seq": seq, **facts}
        nb_bytes = nbformat.writes(nb).encode("utf-8")
        html_bytes = _render_html(nb).encode("utf-8")
        files = {f"{name}.ipynb": _sha256(nb_bytes), f"{name}.html": _sha256(html_bytes)}
        _write_atomic(reports / f"{name}.ipynb", nb_bytes)
        _write_atomic(reports / f"{name}.html", html_bytes)
        if damaged is not None:
            raise ArchiveError(
                f"{damaged.message}; the report was written to {reports / name}.ipynb "
                "but not entered in the ledger",
                damaged.remedy,
            )
        entry: dict[str, Any] = {
            "seq": seq,
            "files": files,
            **facts,
            "prev": previous[-1].hash if previous else ZERO_HASH,
        }
        entry = json.loads(_json(entry))
        entry["hash"] = _entry_hash(entry)
        _append_line(ledger, _json(entry))
    return LedgerEntry.from_dict(entry)


def _render_html(nb: Any) -> str:
    from nbconvert import HTMLExporter

    body, _resources = HTMLExporter(template_name="lab").from_notebook_node(nb)
    return str(body)
