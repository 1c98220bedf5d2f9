"""The report archive: executed notebooks, their HTML, and a hash-chained ledger.

Each run leaves under ``reports/``::

    20250301T020000Z-active-upgrade-CHG-42.ipynb   executed notebook, facts in metadata.ftkit
    20250301T020000Z-active-upgrade-CHG-42.html    its page (:mod:`ftkit.report_html`:
                                                   self-contained, tens of KB)
    20250301T020000Z-active-upgrade-CHG-42.intoto.jsonl   its in-toto attestation
                                                   (:mod:`ftkit.attest`)
    ledger.jsonl                                   one line per run, chained by hash
    checkpoints.jsonl                              a signed checkpoint after each write
                                                   (:mod:`ftkit.checkpoints`)
    .verified.json                                 where the last incremental verify ended
                                                   (HMAC under a key outside the reports)

A ledger line holds ``seq``, the files' SHA-256, the runbook, its parameters (redacted),
change id, operator, system, start and end (ISO UTC, :mod:`ftkit.canonical`), outcome,
measured outage, ``error``, ``source`` (SHA-256 of the notebook as handed in),
optionally ``journal_entry``/``journal_hash`` (the session's journal, where the run is
anchored) and ``signature`` (Ed25519 over ``hash``), ``prev`` (the previous line's
hash, 64 zeros for the first) and ``hash`` (SHA-256 of the canonical JSON of the line
without ``hash`` and ``signature``). A line is written in canonical form, so a line
that is not (a duplicated key, other spacing) was edited. :func:`verify_reports` finds a
line that was edited, removed or reordered, an entry listing no file or another's,
and a report file that was edited or removed; what it cannot find without a key is
:func:`verify_limits`; :func:`cross_check` compares the ledger with what the systems'
journals recorded of it.

A runbook reports its result by displaying a :class:`RunResult` (mimetype
``application/vnd.ftkit.result+json``); the last one in the notebook wins. nbformat is
imported only when a notebook is read or written, cryptography only to sign or check a
signature.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import html
import json
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftkit import canonical
from ftkit.errors import ArchiveError
from ftkit.redact import (
    MASK,
    is_secret_key,
    machine_paths,
    mask_paths,
    redact,
    scrub,
    secret_values,
)

if TYPE_CHECKING:
    from ftkit.checkpoints import LedgerIndex, Verdict

__all__ = [
    "LEDGER",
    "RESULT_MIME",
    "AlreadyArchived",
    "LedgerEntry",
    "Outcome",
    "RunResult",
    "Verified",
    "archive_run",
    "ensure_verified",
    "read_ledger",
    "result_from_notebook",
    "verify_archive",
    "verify_reports",
]

RESULT_MIME = "application/vnd.ftkit.result+json"
LEDGER = "ledger.jsonl"
LOCK = ".ledger.lock"
ZERO_HASH = "0" * 64
# report files archive_run writes: verify_reports flags one the ledger does not list
_REPORT_NAME = re.compile(r"^\d{8}T\d{6}Z-.+\.(ipynb|html|intoto\.jsonl)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class AlreadyArchived(ArchiveError):
    """The run is in the ledger already (the same notebook, an archived copy, or another
    notebook reporting the same session's end): nothing to add, nothing was written."""


class Outcome(StrEnum):
    """How a run ended, as the ledger records it."""

    CHECKED = "checked"  # readiness check passed; nothing changed
    PLANNED = "planned"  # plan mode; nothing changed
    COMMITTED = "committed"
    ABORTED = "aborted"
    STOPPED = "stopped"  # the operator stopped before the split; nothing changed
    PAUSED = "paused"  # paused on purpose by a decision (merge: later); the next run goes on
    FAILED = "failed"
    COMPLETED = "completed"  # a campaign: every system ended committed (or as planned)


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
    #: the authenticated account that produced it (the kernel's), beside the claimed operator
    account: str = field(default_factory=lambda: _account())

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
            "account": self.account,
            "message": self.message,
        }
        return json.loads(_json(redact(data)))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        data = self.to_dict()
        # what a change manager reads first comes first, in words; the rest after, as named
        first = [k for k in _RESULT_LABELS if k in data]
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(_RESULT_LABELS.get(k, k))}</th>"
            f"<td style='text-align:left'>{html.escape(_shown(data[k]))}</td></tr>"
            for k in [*first, *sorted(set(data) - set(first))]
            if data[k] not in (None, "", {})
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


#: The result's fields a person reads first, in order, with their labels.
_RESULT_LABELS = {
    "outcome": "outcome", "message": "summary", "system": "system", "change_id": "change",
    "operator": "operator", "account": "account", "outage_s": "total outage (s)",
    "outages": "outages (s)", "lost_transactions": "transactions lost",
    "acknowledged": "transactions acknowledged", "decisions": "decisions",
    "session": "session", "mode": "mode", "journal_entry": "journal entry",
    "journal_hash": "journal hash",
}


def _shown(value: Any) -> str:
    """VALUE as a person reads it: floats to 0.1 (``44.99999999999932`` → ``45``)."""
    if isinstance(value, float):
        return f"{round(value, 1):g}"
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    return "" if value is None else str(value)


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


def run_outcome(result: Mapping[str, Any] | None, error: str | None) -> tuple[
        Outcome, list[str]]:
    """The outcome a run is archived with, and the notes that say why (read-only): the
    RESULT's outcome, else ``failed`` when ERROR is given, the result is missing or names
    no outcome this archive knows."""
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
    return outcome, notes


# --- the ledger ------------------------------------------------------------------------


def _json(value: Any) -> str:
    """Canonical JSON (:func:`ftkit.canonical.dumps`)."""
    return canonical.dumps(value)


