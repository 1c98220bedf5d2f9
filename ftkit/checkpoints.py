"""Signed checkpoints of the report archive: proof of completeness, kept in three places.

A ledger hash chain proves that what is there was not changed; it cannot prove that
nothing is missing (drop the last entries with their files, or everything, and what is
left still chains). So every archive write (:func:`ftkit.archive.archive_run`, hence
``ftkit run`` and ``reports add``) writes a **checkpoint** — the transparency-log pattern
(Certificate Transparency's signed tree heads), in the C2SP ``tlog-checkpoint`` format::

    ftkit-archive/<origin id>          origin: "ftkit-archive/" + the first entry's hash[:16]
    <ledger size>                      entries in the ledger (the seq of the last)
    <base64 of the head hash>          the hash of the entry at that seq (32 bytes)
    time 2026-12-03T05:30:00.000Z      extension lines: when,
    key ed25519 <base64 public key>    the signer's public key (fingerprint: its SHA-256),
    next-key ed25519 <base64 key>      (rotation only) the key that takes over
                                       (a blank line)
    — ftkit-archive <base64(key id ‖ Ed25519 signature of the text above the blank line)>

(a C2SP signed note; key id = SHA-256("ftkit-archive" ‖ 0x0A ‖ 0x01 ‖ public key)[:4]).
It is written to three places: the archive's ``checkpoints.jsonl`` (one ``{"note": …}`` a
line), the journal of the system the entry is about (an ``info`` entry with step
``checkpoint``, inside that journal's hash chain: :func:`journal_detail`, written by
:func:`ftkit.runner.anchor`), and every witness (``$FTKIT_WITNESS``: folders elsewhere,
``<origin id>.jsonl`` in each).

:func:`verify_checkpoints` (``ftkit reports verify``) checks the ledger against every
checkpoint it can find — the archive's, every journal under ``$FTKIT_HOME`` and beside the
state of the systems the ledger names (systems removed since included), every witness —
and says what it cannot prove where no outside checkpoint covers the ledger. The key it
trusts is ``--public-key``, else the one pinned by the archive's first checkpoint, passed
on by rotation checkpoints signed by a trusted key (docs/VERIFY.md).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftkit import canonical

__all__ = [
    "CHECKPOINTS",
    "WITNESS_ENV",
    "Checkpoint",
    "Verdict",
    "journal_detail",
    "make_note",
    "parse_note",
    "verify_checkpoints",
    "witnesses_from_env",
    "write_checkpoint",
    "write_rotation",
]

log_ = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints.jsonl"
WITNESS_ENV = "FTKIT_WITNESS"
ORIGIN_PREFIX = "ftkit-archive/"
KEY_NAME = "ftkit-archive"
_DASH = "\u2014"  # C2SP signature lines start with an em dash


# --- the note --------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """One parsed checkpoint note."""

    origin: str
    size: int
    head: str  # hex
    time: str
    key: bytes | None  # the signer's raw public key, None when unsigned
    next_key: bytes | None
    body: str  # the signed text (the note up to, not including, the blank line)
    signatures: tuple[tuple[bytes, bytes], ...]  # (key id, signature)
    note: str

    @property
    def fingerprint(self) -> str | None:
        """SHA-256 (hex) of the signer's public key."""
        return None if self.key is None else hashlib.sha256(self.key).hexdigest()


def key_id(raw_public: bytes) -> bytes:
    """C2SP note key id: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4] (0x01 = Ed25519)."""
    return hashlib.sha256(KEY_NAME.encode("ascii") + b"\n\x01" + raw_public).digest()[:4]