def _sha256(data: bytes) -> str:
    return canonical.sha256_hex(data)


def _account() -> str:
    from ftkit.decisions import account

    return account()


def _entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ENTRY without its ``hash`` and ``signature``."""
    return _sha256(_json({k: v for k, v in entry.items() if k not in _UNHASHED}).encode("utf-8"))


def _iso(moment: datetime) -> str:
    """ISO 8601 UTC with a Z (:func:`ftkit.canonical.iso`); a naive datetime is UTC."""
    return canonical.iso(moment)


@dataclass(frozen=True)
class LedgerEntry:
    """One line of ``reports/ledger.jsonl``.

    ``source`` is the SHA-256 of the executed notebook as it was handed in (so the same
    notebook is not archived twice); ``journal_entry``/``journal_hash`` anchor the entry
    in the system's journal (the id and hash of the session's last journal entry when it
    was archived); ``signature`` is ``{"alg": "ed25519", "key": public key (hex),
    "sig": base64}`` over ``hash`` when a signing key was given; ``account`` is the
    authenticated account beside the claimed ``operator``. All five are absent (None) in
    entries written before they existed.
    """

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
    source: str | None = None
    journal_entry: int | None = None
    journal_hash: str | None = None
    signature: dict[str, str] | None = field(default=None, hash=False)
    account: str | None = None  # the authenticated account beside the claimed operator
    approved_by: tuple[str, ...] | None = None  # who approved the Commit: NAME (account)

    @property
    def notebook(self) -> str | None:
        """File name of the executed notebook."""
        return next((n for n in self.files if n.endswith(".ipynb")), None)

    @property
    def html(self) -> str | None:
        """File name of the HTML rendering."""
        return next((n for n in self.files if n.endswith(".html")), None)

    def to_dict(self) -> dict[str, Any]:
        """The ledger line as a dict (the optional fields only where set)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return {k: v for k, v in data.items() if k not in _OPTIONAL or v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LedgerEntry:
        """Build from a parsed ledger line (missing optional fields become None)."""
        journal_entry = data.get("journal_entry")
        signature = data.get("signature")
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
            source=None if data.get("source") is None else str(data["source"]),
            journal_entry=None if journal_entry is None else int(journal_entry),
            journal_hash=None if data.get("journal_hash") is None else str(data["journal_hash"]),
            signature=dict(signature) if isinstance(signature, Mapping) else None,
            account=None if data.get("account") is None else str(data["account"]),
            approved_by=(tuple(str(a) for a in data["approved_by"])
                         if isinstance(data.get("approved_by"), list) else None),
        )


_OPTIONAL = frozenset({"source", "journal_entry", "journal_hash", "signature", "account"})
_UNHASHED = frozenset({"hash", "signature"})
_REQUIRED = frozenset({"seq", "prev", "hash", "files"})


def _parse_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, parsed dict or None, raw text) for each non-blank ledger line.

    A line with a duplicated key parses to None (the strict reader refuses it).
    """
    if not path.exists():
        return
    with path.open(encoding="utf-8", newline="") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                data = canonical.loads_strict(raw)
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
                raise ValueError("not a JSON object with distinct keys")
            entries.append(LedgerEntry.from_dict(data))
        except (KeyError, TypeError, ValueError) as err:
            raise ArchiveError(
                f"{path}:{number} is not a ledger entry ({err})",
                "run `ftkit reports verify` and restore the ledger from a backup",
            ) from None
    return entries


# --- verification ----------------------------------------------------------------------

CHECKPOINT = ".verified.json"


@dataclass
class _Walk:
    """What verification carries from one ledger line to the next."""

    reports: Path
    present: set[str]
    odd: dict[str, str] = field(default_factory=dict)  # names there that are no file: what
    folder: str = ""
    listed: dict[str, int] = field(default_factory=dict)
    prev_hash: str = ZERO_HASH
    prev_seq: int = 0
    problems: list[str] = field(default_factory=list)
    last: tuple[int, str, int] | None = None  # seq, hash, byte offset after its line
    # checks made after the walk (:func:`_check_later`), each with where its problem goes
    # among PROBLEMS: a line's signature, once the checkpoints said which lines a signed
    # one covers: (at, _SIGNED, where, signature, digest, seq); a report file's SHA-256:
    # (at, _HASHED, where, file name, digest, None)
    later: list[tuple[int, int, str, Any, str, Any]] = field(default_factory=list)
    trusted: Any | None = None  # the key every line must be signed by (an Ed25519 key)
    signed_through: int = 0  # lines up to this seq are covered by a signed checkpoint
    entries: int = 0  # non-blank ledger lines read
    start: int = 0  # the byte offset the checks start from (a resumed walk's checkpoint)
    checking: bool = True  # False: a resumed walk whose problems are the answer
    # what the checkpoints need of every line (:func:`ftkit.checkpoints.index_line`),
    # gathered in the same pass when asked for: {seq: (hash, outcome, label)}, {key: seq}
    index: LedgerIndex | None = None


def _check_line(walk: _Walk, number: int, raw: str, data: Any, *,
                trusted: Any | None) -> None:
    """Verify one ledger line RAW (DATA: what it parses to, None if it does not) against
    the line before it; problems go to WALK, its signature and files are checked later."""
    where = f"{LEDGER} line {number}"
    problems = walk.problems
    if not isinstance(data, dict) or not data.keys() >= _REQUIRED:
        problems.append(f"{where} is not a ledger entry (edited or damaged)")
        walk.prev_hash, walk.prev_seq = "", walk.prev_seq + 1
        return
    seq = data.get("seq")
    full = canonical.dumps(data)
    digest = _hash_of_dumped(full, data)
    where_seq = f"{where} (seq {seq})"
    if raw.rstrip("\r\n") != full:
        # a canonical line cannot repeat a key (its parse would be shorter); this one may
        try:
            canonical.loads_strict(raw)
        except canonical.DuplicateKeyError as err:
            problems.append(f"{where} has a {err}: it was edited")
        else:
            if digest == data["hash"]:
                problems.append(f"{where_seq} was edited: it is not written in canonical form")
            else:
                problems.append(f"{where_seq} was edited: its hash does not match its content")
    elif digest != data["hash"]:
        problems.append(f"{where_seq} was edited: its hash does not match its content")
    where = where_seq
    if not isinstance(seq, int) or isinstance(seq, bool) or seq != walk.prev_seq + 1:
        problems.append(f"{where} follows seq {walk.prev_seq}: an entry was removed or reordered")
    elif data["prev"] != walk.prev_hash and walk.prev_hash:
        problems.append(
            f"{where} does not chain to the line before it: an entry was removed, "
            "reordered or edited"
        )
    signature = data.get("signature")
    if signature is not None or trusted is not None:
        walk.later.append((len(problems), _SIGNED, where, signature, digest, seq))
    files = data["files"] if isinstance(data["files"], dict) else {}
    if not files:
        problems.append(f"{where} lists no report files")
    this_seq = seq if isinstance(seq, int) else walk.prev_seq + 1
    for name, digest_of_file in sorted(files.items()):
        if not isinstance(name, str) or not _REPORT_NAME.match(name) or "/" in name \
                or "\\" in name:
            problems.append(f"{where} lists {name!r}, which is not a report file name")
            continue
        other = walk.listed.setdefault(name, this_seq)
        if other != this_seq:
            problems.append(f"report {name} ({where}) is also listed by seq {other}")
            continue
        if name not in walk.present:
            problems.append(_absent(walk, name, where))
        else:  # hashed after the walk; its problem goes here
            walk.later.append((len(problems), _HASHED, where, name, str(digest_of_file), None))
    walk.prev_hash = str(data["hash"])
    walk.prev_seq = this_seq


_DECODER = json.JSONDecoder()


def _hash_of_dumped(full: str, data: Mapping[str, Any]) -> str:
    """:func:`_entry_hash` of DATA, given FULL = ``canonical.dumps(DATA)``: the unhashed
    items are cut out of FULL. Canonical JSON spells a key ``"hash":`` only as a key (a
    quote inside a string is escaped), so a key named once is the top-level one, and its
    value ends where parsing it from there ends (a key named twice: the slow way)."""
    text = full
    for key in _UNHASHED:
        if key not in data:
            continue
        name = f'"{key}":'
        at = text.find(name)
        if at < 0 or text.find(name, at + 1) >= 0:
            return _entry_hash(data)
        end = _DECODER.raw_decode(text, at + len(name))[1]
        if text[end] == ",":
            text = text[:at] + text[end + 1:]
        elif text[at - 1] == ",":
            text = text[:at - 1] + text[end:]
        else:
            text = text[:at] + text[end:]
    return _sha256(text.encode("utf-8"))


def _file_sha256(path: str, *, folder: int | None = None) -> str | None:
    """SHA-256 of the regular file at PATH (relative to the open directory FOLDER when
    given), None if it cannot be read or is not a regular file. A report (tens of KB) is
    read in one call of its size and one byte more: a short read is the file's end."""
    try:  # non-blocking: a FIFO put in a report's place is not waited on
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0), dir_fd=folder)
    except OSError:
        return None
    try:
        size = os.fstat(fd)
        if not stat.S_ISREG(size.st_mode):
            return None  # a FIFO or a device (/dev/zero) is no report: it never ends
        want = min(size.st_size + 1, 1 << 20)
        block = os.read(fd, want)
        digest = hashlib.sha256(block)
        while len(block) == want:  # longer than its size said, or over 1 MiB: read on
            want = 1 << 20
            block = os.read(fd, want)
            digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)


_SIGNED, _HASHED = 0, 1  # the kinds of check a walk puts off