def make_note(*, origin: str, size: int, head: str, signers: Sequence[Any] = (),
              next_key: Any | None = None, time: str | None = None) -> str:
    """The checkpoint note of a ledger of SIZE entries whose last hash is HEAD (hex),
    signed by each of SIGNERS (Ed25519 private keys; the first is the one named by the
    ``key`` line); NEXT_KEY (a private or public key) names a rotation's new key."""
    from ftkit.keys import raw_public

    lines = [origin, str(size), base64.b64encode(bytes.fromhex(head)).decode("ascii"),
             f"time {time or canonical.iso(canonical.utc_now())}"]
    if signers:
        lines.append(f"key ed25519 {_b64(raw_public(signers[0].public_key()))}")
    if next_key is not None:
        public = next_key.public_key() if hasattr(next_key, "public_key") else next_key
        lines.append(f"next-key ed25519 {_b64(raw_public(public))}")
    body = "\n".join(lines) + "\n"
    note = body
    if signers:
        note += "\n"
        for signer in signers:
            raw = raw_public(signer.public_key())
            signature = signer.sign(body.encode("utf-8"))
            note += f"{_DASH} {KEY_NAME} {_b64(key_id(raw) + signature)}\n"
    return note


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def parse_note(note: str) -> Checkpoint:
    """The checkpoint in NOTE; ValueError if it is not one."""
    body, _, signed = note.partition("\n\n")
    if not body.endswith("\n"):
        body += "\n"
    lines = body[:-1].split("\n")
    if len(lines) < 4 or not lines[0].startswith(ORIGIN_PREFIX):
        raise ValueError("not an ftkit-archive checkpoint")
    size = int(lines[1])
    if size < 0 or str(size) != lines[1]:
        raise ValueError(f"bad size {lines[1]!r}")
    head = base64.b64decode(lines[2], validate=True)
    if len(head) != 32:
        raise ValueError("the head hash is not 32 bytes")
    extra: dict[str, str] = {}
    for line in lines[3:]:
        name, _, value = line.partition(" ")
        if name in extra:
            raise ValueError(f"{name} twice")
        extra[name] = value

    def key(name: str) -> bytes | None:
        if name not in extra:
            return None
        kind, _, value = extra[name].partition(" ")
        raw = base64.b64decode(value, validate=True)
        if kind != "ed25519" or len(raw) != 32:
            raise ValueError(f"bad {name} line")
        return raw

    signatures = []
    for line in signed.split("\n"):
        if not line:
            continue
        dash, name, value = line.split(" ")
        if dash != _DASH or name != KEY_NAME:
            raise ValueError("bad signature line")
        raw = base64.b64decode(value, validate=True)
        if len(raw) != 68:
            raise ValueError("bad signature length")
        signatures.append((raw[:4], raw[4:]))
    return Checkpoint(origin=lines[0], size=size, head=head.hex(), time=extra.get("time", ""),
                      key=key("key"), next_key=key("next-key"), body=body,
                      signatures=tuple(signatures), note=note)


def signers_of(point: Checkpoint) -> list[str] | None:
    """Fingerprints of the keys (``key``, ``next-key``) whose signatures on POINT hold;
    None if any signature on it does not hold (or names no key the note carries)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = {key_id(raw): raw for raw in (point.key, point.next_key) if raw is not None}
    good = []
    for kid, signature in point.signatures:
        raw = keys.get(kid)
        if raw is None:
            return None
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(signature, point.body.encode("utf-8"))
        except InvalidSignature:
            return None
        good.append(hashlib.sha256(raw).hexdigest())
    return good


# --- writing ---------------------------------------------------------------------------


def _first_hash(reports: Path) -> str | None:
    """The hash of the ledger's first entry (read-only; None if there is none)."""
    from ftkit.archive import LEDGER

    with contextlib.suppress(OSError, ValueError, KeyError, TypeError), \
            (reports / LEDGER).open("rb") as handle:
        for line in handle:
            if line.strip():
                return str(json.loads(line)["hash"])
    return None


def origin_of(reports: Path) -> str | None:
    """``ftkit-archive/<first entry's hash[:16]>`` of REPORTS' ledger; None when empty."""
    first = _first_hash(reports)
    return None if first is None else ORIGIN_PREFIX + first[:16]