def _check_later(walk: _Walk) -> None:
    """Make the checks WALK put off and put each problem among WALK's problems where its
    line would have put it. The report files are hashed one after another, each opened
    relative to the folder: on a warm page cache the time is the calls per file, which
    a thread pool only makes contend for the interpreter."""
    folder: int | None = None
    if os.open in os.supports_dir_fd:
        with contextlib.suppress(OSError):
            folder = os.open(walk.folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    found: list[tuple[int, str]] = []
    trusted_hex = None if walk.trusted is None else _public_hex(walk.trusted)
    try:
        for at, kind, where, what, digest, seq in walk.later:
            if kind == _SIGNED:
                problem = _signature_problem(
                    where, what, digest, walk.trusted, trusted_hex=trusted_hex,
                    covered=isinstance(seq, int) and seq <= walk.signed_through)
            else:
                got = _file_sha256(what if folder is not None
                                   else os.path.join(walk.folder, what), folder=folder)
                problem = (None if got == digest else f"report {what} ({where}) "
                           + ("cannot be read" if got is None else
                              "was edited: SHA-256 mismatch"))
            if problem is not None:
                found.append((at, problem))
    finally:
        if folder is not None:
            os.close(folder)
    for at, problem in reversed(found):
        walk.problems.insert(at, problem)
    walk.later = []


def _ledger_lines(data: bytes, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(byte offset after it, the line with its newline) of each line of DATA[START:END],
    as iterating over a binary file from START gives them."""
    at = start
    while at < end:
        newline = data.find(b"\n", at, end)
        stop = end if newline < 0 else newline + 1
        yield stop, data[at:stop]
        at = stop


def _parsed(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _walk_ledger(reports: Path, *, since_checkpoint: bool, mark: Path, trusted: Any | None,
                 signed_through: int = 0, index: bool = False) -> tuple[_Walk, bytes]:
    """Read REPORTS' ledger once and check each line (:func:`_check_line`), but for the
    checks put off until :func:`_check_later`; with INDEX also gather what the
    checkpoints need of every line (``_Walk.index``). Returns the walk and the ledger's
    bytes as read. Read-only."""
    path = reports / LEDGER
    present, odd = _present_files(reports)
    walk = _Walk(reports=reports, present=present, odd=odd, folder=str(reports),
                 signed_through=signed_through, trusted=trusted)
    data = path.read_bytes() if path.exists() else b""
    if since_checkpoint and mark.exists():
        walk.start = _resume_from_checkpoint(walk, data, mark)
        if walk.problems and walk.problems[0].endswith(_FORGED_STATE):
            # a state this machine did not write: say so, and verify everything instead
            forged = walk.problems
            walk = _Walk(reports=reports, present=present, odd=odd, folder=str(reports),
                         signed_through=signed_through, trusted=trusted)
            walk.problems += forged
        elif walk.problems:
            walk.checking = False  # its problems are the answer (the lines still feed INDEX)
    start = walk.start
    if index:
        from ftkit.checkpoints import index_line

        walk.index = ({}, {})
    # lines up to the checkpoint: each entry's files must be there (a resumed walk)
    for _end, line in _ledger_lines(data, 0, start):
        raw = line.decode("utf-8")
        if not raw.strip():
            continue
        walk.entries += 1
        entry = json.loads(raw)
        if walk.index is not None:
            index_line(entry, *walk.index)
        if not walk.checking:
            continue
        for name in entry.get("files") or {}:
            walk.listed.setdefault(name, int(entry["seq"]))
            if name not in walk.present:
                walk.problems.append(_absent(walk, name, f"{LEDGER} seq {entry['seq']}"))
    if walk.problems and start:  # a report file listed before the checkpoint is gone
        walk.checking = False
    number = data.count(b"\n", 0, start)
    for end, line in _ledger_lines(data, start, len(data)):
        number += 1
        try:
            raw, clean = line.decode("utf-8"), True
        except UnicodeDecodeError:
            raw, clean = line.decode("utf-8", errors="replace"), False
        if not raw.strip():
            continue
        walk.entries += 1
        entry = _parsed(raw)
        if walk.index is not None:
            if entry is None or not clean:  # as json.loads reads the bytes themselves
                with contextlib.suppress(ValueError):
                    index_line(json.loads(line), *walk.index)
            else:
                index_line(entry, *walk.index)
        if walk.checking:
            _check_line(walk, number, raw, entry, trusted=trusted)
            walk.last = (walk.prev_seq, walk.prev_hash, end)
    if walk.index is not None and start and data[start - 1:start] != b"\n":
        # the checkpoint's end is not a line's end: the checkpoints read the lines as
        # the file has them
        from ftkit.checkpoints import _ledger_index

        walk.index = _ledger_index(reports)
    return walk, data


def _finish(walk: _Walk, data: bytes, *, since_checkpoint: bool, mark: Path) -> list[str]:
    """Make the checks WALK put off, name the report files no line lists, and with
    SINCE_CHECKPOINT move the checkpoint MARK to the last entry when nothing is wrong
    (the one write); WALK's problems."""
    if not walk.checking:
        return walk.problems
    _check_later(walk)
    for name in sorted(walk.present):
        if name not in walk.listed and _REPORT_NAME.match(name):
            walk.problems.append(f"report {name} is not in the ledger: its entry was removed")
    if since_checkpoint and not walk.problems and walk.last is not None \
            and walk.last[2] != walk.start:  # nothing new: the checkpoint stands as it is
        _write_checkpoint(mark, data, *walk.last)
    return walk.problems


def verify_reports(
    reports: Path,
    *,
    since_checkpoint: bool = False,
    checkpoint: Path | None = None,
    public_key: Path | str | None = None,
    signed_through: int = 0,
) -> list[str]:
    """Every problem found in the ledger and report files of REPORTS ([] = fine).

    Finds an edited line (hash mismatch, a duplicated key, a line not in canonical form),
    a removed or reordered line (``seq`` gap or ``prev`` not the previous line's hash), an
    entry listing no files or a file another entry lists, an edited or missing report
    file (SHA-256), and a report file no line lists (its line was removed). With
    PUBLIC_KEY (a PEM file, else ``$FTKIT_VERIFY_KEY``) every entry must carry a valid
    Ed25519 signature by that key, which detects a chain recomputed after an edit; without
    one, signatures present are checked against the key they name (see
    :func:`verify_limits` for what that leaves undetected). Time is linear in entries;
    the ledger is read once, each line parsed once.

    Read-only, except that with ``since_checkpoint`` the lines up to the checkpoint
    (CHECKPOINT, default ``REPORTS/.verified.json``) are checked only for being unchanged
    since that verification (one SHA-256 of the ledger's prefix, and the checkpoint must
    match the ledger's entry at its seq), their report files for being present; the lines
    after it are verified in full, and when nothing is wrong the checkpoint moves to the
    last entry (written tmp-then-rename). Without a checkpoint the whole ledger is
    verified and the checkpoint written.

    SIGNED_THROUGH: the ledger's seq up to which a checkpoint signed by the trusted key
    was checked to match (:attr:`ftkit.checkpoints.Verdict.covered`): the lines up to it
    are bound by the chain to that signature, so their own signatures' keys are compared
    and the signatures not checked again (what makes 10,000 signed entries fast).
    :func:`verify_archive` finds it and checks the checkpoints in the same read.
    """
    reports = Path(reports)
    mark = Path(checkpoint) if checkpoint is not None else reports / CHECKPOINT
    walk, data = _walk_ledger(reports, since_checkpoint=since_checkpoint, mark=mark,
                              trusted=_trusted_key(public_key), signed_through=signed_through)
    return _finish(walk, data, since_checkpoint=since_checkpoint, mark=mark)


@dataclass(frozen=True)
class Verified:
    """What :func:`verify_archive` found: every problem (the ledger's and report files',
    then the checkpoints'), the checkpoints' verdict, and the ledger's entries read."""

    problems: list[str]
    checkpoints: Verdict
    entries: int


def verify_archive(
    reports: Path,
    *,
    witnesses: Iterable[Path] = (),
    public_key: Path | str | None = None,
    since_checkpoint: bool = False,
    checkpoint: Path | None = None,
) -> Verified:
    """What ``ftkit reports verify`` checks: REPORTS' ledger and report files
    (:func:`verify_reports`, with SINCE_CHECKPOINT and CHECKPOINT as there) and every
    checkpoint found in the archive, the journals and WITNESSES
    (:func:`ftkit.checkpoints.verify_checkpoints`), the ledger read and each line parsed
    once for both; the lines a checkpoint signed by the trusted key covers have their
    own signatures' keys compared, not their signatures checked again. PUBLIC_KEY: a PEM
    file, else ``$FTKIT_VERIFY_KEY``, else the key the archive pinned.

    Read-only but for the incremental state (as :func:`verify_reports`).
    """
    from ftkit.checkpoints import verify_checkpoints

    reports = Path(reports)
    trusted = _trusted_key(public_key)
    mark = Path(checkpoint) if checkpoint is not None else reports / CHECKPOINT
    walk, data = _walk_ledger(reports, since_checkpoint=since_checkpoint, mark=mark,
                              trusted=trusted, index=True)
    verdict = verify_checkpoints(reports, witnesses=witnesses, public_key=trusted,
                                 ledger=walk.index)
    walk.signed_through = verdict.covered
    problems = _finish(walk, data, since_checkpoint=since_checkpoint, mark=mark)
    return Verified([*problems, *verdict.problems], verdict, walk.entries)


def _present_files(reports: Path) -> tuple[set[str], dict[str, str]]:
    """Names of the regular files directly in REPORTS, and what each other entry there is
    (a folder, a FIFO…), by name (one directory scan)."""
    if not reports.is_dir():
        return set(), {}
    files, odd = set(), {}
    with os.scandir(reports) as scan:
        for item in scan:
            if item.is_file():
                files.add(item.name)
            else:
                odd[item.name] = _kind_of(item)
    return files, odd


def _kind_of(item: os.DirEntry[str]) -> str:
    """What the directory entry ITEM is, when it is not a regular file (read-only)."""
    try:
        mode = item.stat().st_mode
    except OSError:  # a symbolic link to nothing
        return "a broken symbolic link"
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device")):
        if test(mode):
            return kind
    return "not a file"


def _absent(walk: _Walk, name: str, where: str) -> str:
    """The problem of report NAME, listed by WHERE, that is not a regular file in the
    folder: missing, or something else in its place."""
    kind = walk.odd.get(name)
    if kind is None:
        return f"report {name} ({where}) is missing"
    return f"report {name} ({where}) is {kind}, not a regular file"


def _resume_from_checkpoint(walk: _Walk, data: bytes, mark: Path) -> int:
    """Check the ledger DATA up to checkpoint MARK is as it was verified; return its end
    offset (0 with a problem in WALK when it is not).

    Its SHA-256 must match, and the last line must be the entry the checkpoint names.
    Sets WALK's chain end; the walk lists the files of the lines before it.
    """
    try:
        point = canonical.loads_strict(mark.read_text(encoding="utf-8"))
        seq, digest = int(point["seq"]), str(point["hash"])
        offset, prefix_sha = int(point["offset"]), str(point["prefix_sha256"])
        mac = str(point.pop("mac", ""))
    except (OSError, ValueError, KeyError, TypeError) as err:
        walk.problems.append(f"checkpoint {mark.name} is unreadable ({err}): verify in full")
        return 0
    from ftkit.keys import state_mac

    if not hmac.compare_digest(mac, state_mac(_json(point))):
        # keyed (ftkit.keys): an edited ledger with this file rewritten to match fails here
        walk.problems.append(f"checkpoint {mark.name} (seq {seq}) {_FORGED_STATE}")
        return 0
    prefix = data[:offset]
    if len(data) < offset:
        walk.problems.append(
            f"{LEDGER} is shorter than when seq {seq} was verified: entries were removed")
        return 0
    if _sha256(prefix) != prefix_sha:
        walk.problems.append(
            f"{LEDGER} changed at or before seq {seq} since it was verified: an entry was "
            "edited, removed or reordered")
        return 0
    lines = [line for line in prefix.decode("utf-8").split("\n") if line.strip()]
    last = canonical.loads_strict(lines[-1]) if lines else {}
    if not isinstance(last, dict) or last.get("seq") != seq or last.get("hash") != digest:
        walk.problems.append(
            f"checkpoint {mark.name} (seq {seq}) does not match the ledger's entry at that "
            "seq: verify in full")
        return 0
    walk.prev_seq, walk.prev_hash = seq, digest
    walk.last = (seq, digest, offset)
    return offset


_FORGED_STATE = ("is not authenticated by this machine's verification key: it was written "
                 "elsewhere or edited; everything was verified instead")


def _write_checkpoint(mark: Path, data: bytes, seq: int, digest: str, offset: int) -> None:
    """Write the incremental state MARK: the ledger DATA verified up to OFFSET (entry SEQ,
    hash DIGEST), keyed (tmp-then-rename)."""
    point = {"seq": seq, "hash": digest, "offset": offset, "prefix_sha256": _sha256(data[:offset]),
             "verified": canonical.iso(canonical.utc_now())}
    from ftkit.keys import state_mac

    point["mac"] = state_mac(_json(point))  # HMAC-SHA256, keyed outside the reports folder
    try:
        _write_atomic(mark, (_json(point) + "\n").encode("utf-8"))
    except OSError as err:
        raise ArchiveError(f"cannot write the verification checkpoint {mark}: {err}",
                           "make the reports folder writable, or pass another checkpoint "
                           "path") from None


def verify_limits(*, keyed: bool | None = None, since_checkpoint: bool = False) -> list[str]:
    """What :func:`verify_reports` cannot detect, as lines for its output (read-only).

    KEYED: whether it was given a public key (None: whether ``$FTKIT_VERIFY_KEY`` is set).
    """
    if keyed is None:
        keyed = bool(os.environ.get(VERIFY_KEY_ENV))
    limits: list[str] = []
    if not keyed:
        limits += [
            "without a public key it cannot detect the last entries dropped together with "
            "their report files, nor an entry edited with every later hash recomputed: "
            "sign the entries ($FTKIT_SIGNING_KEY) and verify with the public key, and "
            "cross-check the ledger with the systems' journals",
        ]
    if since_checkpoint:
        limits.append("report files of entries verified before the checkpoint were checked "
                      "for presence only, not hashed again: run a full verify now and then")
    return limits


def cross_check(reports: Path, anchors: Iterable[tuple[int, str]]) -> list[str]:
    """Problems found comparing the ledger with ANCHORS, the (seq, hash) of ledger
    entries as a system's journal recorded them when they were archived ([] = fine).

    An anchored entry missing from the ledger means a dropped tail (or line); one whose
    hash differs means an edit with the chain recomputed. Read-only.
    """
    by_seq: dict[int, str] = {}
    for _number, data, _raw in _parse_lines(Path(reports) / LEDGER):
        if data is not None and isinstance(data.get("seq"), int):
            by_seq[data["seq"]] = str(data.get("hash"))
    problems = []
    for seq, digest in anchors:
        if seq not in by_seq:
            problems.append(f"seq {seq} is journaled with its system but missing from the "
                            f"{LEDGER}: entries were dropped")
        elif by_seq[seq] != digest:
            problems.append(f"seq {seq} differs from the hash its system journaled: the "
                            "entry was edited and the chain recomputed")
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


# --- signatures ------------------------------------------------------------------------

SIGNING_KEY_ENV = "FTKIT_SIGNING_KEY"
VERIFY_KEY_ENV = "FTKIT_VERIFY_KEY"


def _load_pem(path: Path, *, private: bool) -> Any:
    """The Ed25519 key in PEM file PATH (a private key also gives its public key)."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import (
            Ed25519PrivateKey,
            Ed25519PublicKey,
        )
    except ImportError:
        raise ArchiveError("signing the ledger needs the cryptography package",
                           "pip install cryptography") from None
    what = "signing" if private else "public"
    from ftkit.tomlreader import read_file

    # the bounded reader: a FIFO or a device given as the key is refused, never waited on
    data = read_file(Path(path).expanduser(), f"cannot read the {what} key {path}", ArchiveError,
                     max_bytes=64 << 10, kind="PEM",
                     missing=f"give the path of an Ed25519 PEM file (${SIGNING_KEY_ENV} or "
                     f"${VERIFY_KEY_ENV})")
    try:
        if b"PRIVATE KEY" in data:
            key: Any = serialization.load_pem_private_key(data, password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("not an Ed25519 key")
            return key if private else key.public_key()
        if private:
            raise ValueError("a public key cannot sign")
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 key")
        return key
    except (ValueError, TypeError) as err:
        raise ArchiveError(f"{path} is not an Ed25519 {what} key ({err})",
                           "make one with `openssl genpkey -algorithm ed25519 -out KEY.pem`"
                           ) from None


def _public_hex(public: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return bytes(raw).hex()


def _trusted_key(public_key: Path | str | None) -> Any | None:
    ref = public_key if public_key is not None else os.environ.get(VERIFY_KEY_ENV) or None
    return None if ref is None else _load_pem(Path(ref), private=False)


def _signer(signing_key: Path | str | None, reports: Path) -> Any | None:
    """The private key SIGNING_KEY (else ``$FTKIT_SIGNING_KEY``, else the key ``ftkit keys
    init`` made: :func:`ftkit.keys.signing_key_path`) names, or None; refused when it lies
    inside REPORTS (a key stored beside the reports protects nothing)."""
    ref: Path | str | None = signing_key
    if ref is None:  # $FTKIT_SIGNING_KEY, else the key `ftkit keys init` made
        from ftkit.keys import signing_key_path

        ref = signing_key_path()
    if ref is None:
        return None
    path = Path(ref).expanduser().resolve()
    if path.is_relative_to(Path(reports).resolve()):
        raise ArchiveError(f"the signing key {path} is inside the reports folder",
                           "keep the key elsewhere (a key beside the reports protects "
                           "nothing) and give its path in $FTKIT_SIGNING_KEY")
    return _load_pem(path, private=True)


def _sign(key: Any, digest: str) -> dict[str, str]:
    signature = key.sign(digest.encode("ascii"))
    return {"alg": "ed25519", "key": _public_hex(key.public_key()),
            "sig": base64.b64encode(signature).decode("ascii")}


def _signature_problem(where: str, signature: Any, digest: str, trusted: Any | None, *,
                       covered: bool = False, trusted_hex: str | None = None) -> str | None:
    """The problem with a line's SIGNATURE over DIGEST (by TRUSTED when given, whose
    public key in hex is TRUSTED_HEX when the caller has it), None if none; COVERED: the
    line is chained to a checkpoint whose signature by the trusted key was checked, so
    its own signature's key is compared but the signature itself not checked again (the
    chain binds it)."""
    if signature is None:
        return None if trusted is None else f"{where} is not signed by the given key"
    if trusted is not None and trusted_hex is None:
        trusted_hex = _public_hex(trusted)
    if covered and isinstance(signature, Mapping):
        if trusted is not None and trusted_hex != str(signature.get("key")):
            return f"{where} is signed by another key than the given one"
        return None
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return f"{where} is signed, and checking it needs the cryptography package"
    try:
        named = Ed25519PublicKey.from_public_bytes(bytes.fromhex(str(signature["key"])))
        raw = base64.b64decode(str(signature["sig"]), validate=True)
        if signature.get("alg") != "ed25519":
            raise ValueError(signature.get("alg"))
    except (KeyError, TypeError, ValueError, binascii.Error):
        return f"{where} has a malformed signature"
    key = trusted if trusted is not None else named
    if trusted is not None and trusted_hex != str(signature["key"]):
        return f"{where} is signed by another key than the given one"
    try:
        key.verify(raw, digest.encode("ascii"))
    except InvalidSignature:
        return (f"{where} has a signature that does not match its hash: it was edited and "
                "its hash recomputed")
    return None


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
    """Mask secrets in NB in place: the injected parameters and every string in it; and
    this machine's paths in every string (a traceback's files, a kernel's folders)."""
    paths = machine_paths()
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags or "parameters" in tags:
            cell.source = "\n".join(_mask_assignment(line) for line in str(cell.source).split("\n"))
    papermill = nb.metadata.get("papermill")
    if isinstance(papermill, dict) and isinstance(papermill.get("parameters"), dict):
        papermill["parameters"] = redact(papermill["parameters"], extra=extra)

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return mask_paths(scrub(node, extra=extra), paths)
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
    journal_entry: int | None = None,
    journal_hash: str | None = None,
    signing_key: Path | str | None = None,
) -> LedgerEntry:
    """Archive the executed notebook EXECUTED under REPORTS and append its ledger line.

    The facts come from the notebook's last :class:`RunResult`, else from PARAMETERS; the
    outcome is ``failed`` when ERROR is given or the notebook reported no result. The
    notebook (secrets masked, facts in ``metadata.ftkit``) and its HTML are written
    tmp-then-rename; the ledger line is appended under a file lock, so concurrent runs
    keep the chain. JOURNAL_ENTRY and JOURNAL_HASH (the id and hash of the session's last
    journal entry; else the result's ``journal_entry``/``journal_hash``, when the runbook
    reports them) go into the line; with SIGNING_KEY (a PEM file outside REPORTS, else
    ``$FTKIT_SIGNING_KEY``) the line is signed with Ed25519.

    Refused with :class:`ArchiveError`, with nothing written: a notebook that was
    already archived (an archived copy, or the same notebook handed in twice; the error
    names its entry), one that was never executed (unless ERROR says why), a signing key
    that cannot be used. Raises :class:`ArchiveError` if the existing ledger is
    unreadable (the report files are written first, and named in the error).
    """
    import nbformat

    reports = Path(reports)
    try:
        raw = Path(executed).read_bytes()
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except (OSError, ValueError) as err:  # NotJSONError, NBFormatError are ValueErrors
        raise ArchiveError(
            f"cannot read executed notebook {executed}: {type(err).__name__}: {err}",
            "give the output notebook papermill wrote",
        ) from err
    if error is None and not _was_executed(nb):
        raise ArchiveError(f"{executed} was never executed (no cell ran)",
                           "run it first: ftkit run RUNBOOK, or papermill")
    signer = _signer(signing_key, reports)
    source = _sha256(raw)
    archived = nb.metadata.get("ftkit")
    if isinstance(archived, Mapping) and "seq" in archived:
        raise AlreadyArchived(
            f"{executed} is already archived: it is the report of ledger entry seq "
            f"{archived.get('seq')} ({archived.get('runbook')}, {archived.get('started')})",
            "nothing to do; `ftkit reports list` shows the archive")
    reports.mkdir(parents=True, exist_ok=True)
    result = result_from_notebook(nb) or {}
    params = dict(parameters)
    secrets = secret_values(params)  # literals to mask wherever they were echoed

    def fact(name: str) -> str:
        value = result.get(name)
        if value in (None, ""):
            value = params.get(name)
        return scrub("" if value is None else str(value), extra=secrets)

    outcome, notes = run_outcome(result, error)
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
        # who ran it, as authenticated (the kernel's account, else this process's)
        "account": scrub(str(result.get("account") or _account()), extra=secrets),
        "system": fact("system"),
        "started": _iso(started),
        "ended": _iso(ended),
        "outcome": outcome.value,
        "outage_s": outage_s,
        "error": scrub("; ".join(notes), extra=secrets) if notes else None,
    }
    # the change window (met?) and the outage budget the run reported (ftkit/window.py)
    controls = {k: result[k] for k in ("window", "outage_budget")
                if isinstance(result.get(k), Mapping)}
    if controls:
        facts["controls"] = json.loads(_json(redact(controls, extra=secrets)))
    if isinstance(result.get("approved_by"), list) and result["approved_by"]:  # Commit's
        facts["approved_by"] = [scrub(str(a), extra=secrets) for a in result["approved_by"]]
    anchor: dict[str, Any] = {"source": source}
    # the anchor comes from the caller, else from the runbook's result (the kernel knows it)
    entry_id = journal_entry if journal_entry is not None else result.get("journal_entry")
    entry_hash = journal_hash if journal_hash is not None else result.get("journal_hash")
    if isinstance(entry_id, int) and not isinstance(entry_id, bool):
        anchor["journal_entry"] = entry_id
    if isinstance(entry_hash, str) and _HEX64.fullmatch(entry_hash):
        anchor["journal_hash"] = entry_hash
    stamp = started.replace(tzinfo=started.tzinfo or UTC).astimezone(UTC)
    base = f"{stamp:%Y%m%dT%H%M%SZ}-{_safe(runbook_stem) or 'runbook'}"
    if _safe(facts["change_id"]):
        base += f"-{_safe(facts['change_id'])}"

    # the record's summary block and evidence, from the facts and the system's journal
    nb.metadata["ftkit_record"] = record_facts(facts, result)
    _scrub_notebook(nb, secrets)
    with _ledger_lock(reports):
        name, counter = base, 1
        while (reports / f"{name}.ipynb").exists() or (reports / f"{name}.html").exists():
            counter += 1
            name = f"{base}-{counter}"
        ledger = reports / LEDGER
        damaged: ArchiveError | None = None
        try:
            last, twin = _ledger_tail(reports, source)
            # one entry per session's end: another notebook citing the same journal entry
            # with the same outcome (a rerun that only reports the finished session) reports
            # the same run (a status or check citing it is another record)
            session_twin = None if "journal_hash" not in anchor else _ledger_tail(
                reports, anchor["journal_hash"], key="journal_hash")[1]
        except ArchiveError as err:
            last, twin, session_twin, damaged = None, None, None, err
        if twin is not None:
            raise AlreadyArchived(
                f"{executed} is already archived as ledger entry seq {twin.seq} "
                f"({twin.notebook})", "nothing to do; `ftkit reports list` shows the archive")
        if session_twin is not None and session_twin.outcome == facts["outcome"]:
            raise AlreadyArchived(
                f"{executed} reports a run already archived as ledger entry seq "
                f"{session_twin.seq} ({session_twin.notebook}: {session_twin.outcome}, the "
                f"same journal entry {session_twin.journal_entry})",
                "nothing to do; `ftkit reports list` shows the archive")
        seq = last.seq + 1 if last else 1
        nb.metadata["ftkit"] = {"seq": seq, **facts}
        papermill = nb.metadata.get("papermill")
        if isinstance(papermill, dict) and papermill.get("output_path"):
            papermill["output_path"] = f"{name}.ipynb"  # where it is kept, not a scratch folder
        nb_bytes = nbformat.writes(nb).encode("utf-8")
        html_bytes = _render_html(nb).encode("utf-8")
        files = {f"{name}.ipynb": _sha256(nb_bytes), f"{name}.html": _sha256(html_bytes)}
        # the in-toto attestation of the two (ftkit.attest), listed in the line like them
        from ftkit.attest import SUFFIX, attestation_bytes

        statement = attestation_bytes(files, {"seq": seq, **facts}, signer)
        _write_atomic(reports / f"{name}.ipynb", nb_bytes)
        _write_atomic(reports / f"{name}.html", html_bytes)
        _write_atomic(reports / f"{name}{SUFFIX}", statement)
        files[f"{name}{SUFFIX}"] = _sha256(statement)
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
            **anchor,
            "prev": last.hash if last else ZERO_HASH,
        }
        entry = json.loads(_json(entry))
        entry["hash"] = _entry_hash(entry)
        if signer is not None:
            entry["signature"] = _sign(signer, entry["hash"])
        _append_line(ledger, _json(entry))
        # the signed checkpoint of the ledger now (ftkit.checkpoints): archive, witnesses
        from ftkit.checkpoints import write_checkpoint

        write_checkpoint(reports, size=seq, head=entry["hash"], signer=signer)
    return LedgerEntry.from_dict(entry)


def _ledger_tail(reports: Path, source: str, *, key: str = "source") -> tuple[
        LedgerEntry | None, LedgerEntry | None]:
    """(the last entry, the first entry whose KEY is SOURCE: by default the notebook whose
    SHA-256 it is) of REPORTS' ledger, from one read and two byte searches: what appending
    needs, in the same time for ten entries as for a hundred thousand (lines are
    canonical, so each value is spelt one way). Read-only; :class:`ArchiveError` if
    either line is not an entry.
    """
    path = reports / LEDGER
    if not path.exists():
        return None, None
    data = path.read_bytes()

    def entry_at(at: int) -> LedgerEntry:
        start = data.rfind(b"\n", 0, at) + 1
        end = data.find(b"\n", at)
        raw = data[start:end if end >= 0 else len(data)]
        try:
            parsed = canonical.loads_strict(raw)
            if not isinstance(parsed, dict):
                raise ValueError("not a JSON object")
            return LedgerEntry.from_dict(parsed)
        except (KeyError, TypeError, ValueError) as err:
            number = data.count(b"\n", 0, start) + 1
            raise ArchiveError(
                f"{path}:{number} is not a ledger entry ({err})",
                "run `ftkit reports verify` and restore the ledger from a backup",
            ) from None

    body = data.rstrip()
    last = entry_at(body.rfind(b"\n") + 1) if body else None
    found = data.find(f'"{key}":"{source}"'.encode("ascii"))
    return last, entry_at(found) if found >= 0 else None


def _was_executed(nb: Any) -> bool:
    """Whether any code cell of NB ran (an execution count or an output)."""
    return any(cell.get("cell_type") == "code"
               and (cell.get("execution_count") is not None or cell.get("outputs"))
               for cell in nb.get("cells", []))


def record_facts(facts: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`ftkit.record.record_facts` (read-only), imported when a run is archived."""
    from ftkit.record import record_facts as gather

    return gather(facts, result)


def _render_html(nb: Any) -> str:
    from ftkit.report_html import notebook_html

    return notebook_html(nb)