def witnesses_from_env() -> list[Path]:
    """The witness folders ``$FTKIT_WITNESS`` names (``os.pathsep``-separated)."""
    return list(dict.fromkeys(Path(p).expanduser() for p in
                              os.environ.get(WITNESS_ENV, "").split(os.pathsep) if p.strip()))


def _append(path: Path, record: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(canonical.dumps(dict(record)) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _publish(reports: Path, note: str, origin: str, *, witnesses: Iterable[Path]) -> None:
    """Append NOTE to REPORTS' checkpoints and to each witness folder (a witness that
    cannot be written is logged, not fatal: the run is archived already)."""
    _append(reports / CHECKPOINTS, {"note": note})
    record = {"note": note, "reports": str(reports.resolve())}
    for folder in witnesses:
        try:
            _append(Path(folder) / f"{origin.removeprefix(ORIGIN_PREFIX)}.jsonl", record)
        except OSError as err:
            log_.warning("cannot write the checkpoint to the witness %s: %s", folder, err)


def write_checkpoint(reports: Path, *, size: int, head: str, signer: Any | None,
                     witnesses: Iterable[Path] | None = None) -> str:
    """Write the checkpoint of REPORTS' ledger at SIZE entries (last hash HEAD), signed by
    SIGNER when given, to ``REPORTS/checkpoints.jsonl`` and each witness (default
    ``$FTKIT_WITNESS``); returns the note. Called under the ledger lock."""
    reports = Path(reports)
    origin = origin_of(reports) or ORIGIN_PREFIX + head[:16]
    note = make_note(origin=origin, size=size, head=head,
                     signers=[signer] if signer is not None else [])
    _publish(reports, note, origin,
             witnesses=witnesses_from_env() if witnesses is None else witnesses)
    return note


def write_rotation(reports: Path, *, old: Any, new: Any) -> str:
    """Write a rotation checkpoint into REPORTS (and the witnesses): the ledger's current
    size and head, signed by OLD and by NEW, naming NEW as the next key."""
    from ftkit.archive import LEDGER, ZERO_HASH, _ledger_lock

    reports = Path(reports)
    reports.mkdir(parents=True, exist_ok=True)
    with _ledger_lock(reports):
        size, head = 0, ZERO_HASH
        with contextlib.suppress(OSError):
            body = (reports / LEDGER).read_bytes().rstrip()
            if body:
                last = json.loads(body[body.rfind(b"\n") + 1:])
                size, head = int(last["seq"]), str(last["hash"])
        origin = origin_of(reports) or ORIGIN_PREFIX + "0" * 16
        note = make_note(origin=origin, size=size, head=head, signers=[old, new],
                         next_key=new)
        _publish(reports, note, origin, witnesses=witnesses_from_env())
    return note


def journal_detail(reports: Path, *, seq: int, entry: Mapping[str, Any]) -> dict[str, Any]:
    """What the system's journal records of the archive write of ledger entry SEQ: the
    ledger seq and hash (what :meth:`ftkit.journal.Journal.anchors` reads), the entry's
    runbook, change, system and outcome (so a missing entry can be named), the archive's
    folder and the checkpoint note written for it (read from the archive's tail)."""
    reports = Path(reports)
    detail: dict[str, Any] = {
        "ledger_seq": seq, "ledger_hash": entry.get("hash"),
        "change_id": entry.get("change_id"), "runbook": entry.get("runbook"),
        "system": entry.get("system"), "outcome": entry.get("outcome"),
        "reports": str(reports.resolve()),
    }
    note = _note_at(reports, seq, str(entry.get("hash")))
    if note is not None:
        detail["checkpoint"] = note
    return detail


def _note_at(reports: Path, size: int, head: str) -> str | None:
    """The newest note in REPORTS' checkpoints for SIZE and HEAD (reads the file's tail)."""
    path = reports / CHECKPOINTS
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            end = handle.tell()
            handle.seek(max(0, end - (64 << 10)))
            tail = handle.read()
    except OSError:
        return None
    for line in reversed(tail.split(b"\n")):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            note = str(json.loads(line)["note"])
            point = parse_note(note)
            if point.size == size and point.head == head:
                return note
    return None


# --- finding checkpoints -------------------------------------------------------------------


@dataclass
class Found:
    """A checkpoint and where it was found."""

    where: str  # "the archive", "the journal of sim://a", "witness /w"
    outside: bool  # found outside the archive (a journal or a witness)
    point: Checkpoint | None  # None: a journal anchor without a note (older ftkit)
    size: int
    head: str
    reports: str | None = None  # the archive folder it was written for, when recorded
    facts: dict[str, Any] = field(default_factory=dict)  # runbook, change, system, outcome
    error: str | None = None  # why the note could not be read
    light: bool = False  # the archive's own, agreeing with the ledger: not parsed in full


def _own(reports: Path, index: Mapping[int, tuple[str, str, str]]) -> Iterator[Found]:
    """The archive's own checkpoints. Only the first, the last, a rotation and one that
    disagrees with INDEX (the ledger) are parsed in full; one that agrees is ``light``
    (it repeats what the ledger says, and the newest one's signature covers it)."""
    path = reports / CHECKPOINTS
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as handle:
        lines = [(n, line) for n, line in enumerate(handle, start=1) if line.strip()]
    for at, (number, line) in enumerate(lines):
        where = f"the archive's {CHECKPOINTS} line {number}"
        try:
            note = str(json.loads(line)["note"])
            if 0 < at < len(lines) - 1 and "\nnext-key " not in note:
                _origin, size_text, head_text, _rest = note.split("\n", 3)
                size, head = int(size_text), base64.b64decode(head_text).hex()
                if size in index and index[size][0] == head:
                    yield Found(where, False, None, size, head, light=True)
                    continue
            point = parse_note(note)
        except (ValueError, KeyError, TypeError, binascii.Error) as err:
            yield Found(where, False, None, 0, "", error=str(err))
            continue
        yield Found(where, False, point, point.size, point.head)


def _witness(folder: Path) -> Iterator[Found]:
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else \
        [folder] if folder.is_file() else []
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"witness {path} line {number}"
                try:
                    record = json.loads(line)
                    point = parse_note(str(record["note"]))
                except (ValueError, KeyError, TypeError, binascii.Error) as err:
                    yield Found(where, True, None, 0, "", error=str(err))
                    continue
                yield Found(where, True, point, point.size, point.head,
                            reports=record.get("reports"))


def journal_files(systems: Iterable[str]) -> list[Path]:
    """Every journal file ftkit may have written: under ``$FTKIT_HOME`` (the journals of
    sim twins, beside them, removed ones included; the ``journals/`` folder) and where the
    SYSTEMS (targets) keep their state. Read-only."""
    from ftkit.home import ftkit_home

    found: set[Path] = set()
    home = ftkit_home()
    if home.is_dir():
        for path in home.rglob("journal*.db*"):
            found.add(path)
        if (home / "journals").is_dir():
            found.update((home / "journals").glob("*.db*"))
    for system in systems:
        with contextlib.suppress(Exception):  # a system that cannot be reached: skipped
            from ftkit.journal import journal_path_of

            path = journal_path_of(system)
            found.update(path.parent.glob(path.name + "*"))
            found.update(path.parent.glob("journal*.db*"))
    return sorted({p.resolve() for p in found if p.is_file()
                   and not p.name.endswith(("-wal", "-shm", "-journal"))})


def _journal(path: Path, unreadable: list[str]) -> Iterator[Found]:
    """The checkpoints (and older anchors) journal PATH holds; read-only (SQLite ro). A
    journal that cannot be read is added to UNREADABLE."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        unreadable.append(str(path))
        return
    try:
        target = ""
        with contextlib.suppress(sqlite3.Error):
            row = conn.execute("SELECT target FROM sessions ORDER BY id LIMIT 1").fetchone()
            target = row[0] if row else ""
        try:
            rows = conn.execute("SELECT id, detail FROM entries WHERE kind = 'info' AND "
                                "detail LIKE '%ledger_seq%' ORDER BY id").fetchall()
        except sqlite3.Error:
            unreadable.append(str(path))
            return
    finally:
        conn.close()
    for entry_id, text in rows:
        try:
            detail = json.loads(text)
            seq, digest = int(detail["ledger_seq"]), str(detail["ledger_hash"])
        except (ValueError, KeyError, TypeError):
            continue
        system = str(detail.get("system") or target or "")
        where = f"the journal of {system or path.name} (entry {entry_id})"
        facts = {k: detail.get(k) for k in ("runbook", "change_id", "system", "outcome")}
        point = None
        error = None
        if "checkpoint" in detail:
            try:
                point = parse_note(str(detail["checkpoint"]))
            except (ValueError, binascii.Error) as err:
                error = str(err)
        yield Found(where, True, point, seq, digest, reports=detail.get("reports"),
                    facts=facts | {"system": system}, error=error)


# --- verifying --------------------------------------------------------------------------


@dataclass
class Verdict:
    """What :func:`verify_checkpoints` found: PROBLEMS (fail), LIMITS (what it cannot
    prove), and the counts it proved against."""

    problems: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    outside: int = 0  # checkpoints outside the archive that apply to it
    own: int = 0
    trusted: list[str] = field(default_factory=list)  # fingerprints
    #: the ledger's seq up to which a checkpoint signed by a trusted key (its signature
    #: checked) agrees with the ledger: every line up to it is bound to that signature
    covered: int = 0


LedgerIndex = tuple[dict[int, tuple[str, str, str]], dict[str, int]]


def index_line(data: Any, index: dict[int, tuple[str, str, str]],
               signers: dict[str, int]) -> None:
    """Add DATA, one parsed ledger line, to INDEX ({seq: (hash, outcome, label)}) and
    SIGNERS ({signing public key (hex): first seq}); a line that is no entry is left out
    (it is :func:`ftkit.archive.verify_reports`' business)."""
    try:
        seq = int(data["seq"])
        # JSON values format as str() spells them
        label = f"{data.get('runbook') or ''} {data.get('change_id') or ''}".strip()
        index[seq] = (str(data["hash"]), str(data.get("outcome")),
                      f"{label} on {data.get('system') or '?'}")
        signature = data.get("signature")
        if isinstance(signature, dict):
            signers.setdefault(str(signature.get("key")), seq)
    except (ValueError, KeyError, TypeError):
        return


def _ledger_index(reports: Path) -> LedgerIndex:
    """{seq: (hash, outcome, label)} of the ledger's entries and {signing public key (hex):
    first seq} (unparsable lines are :func:`ftkit.archive.verify_reports`' business)."""
    from ftkit.archive import LEDGER

    index: dict[int, tuple[str, str, str]] = {}
    signers: dict[str, int] = {}
    path = reports / LEDGER
    if not path.is_file():
        return index, signers
    with path.open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            with contextlib.suppress(ValueError):
                index_line(json.loads(line), index, signers)
    return index, signers


def _named(found: Found) -> str:
    facts = found.facts
    if not facts.get("runbook"):
        return f"seq {found.size}"
    what = " ".join(str(facts.get(k) or "") for k in ("runbook", "change_id")).strip()
    return (f"seq {found.size} ({what}, {facts.get('outcome')}, "
            f"on {facts.get('system') or '?'})")


def verify_checkpoints(reports: Path, *, witnesses: Iterable[Path] = (),
                       public_key: Any | None = None,
                       ledger: LedgerIndex | None = None) -> Verdict:
    """Check REPORTS' ledger against every checkpoint found: the archive's own, those in
    every journal (:func:`journal_files`) and every witness folder in WITNESSES (plus
    ``$FTKIT_WITNESS``). Read-only.

    A checkpoint of a size beyond the ledger's end names the entries dropped; one whose
    head is not the ledger's hash at that seq, an entry edited or the chain rewritten; a
    signature that does not hold, or by a key not trusted (PUBLIC_KEY, an Ed25519 public
    key object, else the key pinned by the archive's first checkpoint and the rotations
    it signed), a forgery. Journal and witness checkpoints apply when they name this
    archive's origin or its folder (so an emptied archive still meets them).

    LEDGER: what :func:`index_line` gathered of every line of the ledger, when its reader
    (:func:`ftkit.archive.verify_archive`) parsed it already; else it is read here.
    """
    from ftkit.keys import fingerprint

    reports = Path(reports)
    verdict = Verdict()
    index, line_signers = ledger if ledger is not None else _ledger_index(reports)
    size = max(index) if index else 0
    origin = ORIGIN_PREFIX + index[1][0][:16] if 1 in index else None
    here = str(reports.resolve())
    own = list(_own(reports, index))
    systems = {label.rsplit(" on ", 1)[-1] for _h, _o, label in index.values()}
    outside: list[Found] = []
    unreadable: list[str] = []
    for path in journal_files(s for s in systems if s and s != "?"):
        outside += _journal(path, unreadable)
    for folder in dict.fromkeys(Path(w).resolve() for w in [*witnesses,
                                                             *witnesses_from_env()]):
        outside += _witness(folder)

    def ours(found: Found) -> bool:
        if found.reports == here:
            return True
        if found.point is not None:
            return origin is not None and found.point.origin == origin
        # an older anchor (no note): it applies when its system is one the ledger names
        return found.reports is None and str(found.facts.get("system")) in systems

    outside = [f for f in outside if ours(f)]
    verdict.own, verdict.outside = len(own), len(outside)

    # the trusted keys: the given one, else the first checkpoint's and its rotations
    trusted: set[str] = set()
    if public_key is not None:
        trusted.add(fingerprint(public_key))
    else:
        for found in sorted((f for f in own if f.point is not None),
                            key=lambda f: f.size):
            if found.point is not None and found.point.fingerprint:
                trusted.add(found.point.fingerprint)
                break
    if not trusted:  # no checkpoint of its own names a key: the earliest outside one does
        for found in sorted(outside, key=lambda f: f.size):
            if found.point is not None and found.point.fingerprint:
                trusted.add(found.point.fingerprint)
                break
    problems: list[tuple[int, str]] = []
    for found in sorted(own, key=lambda f: f.size):
        point = found.point
        if point is None or point.next_key is None:
            continue
        good = signers_of(point)
        if good and point.fingerprint in trusted:
            trusted.add(hashlib.sha256(point.next_key).hexdigest())
    verdict.trusted = sorted(trusted)

    # A signature is checked where it decides something: a checkpoint that disagrees
    # with the ledger (forged, or real and the ledger lost something?), one by a key not
    # trusted, a rotation, and the newest agreeing one by a trusted key (which binds every
    # line before it through the chain: Verdict.covered). An agreeing checkpoint by a
    # trusted key says what the ledger says; its signature adds nothing, so 10,000 of them
    # cost no 10,000 signature checks.
    agreeing: list[Found] = []
    for found in [*own, *outside]:
        if found.error is not None:
            problems.append((found.size, f"{found.where} holds a checkpoint that cannot be "
                             f"read ({found.error}): it was edited"))
            continue
        if found.light:
            continue
        point = found.point
        agrees = found.size == 0 or (found.size in index and index[found.size][0] == found.head)
        if point is not None and point.signatures:
            if agrees and point.fingerprint in trusted and point.next_key is None:
                agreeing.append(found)
                continue
            good = signers_of(point)
            if good is None:
                problems.append((found.size, f"the checkpoint at seq {found.size} in "
                                 f"{found.where} has a signature that does not hold: it was "
                                 "forged or edited"))
                continue
            if good and trusted and not set(good) & trusted:
                problems.append((found.size, f"the checkpoint at seq {found.size} in "
                                 f"{found.where} is signed by key {good[0][:16]}…, which is "
                                 f"not the archive's trusted key ({_short(trusted)}): the "
                                 "archive or its checkpoints were re-signed with another key"))
                continue
        if found.size == 0:
            continue
        if found.size not in index:
            missing = (f"entries {size + 1}–{found.size}" if found.size > size + 1
                       else f"entry {found.size}")
            problems.append((found.size, f"ledger entry {_named(found)} is missing: "
                             f"{found.where} recorded a checkpoint at seq {found.size}, the "
                             f"ledger ends at seq {size} ({missing} dropped)"
                             if found.size > size else
                             f"ledger entry {_named(found)} is missing: {found.where} "
                             f"recorded it"))
        elif index[found.size][0] != found.head:
            _at, outcome, label = index[found.size]
            said = ""
            if found.facts.get("outcome") and found.facts["outcome"] != outcome:
                said = (f" (the ledger says {outcome}, {found.where} recorded "
                        f"{found.facts['outcome']})")
            problems.append((found.size, f"ledger entry {_named(found)} differs from the "
                             f"checkpoint in {found.where}{said}: that entry or one before it "
                             f"was edited, removed or re-chained (the ledger's seq "
                             f"{found.size} is now {label})"))

    for found in sorted(agreeing, key=lambda f: -f.size):
        if found.point is not None and signers_of(found.point):
            verdict.covered = found.size
            break
        problems.append((found.size, f"the checkpoint at seq {found.size} in {found.where} "
                         "has a signature that does not hold: it was forged or edited"))
    # the entries' own signatures: only by a trusted key
    if trusted:
        for key_hex, seq in sorted(line_signers.items(), key=lambda item: item[1]):
            with contextlib.suppress(ValueError):
                if fingerprint(bytes.fromhex(key_hex)) not in trusted:
                    problems.append((seq, f"ledger entry seq {seq} (and maybe later ones) is "
                                     f"signed by key {fingerprint(bytes.fromhex(key_hex))[:16]}"
                                     f"…, not by the archive's trusted key ({_short(trusted)})"))
    seen: set[str] = set()
    # by seq; at one seq, what a journal says first (it names the entry)
    for _seq, text in sorted(problems, key=lambda item: (item[0], "journal" not in item[1])):
        if text not in seen:
            seen.add(text)
            verdict.problems.append(text)
    verdict.limits = _limits(size, own, outside, trusted, given=public_key is not None,
                             witnessed=any("witness" in f.where for f in outside))
    verdict.limits += [f"the journal {path} could not be read: its checkpoints were not "
                       "compared" for path in unreadable]
    return verdict


def _short(trusted: set[str]) -> str:
    return ", ".join(f"{fp[:16]}…" for fp in sorted(trusted))


def _limits(size: int, own: list[Found], outside: list[Found], trusted: set[str], *,
            given: bool, witnessed: bool) -> list[str]:
    """What the checks could not prove, in plain words."""
    limits = []
    covered = max((f.size for f in outside), default=0)
    if size and not outside:
        limits.append("no checkpoint outside the archive (a system's journal or a witness) "
                      "names this archive: the last entries dropped together with their "
                      "files and checkpoints cannot be detected; publish checkpoints to a "
                      "witness ($FTKIT_WITNESS) and verify with --witness")
    elif covered < size:
        limits.append(f"entries {covered + 1}–{size} have no checkpoint outside the archive: "
                      "dropping them together with their files and checkpoints cannot be "
                      "detected")
    if not witnessed:
        limits.append("no witness was given (--witness): an entry whose system's journal "
                      "is gone too cannot be proven present, and an archive deleted with "
                      "every journal cannot be told from one never written")
    if not trusted:
        limits.append("nothing is signed: whoever can write the archive and the journals "
                      "can rewrite them consistently; make a key (`ftkit keys init`) so "
                      "that every entry and checkpoint is signed")
    elif not given:
        limits.append(f"the signatures are checked against the key pinned by the archive's "
                      f"first checkpoint ({_short(trusted)}); an archive rewritten whole, "
                      "first checkpoint included, is caught only by the checkpoints outside "
                      "it: give the key you trust with --public-key")
    return limits
