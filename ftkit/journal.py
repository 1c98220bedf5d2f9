"""The journal: an append-only, hash-chained activity log of upgrade sessions in SQLite.

One journal file per target (``Journal.open("sim://lab")``). It holds

- ``sessions``: one row per Active Upgrade session, with its current upgrade state,
  operational state (Ready / Busy / Broken, with the failing step and reason) and outcome;
  at most one session is unfinished at a time, across processes
  (docs/DOMAIN.md#5-one-session-per-system). Each write of a row appends, in its
  transaction, a chained entry carrying the row (``SESSION_ROW`` in its detail: every
  field, ``data`` as its SHA-256), and :meth:`Journal.verify` recomputes the table from
  the chain, so an edit made with sqlite3 is named
  (docs/DOMAIN.md#8-tampering-is-detected); the ``lease`` row is for people and is not
  covered;
- ``entries``: what happened, in order — intents and their outcomes, state moves,
  decisions, custom actions, messages — from the local log or the Upgrade side's remote
  activity log. Each entry carries the SHA-256 of its fields and of the previous entry's
  hash; triggers refuse UPDATE and DELETE, and :meth:`Journal.verify` finds the first
  entry that was edited, removed or reordered anyway.

Writes follow "write intent, act, then record the outcome": a process killed between
the two leaves an intent without outcome that :meth:`Journal.pending_intent` returns, and
an outcome can carry the new state so that recording it and moving the state is one
transaction. Every write path is one ``BEGIN IMMEDIATE`` transaction (WAL, 30 s busy
timeout), and every message and detail goes through :mod:`ftkit.redact` before storage.
While ``PRAGMA data_version`` says no other connection committed since this object's last
write, the next one reads back none of what it wrote (the chain's end, the session's row,
the intent an outcome answers); a transaction's entries are inserted by one statement,
before the head; a second outcome of an intent is refused by the unique index.

Durability: every commit waits for the disk (``synchronous = FULL``) except a progress note
written with ``sync=False`` (:meth:`Journal.log`), which nothing reads back to decide
anything; the controller lease (:meth:`Journal.claim`, :meth:`Journal.release`), which
names live processes that a power cut ends anyway; and an outcome (or a soak's note)
whose writer's next write is a synced intent (:meth:`Journal.outcome`: a run going straight
on to the next request). In WAL mode such a commit is still atomic and in order, and the next synced
commit makes it durable with everything before it; a power cut can lose only those
written since the last synced commit (a killed process loses nothing committed): at
worst an intent is left without its outcome, as by a kill, and the step is resumed. An
intent and a custom action's result are synced before the system is asked anything, and
a run makes everything durable (:meth:`Journal.sync`) before it returns.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from dataclasses import fields as fields_of
from datetime import datetime
from enum import Enum
from json.encoder import encode_basestring as _quoted  # a JSON string as dumps writes it
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftkit import canonical, home, lock, store
from ftkit.errors import ArchiveError, FtkitError, SessionBusyError, TransitionError
from ftkit.model import OperationalState
from ftkit.redact import MASK, is_secret_key, masker, redact, scrub

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "GENESIS",
    "KINDS",
    "LOG_KINDS",
    "Entry",
    "Journal",
    "Note",
    "SessionRecord",
    "journal_path_of",
    "legacy_journal_path_of",
    "lock_path_of",
]

log_ = logging.getLogger(__name__)

GENESIS = "0" * 64
KINDS = ("intent", "outcome", "info", "warning", "error", "decision", "action", "state")
LOG_KINDS = ("info", "warning", "error", "action")  # what Journal.log() may write
SCHEMA_VERSION = 2  # 2: every sessions-row write is carried by a chained entry (below)
#: the key, in a chained entry's detail, of the sessions row as that entry's write left it
SESSION_ROW = "session_row"
# a chained entry carries these fields of the row as they are, and ``data`` (the session's
# configuration and packages, kilobytes) as the SHA-256 of its stored text, "data_sha256"
_ROW_FIELDS = ("id", "target", "change_id", "operator", "reason", "started", "ended", "outcome",
               "upgrade_state", "operational_state", "broken_step", "broken_reason")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    target            TEXT NOT NULL,
    change_id         TEXT NOT NULL DEFAULT '',
    operator          TEXT NOT NULL DEFAULT '',
    reason            TEXT NOT NULL DEFAULT '',
    started           TEXT NOT NULL,
    ended             TEXT,
    outcome           TEXT,
    upgrade_state     TEXT NOT NULL DEFAULT 'Idle',
    operational_state TEXT NOT NULL DEFAULT 'Ready',
    broken_step       TEXT,
    broken_reason     TEXT,
    data              TEXT NOT NULL DEFAULT '{{}}'
);
-- at most one unfinished session per journal, whatever writes to it
CREATE UNIQUE INDEX IF NOT EXISTS sessions_one_open ON sessions((ended IS NULL))
    WHERE ended IS NULL;
CREATE TABLE IF NOT EXISTS entries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER REFERENCES sessions(id),
    ts         TEXT NOT NULL,
    sim_time   REAL,
    log        TEXT NOT NULL CHECK (log IN ('local', 'remote')),
    kind       TEXT NOT NULL CHECK (kind IN ({", ".join(repr(k) for k in KINDS)})),
    step       TEXT NOT NULL DEFAULT '',
    message    TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT 'null',
    intent_id  INTEGER REFERENCES entries(id),
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS entries_session ON entries(session_id, kind);
-- an intent has at most one outcome: nothing is recorded done twice
CREATE UNIQUE INDEX IF NOT EXISTS entries_one_outcome ON entries(intent_id)
    WHERE kind = 'outcome';
-- one controller per journal (system): who drives its session's steps now
CREATE TABLE IF NOT EXISTS lease (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    host      TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    pid_start TEXT NOT NULL,
    since     TEXT NOT NULL,
    heartbeat REAL NOT NULL,
    holder    TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
BEGIN
    SELECT RAISE(ABORT, 'journal entries are append-only');
END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
BEGIN
    SELECT RAISE(ABORT, 'journal entries are append-only');
END;
"""

_HASHED = (
    "id",
    "session_id",
    "ts",
    "sim_time",
    "log",
    "kind",
    "step",
    "message",
    "detail",
    "intent_id",
    "prev_hash",
)


def _utc_now() -> datetime:
    return canonical.utc_now()


def _iso(moment: datetime) -> str:
    return canonical.iso(moment)


def _text(value: Any) -> str:
    if type(value) is not str:
        if isinstance(value, Enum):
            value = value.value
        value = str(value)
    return scrub(value)


def _opt_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _json(value: Any) -> str:
    """Canonical JSON (:func:`ftkit.canonical.dumps`)."""
    return canonical.dumps(value)


def _clean_json(value: Any) -> str:
    """VALUE made JSON (so that str() of odd objects is scrubbed too), redacted, canonical."""
    return _clean(value)[0]


def _clean(value: Any) -> tuple[str, Any]:
    """:func:`_clean_json` of VALUE, and what that text decodes to."""
    if value is None:
        return "null", None
    try:  # JSON as it stands (the usual detail): checked and redacted in one walk
        plain = _redacted(value, masker())
    except _NotPlain:  # made JSON first, so that str() of odd objects is redacted too
        plain = redact(json.loads(canonical.dumps(value)))
    return canonical.dumps(plain), plain


class _NotPlain(Exception):
    """A value that is not JSON as it stands (what json.loads would not give back)."""


def _redacted(value: Any, sub: Callable[[str], str] | None) -> Any:
    """:func:`ftkit.redact.redact` of VALUE (SUB: :func:`ftkit.redact.masker`, None while
    no secret is registered) when it is JSON as it stands (what json.loads would give
    back for it); raises _NotPlain, having changed nothing, when it is not."""
    kind = type(value)
    if kind is str:
        return value if sub is None else sub(value)
    if kind is dict:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            name = key if sub is None else sub(key)
            held = type(item)  # the usual items inline: a detail is mostly these
            if _secret_key(key) and item is not None and item != "":
                out[name] = MASK
            elif held is str:
                out[name] = item if sub is None else sub(item)
            elif item is None or held is int or held is bool:
                out[name] = item
            else:
                out[name] = _redacted(item, sub)
        return out
    if kind is list:
        return [_redacted(item, sub) for item in value]
    if value is None or kind is int or kind is bool or (
            kind is float and value == value and value not in (_INF, -_INF)):
        return value
    raise _NotPlain


_secret_key = functools.lru_cache(maxsize=4096)(is_secret_key)  # the same few keys


_INF = float("inf")


def _entry_hash(fields: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON (:func:`ftkit.canonical.dumps`) of FIELDS' hashed
    fields: written into a template of the sorted keys when every value is a string,
    None, an int or a finite float (what an entry holds), else by canonical.dumps."""
    try:
        text = _PAYLOAD % tuple([_scalar(fields[name]) for name in _SORTED])
    except _NotPlain:
        text = canonical.dumps({name: fields[name] for name in _HASHED})
    return canonical.sha256_hex(text)


def _new_entry_hash(fields: dict[str, Any]) -> str:
    """:func:`_entry_hash` of the fields :meth:`Journal._append` made: the hash payload
    written straight into its template when every field has the type an entry's field
    usually has (ids ints, texts strings, a finite sim time), else by _entry_hash."""
    session_id, intent_id, sim_time = fields["session_id"], fields["intent_id"], fields[
        "sim_time"]
    if (type(session_id) is not int and session_id is not None) or (
            type(intent_id) is not int and intent_id is not None) or (
            sim_time is not None and sim_time - sim_time != 0) or type(fields["kind"]) is not str:
        return _entry_hash(fields)
    return canonical.sha256_hex(_PAYLOAD % (
        _quoted(fields["detail"]), int.__repr__(fields["id"]),
        "null" if intent_id is None else int.__repr__(intent_id), _quoted(fields["kind"]),
        _quoted(fields["log"]), _quoted(fields["message"]), _quoted(fields["prev_hash"]),
        "null" if session_id is None else int.__repr__(session_id),
        "null" if sim_time is None else float.__repr__(sim_time), _quoted(fields["step"]),
        _quoted(fields["ts"])))


_INSERT_ENTRY = (f"INSERT INTO entries ({', '.join(_HASHED)}, hash)"
                 f" VALUES ({', '.join('?' for _ in _HASHED)}, ?)")
_KEPT_INTENTS = 256  # the intents outcome() checks without reading them (see Journal)

_SORTED = tuple(sorted(_HASHED))
_PAYLOAD = "{" + ",".join(f'"{name}":%s' for name in _SORTED) + "}"


def _scalar(value: Any) -> str:
    """VALUE as canonical.dumps writes it, for a string, None, an int or a finite float;
    raises _NotPlain for anything else."""
    kind = type(value)
    if kind is str:
        return _quoted(value)
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    if kind is float and value - value == 0:
        return float.__repr__(value)
    raise _NotPlain


@dataclass(frozen=True)
class Entry:
    """One journal entry, as stored (``detail`` decoded from JSON)."""

    id: int
    session_id: int | None
    ts: str
    sim_time: float | None
    log: str
    kind: str
    step: str
    message: str
    detail: Any = field(hash=False)
    intent_id: int | None
    prev_hash: str
    hash: str

    @property
    def remote(self) -> bool:
        """True for an entry of the Upgrade side's remote activity log."""
        return self.log == "remote"

    @property
    def ok(self) -> bool | None:
        """For an outcome: whether the intended step succeeded; else None."""
        if self.kind != "outcome" or not isinstance(self.detail, dict):
            return None
        return bool(self.detail.get("ok"))

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> Entry:
        fields = dict(zip(_ENTRY_FIELDS, row, strict=True)) if row.keys() == list(
            _ENTRY_FIELDS) else {name: row[name] for name in _ENTRY_FIELDS}
        fields["detail"] = json.loads(fields["detail"])
        return cls._of(fields)

    @classmethod
    def _of(cls, fields: dict[str, Any]) -> Entry:
        """An entry of FIELDS (every field, by name): what ``Entry(**fields)`` makes, its
        fields set at once (a frozen dataclass's ``__init__`` sets them one by one)."""
        entry = object.__new__(cls)
        entry.__dict__.update(fields)
        return entry


_ENTRY_FIELDS = tuple(f.name for f in fields_of(Entry))  # the entries table's columns, in order


@dataclass(frozen=True)
class SessionRecord:
    """One upgrade session: who, why, and where it stands now (read-only: a journal hands
    out the same record, ``data`` included, while the row is unchanged)."""

    id: int
    target: str
    change_id: str
    operator: str
    reason: str
    started: str
    ended: str | None
    outcome: str | None
    upgrade_state: str
    operational_state: str
    broken_step: str | None
    broken_reason: str | None
    data: dict[str, Any] = field(hash=False)

    @property
    def active(self) -> bool:
        """True until :meth:`Journal.end_session` was called."""
        return self.ended is None

    @property
    def broken(self) -> bool:
        """True when the operational state is Broken."""
        return self.operational_state == OperationalState.BROKEN

    @classmethod
    def _from_row(cls, row: sqlite3.Row | dict[str, Any], *,
                  data: dict[str, Any] | None = None) -> SessionRecord:
        """ROW as a record; DATA: its ``data`` decoded already (else decoded here). Its
        fields set at once, as :meth:`Entry._of` does."""
        values = {name: row[name] for name in _RECORD_FIELDS}
        values["data"] = json.loads(row["data"]) if data is None else data
        record = object.__new__(cls)
        record.__dict__.update(values)
        return record


_RECORD_FIELDS = tuple(f.name for f in fields_of(SessionRecord) if f.name != "data")


@dataclass(frozen=True)
class Note:
    """An info/warning/error/action entry to write inside another write's transaction
    (:meth:`Journal.outcome`, :meth:`Journal.log_many`), with the fields of :meth:`Journal.log`."""

    kind: str
    message: str
    step: str = ""
    detail: Any = None
    remote: bool = False
    sim_time: float | None = None


Listener = Callable[[Entry], None]

LEASE_RENEW_S = 30.0  # a held lease's heartbeat is written this often (by a daemon thread)
LEASE_EXPIRY_S = 900.0  # a lease whose controller lock is free but whose row names another
                        # host is taken over only this long after its last heartbeat (a file
                        # system whose OS locks may not reach across hosts)


def _pid_start(pid: int) -> str:
    """When process PID started (Linux: /proc/PID/stat field 22), "" if unknown or gone;
    guards against a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


@functools.cache
def _me(pid: int) -> Owner:
    import socket

    return Owner(socket.gethostname(), pid, _pid_start(pid))


@dataclass(frozen=True)
class Owner:
    """A controlling process: host, pid and that pid's start time."""

    host: str
    pid: int
    pid_start: str

    @classmethod
    def me(cls) -> Owner:
        """This process (read once per process: a fork is another process)."""
        import os

        return _me(os.getpid())

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


class Journal:
    """The journal of one target, in one SQLite file (``Journal.open(target)``).

    Safe to share between threads of one process and between processes; listeners
    (:meth:`subscribe`) hear only the appends made through this object.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        target: str | None = None,
        clock: Callable[[], datetime] | None = None,
        lock_path: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        #: the system's controller lock (:mod:`ftkit.lock`); by default beside the journal
        self.lock_path = Path(lock_path) if lock_path is not None else self.path.with_suffix(
            ".lock")
        self._claimed = False  # this object holds the controller lock and its lease row
        self._lost = False  # the heartbeat found the row naming another owner
        self._beat: tuple[threading.Thread, threading.Event] | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock or _utc_now
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._verified: tuple[int, str] = (0, GENESIS)
        # (entry id, {session id: its row as the chain says, up to that entry}): what an
        # incremental verify reads on from, instead of every entry's detail again
        self._chained: tuple[int, dict[int, dict[str, Any]]] | None = None
        # rows found as the chain says: (the row, the chained content it was found equal to)
        self._rows_seen: dict[int, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        # (data_version, id, hash): the chain's last entry, verified or appended here, while
        # no other connection committed (PRAGMA data_version unchanged): check() reads nothing
        self._tip: tuple[int, int, str] | None = None
        self._appended: list[Entry] = []  # this write transaction's entries
        # (data_version, id, hash) of the last entry this object appended, while no other
        # connection committed: the next write transaction continues the chain from it
        # without reading it back. _chain: within one write transaction, (id, hash) of the
        # chain's end as this transaction left it (None: not read yet)
        self._own: tuple[int, int, str] | None = None
        self._chain: tuple[int, str] | None = None
        # within one write transaction: the sessions rows it read or wrote, as stored, so
        # that a write's chained entry carries the row without reading it back
        self._rows: dict[int, dict[str, Any]] = {}
        # (data_version, {session id: its record}, {session id: its row as stored}): the
        # sessions rows as this object's last write transaction left them, while no other
        # connection committed since (the next write opens the session without reading it)
        self._left: tuple[int, dict[int, SessionRecord], dict[int, dict[str, Any]]] | None = None
        # within one write transaction: its PRAGMA data_version, and the entries appended
        # but not inserted yet (one INSERT for them all, before the head is written)
        self._version: int | None = None
        self._pending: list[tuple[Any, ...]] = []
        # {intent id: (session id, step, its outcome's id or None)}: the intents this object
        # wrote and the outcomes it gave them (answers outcome()'s checks without a read
        # while no other connection committed since)
        self._intents: dict[int, tuple[int | None, str, int | None]] = {}
        # decoded rows: (the row's values, its record, its data's text)
        self._records: dict[int, tuple[tuple[Any, ...], SessionRecord, str]] = {}
        # (session id, data_version, commits here, its entries): read again only once another
        # connection committed; this object's own appends are added as they commit
        self._listing: tuple[int, int, int, list[Entry]] | None = None
        self._commits = 0  # commits of this object that changed something
        self._unsynced = False  # entries this object committed have not reached the disk yet
        # whether commits wait for the disk now (PRAGMA synchronous FULL or NORMAL; set by
        # _write when a transaction wants the other; None while unknown)
        self._synced_mode: bool | None = True
        try:
            self._conn = store.connect(self.path, check_same_thread=False)
            self._reserve = store.WalReserve(self.path)  # a synced commit rewrites, not grows
            stat = self.path.stat()
            self._identity = (stat.st_ino, stat.st_dev)
        except sqlite3.DatabaseError as err:
            raise FtkitError(
                f"cannot open journal {self.path}: {err}",
                "check that it is a readable ftkit journal (or set $FTKIT_HOME elsewhere)",
            ) from err
        try:
            self._conn.row_factory = sqlite3.Row
            # a cursor kept for this object's bookkeeping statements (a write's BEGIN and
            # COMMIT, its head, PRAGMAs), rows as tuples: none made per statement
            self._cursor = self._conn.cursor()
            self._cursor.row_factory = None
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA synchronous = FULL")  # a commit waits for the disk
            self._migrate(target)
        except FtkitError:
            self._conn.close()
            raise
        except sqlite3.DatabaseError as err:
            self._conn.close()
            raise FtkitError(
                f"cannot open journal {self.path}: {err}",
                "check that it is a readable ftkit journal (or set $FTKIT_HOME elsewhere)",
            ) from err

    @classmethod
    def open(cls, target: str, *, clock: Callable[[], datetime] | None = None) -> Journal:
        """The journal of TARGET's system, where the system keeps its state (created if new;
        see :func:`journal_path_of`). A target that cannot be reached gets one under
        ``$FTKIT_HOME/journals`` keyed by the target string."""
        try:
            driver = _connect(target)
        except FtkitError:
            return cls(home.journal_path(target), target=target, clock=clock)
        try:
            return cls.of(driver, clock=clock)
        finally:
            driver.close()

    @classmethod
    def of(cls, driver: Any, *, clock: Callable[[], datetime] | None = None) -> Journal:
        """The journal of DRIVER's system (created if new): beside the system's own state,
        keyed by its system id (:func:`_locate`), whichever ``$FTKIT_HOME`` asks."""
        path, lock_path = _locate(driver)
        _move_legacy(driver, path)
        return cls(path, target=driver.target, clock=clock, lock_path=lock_path)

    @classmethod
    def find(cls, driver: Any) -> Journal | None:
        """The journal of DRIVER's system if it has one, else None; creates nothing (but
        moves a journal an older ftkit kept under ``$FTKIT_HOME`` to where it belongs)."""
        path, lock_path = _locate(driver)
        _move_legacy(driver, path)
        return cls(path, target=driver.target, lock_path=lock_path) if path.is_file() else None

    # --- plumbing -------------------------------------------------------------------------

    def _migrate(self, target: str | None) -> None:
        """Create or upgrade the schema; one transaction."""
        with self._write() as conn:
            for statement in _split_sql(_SCHEMA):
                conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                conn.execute("INSERT INTO meta VALUES ('target', ?)", (target or self.path.stem,))
            elif int(row["value"]) > SCHEMA_VERSION:
                raise FtkitError(
                    f"journal {self.path} has schema {row['value']}, newer than this ftkit "
                    f"({SCHEMA_VERSION})",
                    "upgrade ftkit",
                )
            elif int(row["value"]) < 2:
                self._cover_sessions(conn)
            stored = conn.execute("SELECT value FROM meta WHERE key = 'target'").fetchone()
        self.target = stored["value"]

    def _cover_sessions(self, conn: sqlite3.Connection) -> None:
        """Schema 1 → 2, inside the caller's transaction: each sessions row (written by an
        older ftkit, outside the chain) entered in the chain once as it stands, by an
        'info' entry carrying it (journaled: the chain says when its rows were covered)."""
        for row in conn.execute("SELECT * FROM sessions ORDER BY id").fetchall():
            self._append(conn, row["id"], "info",
                         f"session {row['id']} entered in the hash chain as it stands "
                         f"(journal schema {SCHEMA_VERSION})",
                         detail={SESSION_ROW: _row_content(row), "migrated": True})
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))

    def _covered(self, conn: sqlite3.Connection, session_id: int) -> dict[str, Any]:
        """SESSION_ID's sessions row as it stands in CONN's transaction, for the chained
        entry of the write that left it so (:data:`SESSION_ROW`); read-only (the row as
        this transaction read and wrote it, else read)."""
        return _row_content(self._row(conn, session_id))

    def _row(self, conn: sqlite3.Connection, session_id: int) -> dict[str, Any]:
        """SESSION_ID's sessions row in CONN's write transaction: as this transaction
        read and changed it (:meth:`_set_row`), else read now."""
        row = self._rows.get(session_id)
        if row is None:
            found = conn.execute("SELECT * FROM sessions WHERE id = ?",
                                 (session_id,)).fetchone()
            if found is None:
                raise FtkitError(f"journal {self.path} has no session {session_id}",
                                 "use Journal.sessions() to list them")
            row = self._rows[session_id] = dict(found)
        return row

    def _set_row(self, conn: sqlite3.Connection, session_id: int, sql: str,
                 values: dict[str, Any]) -> dict[str, Any]:
        """UPDATE SESSION_ID's row with VALUES (SQL names them ``:column``; ``:id`` is the
        session) and keep the row as it now stands for the rest of the transaction."""
        row = self._row(conn, session_id)
        if conn.execute(sql, {**values, "id": session_id}).rowcount != 1:
            raise FtkitError(f"journal {self.path}: session {session_id} was not updated",
                             "use Journal.sessions() to list them")
        row.update(values)
        return row

    @contextmanager
    def _write(self, *, sync: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on any error), holding the thread lock.

        The commit waits for the disk unless ``sync`` is False (see the module's notes on
        durability). Keeps what the checks and caches of this object need: the chain's
        known end, this session's entries, whether an entry has not reached the disk."""
        with self._lock:
            cursor = self._cursor
            if sync is not self._synced_mode:  # set when it changes, not per transaction
                self._synced_mode = None  # unknown until the PRAGMA is through
                cursor.execute("PRAGMA synchronous = FULL" if sync
                               else "PRAGMA synchronous = NORMAL")
                self._synced_mode = sync
            cursor.execute("BEGIN IMMEDIATE")
            if sync:  # only a commit that waits for the disk needs the reserve ahead of it
                self._reserve.top_up()
            self._appended, self._rows, self._pending = [], {}, []
            rows = self._rows
            changes = self._conn.total_changes
            try:
                version = self._version = self._data_version()
                own = self._own
                # nobody else committed since this object's last append: the chain
                # ends there (else _append reads where it ends)
                self._chain = own[1:] if own is not None and own[0] == version else None
                yield self._conn
                if self._appended:  # the entries, then the chain's recorded head
                    self._flush(self._conn)
                    cursor.execute(
                        "INSERT INTO meta VALUES ('head', :hash)"
                        " ON CONFLICT(key) DO UPDATE SET value = :hash",
                        {"hash": self._appended[-1].hash})
            except BaseException:
                cursor.execute("ROLLBACK")
                self._own = None
                raise
            finally:
                self._chain, self._rows, self._version, self._pending = None, {}, None, []
            self._own = self._left = None  # known again once the commit is
            cursor.execute("COMMIT")
            if self._conn.total_changes != changes:  # else nothing was written (or synced)
                self._commits += 1
                if sync:  # it synced the whole WAL: every earlier commit is durable too
                    self._unsynced = False
                elif self._appended:  # entries not on disk yet (a lease alone needs not be)
                    self._unsynced = True
            tip, written, listing = self._tip, self._appended, self._listing
            if written:
                self._own = (version, written[-1].id, written[-1].hash)
            if rows:  # the rows this transaction read or wrote, as they now stand
                self._left = (version, {sid: self._record(row) for sid, row in rows.items()},
                              rows)
            for entry in written:  # what outcome() checks, known without reading it back
                if entry.kind == "intent":
                    self._intents[entry.id] = (entry.session_id, entry.step, None)
                elif entry.kind == "outcome" and entry.intent_id in self._intents:
                    session_id, step, _ = self._intents[entry.intent_id]
                    self._intents[entry.intent_id] = (session_id, step, entry.id)
            if len(self._intents) > _KEPT_INTENTS:  # a long-lived object: the latest only
                for old in sorted(self._intents)[:len(self._intents) - _KEPT_INTENTS // 2]:
                    del self._intents[old]
            if listing is not None and listing[1:3] == (version, self._commits - 1):
                # nobody else wrote since the listing was read: it goes on with these entries
                listing[3].extend(entry for entry in written if entry.session_id == listing[0])
                self._listing = (listing[0], version, self._commits, listing[3])
            if written and tip is not None and tip[0] == version and written[0].prev_hash == tip[2]:
                # nobody else wrote since the known tip: these entries continue it
                self._tip = (version, written[-1].id, written[-1].hash)
            elif written:
                self._tip = None

    def _data_version(self) -> int:
        """PRAGMA data_version (changed once another connection committed); the caller
        holds the thread lock. Read-only."""
        return int(self._cursor.execute("PRAGMA data_version").fetchone()[0])

    def sync(self) -> None:
        """Make every entry this object committed durable: when one did not wait for the
        disk, one synced transaction (it notes when, in ``meta``); else nothing."""
        if self._unsynced:
            with self._write() as conn:
                conn.execute("INSERT INTO meta VALUES ('synced', :now)"
                             " ON CONFLICT(key) DO UPDATE SET value = :now",
                             {"now": _iso(self._clock())})

    def _record(self, row: sqlite3.Row | dict[str, Any]) -> SessionRecord:
        """ROW (as read, or as a write transaction left it) as a SessionRecord, decoded
        once per content of the row (read-only)."""
        key = tuple(row.values()) if isinstance(row, dict) else tuple(row)
        known = self._records.get(row["id"])
        if known is not None and known[0] == key:
            return known[1]
        # the state moved, the data (kilobytes, written once) did not: not decoded again
        same = known is not None and known[2] == row["data"]
        record = SessionRecord._from_row(row, data=known[1].data if known and same else None)
        self._records[record.id] = (key, record, row["data"])
        return record

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction (a consistent snapshot)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    def close(self) -> None:
        """Give up the lease if this object holds it (:meth:`release`), then close the
        database connection."""
        try:
            if self._claimed:
                self.release()
        except sqlite3.Error as err:  # the row names a process about to be gone anyway
            log_.warning("controller lease of %s not released: %s", self.path, err)
        finally:
            self._let_go()
            lock.release(self.lock_path, user=self)
            with self._lock:
                self._conn.close()
                self._reserve.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, target={self.target!r})"

    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call CALLBACK(entry) after each committed append; returns an unsubscribe function.

        A listener that raises is logged and does not undo or stop anything.
        """
        with self._lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return unsubscribe

    def _notify(self, entries: Iterable[Entry]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for entry in entries:
            for callback in listeners:
                try:
                    callback(entry)
                except Exception:
                    log_.exception("journal listener %r failed on entry %s", callback, entry.id)

    def _append(
        self,
        conn: sqlite3.Connection,
        session_id: int | None,
        kind: str,
        message: str,
        *,
        step: str = "",
        detail: Any = None,
        remote: bool = False,
        sim_time: float | None = None,
        intent_id: int | None = None,
    ) -> Entry:
        """Append one chained entry inside the caller's write transaction (the chain's
        end read once per transaction, or not at all when this object wrote it). The row
        is inserted by :meth:`_flush`, with the transaction's other entries, before the
        transaction ends."""
        chain = self._chain
        if chain is None:
            last = conn.execute(  # one row: the last entry's id and hash, the id sequence
                "SELECT (SELECT id FROM entries ORDER BY id DESC LIMIT 1) AS id,"
                " (SELECT hash FROM entries ORDER BY id DESC LIMIT 1) AS hash,"
                " (SELECT seq FROM sqlite_sequence WHERE name = 'entries') AS seq").fetchone()
            chain = (max(last["id"] or 0, last["seq"] or 0), last["hash"] or GENESIS)
        next_id = chain[0] + 1
        text, plain = _clean(detail)
        fields: dict[str, Any] = {
            "id": next_id,
            "session_id": session_id,
            "ts": _iso(self._clock()),
            # + 0.0: -0.0 is stored by SQLite as 0 and would no longer match its hash
            "sim_time": None if sim_time is None else float(sim_time) + 0.0,
            "log": "remote" if remote else "local",
            "kind": kind,
            "step": _text(step or ""),
            "message": _text(message or ""),
            "detail": text,
            "intent_id": intent_id,
            "prev_hash": chain[1],
        }
        fields["hash"] = entry_hash = _new_entry_hash(fields)
        self._pending.append(tuple(fields.values()))  # inserted by _flush, in order
        fields["detail"] = plain
        entry = Entry._of(fields)
        self._appended.append(entry)
        self._chain = (next_id, entry_hash)
        return entry

    def _flush(self, conn: sqlite3.Connection) -> None:
        """INSERT the entries appended in CONN's write transaction and not inserted yet,
        in order, by one statement."""
        pending = self._pending
        if len(pending) == 1:
            conn.execute(_INSERT_ENTRY, pending[0])
        elif pending:
            conn.executemany(_INSERT_ENTRY, pending)
        pending.clear()

    def _open_session(self, conn: sqlite3.Connection, session_id: int) -> SessionRecord:
        """SESSION_ID's record in CONN's write transaction, refused when it ended: the row
        this object's last write left, when no other connection committed since (the
        transaction's PRAGMA data_version), else read."""
        left = self._left
        if left is not None and left[0] == self._version and session_id in left[2]:
            self._rows[session_id] = dict(left[2][session_id])
            record = left[1][session_id]
        else:
            row = conn.execute("SELECT * FROM sessions WHERE id = ?",
                               (session_id,)).fetchone()
            if row is None:
                raise FtkitError(
                    f"journal {self.path} has no session {session_id}",
                    "use Journal.current_session() or Journal.sessions() to find it",
                )
            self._rows[session_id] = dict(row)
            record = self._record(row)
        if not record.active:
            raise TransitionError(
                f"session {session_id} of {record.target} ended {record.ended} "
                f"({record.outcome}); it records nothing more",
                "begin a new session",
            )
        return record

    # --- the controller lease ----------------------------------------------------------------

    def claim(self, holder: str = "", *, now: float | None = None) -> bool:
        """Become this system's one controller, or stay it: nothing to do (no SQL) once this
        object holds it; else the controller lock and one transaction (not synced).

        Takes the system's controller lock (:mod:`ftkit.lock`, an OS lock beside the system's
        state, non-blocking) and writes the lease row (host, pid, since, holder: for people
        and status); a daemon thread renews the row's heartbeat every ``LEASE_RENEW_S``
        while it is held. Returns True when newly taken (or taken over), False when this
        process held it already. Raises :class:`SessionBusyError`, naming who holds it and
        since when, while another process holds the lock; or, the lock being free, while
        the row names a process on another host whose heartbeat is younger than
        ``LEASE_EXPIRY_S`` (a file system whose locks may not reach across hosts). A row
        naming another owner whose lock is free is a takeover, journaled.
        """
        if self._claimed and not self._lost:
            return False
        me = Owner.me()
        beat = time.time() if now is None else now
        text = _text(holder)
        busy = lock.take(self.lock_path, user=self, holder=text)
        if busy is not None:
            raise self._refusal(busy)
        entry = None
        try:
            # not synced: the lease names live processes, and a power cut ends them all (a
            # takeover's warning is made durable by the synced intent that follows it)
            with self._write(sync=False) as conn:
                row = conn.execute("SELECT * FROM lease WHERE id = 1").fetchone()
                mine = row is not None and Owner(row["host"], row["pid"],
                                                 row["pid_start"]) == me
                if mine and not self._lost:
                    conn.execute("UPDATE lease SET heartbeat = ?, holder = ? WHERE id = 1",
                                 (beat, text))
                else:
                    if row is not None and (self._lost or self._other_host_alive(row, me,
                                                                                  beat)):
                        raise self._refusal(None, row=row, conn=conn)
                    conn.execute(
                        "INSERT OR REPLACE INTO lease (id, host, pid, pid_start, since,"
                        " heartbeat, holder) VALUES (1, ?, ?, ?, ?, ?, ?)",
                        (me.host, me.pid, me.pid_start, _iso(self._clock()), beat, text))
                if row is not None and not mine:
                    current = conn.execute(
                        "SELECT id FROM sessions WHERE ended IS NULL").fetchone()
                    entry = self._append(
                        conn, current["id"] if current else None, "warning",
                        f"controller lease taken over from {row['holder'] or 'a run'} "
                        f"(pid {row['pid']} on {row['host']}, gone) by {holder or 'a run'} "
                        f"({me})",
                        detail={"lease": "takeover", "from": {"host": row["host"],
                                                              "pid": row["pid"]},
                                "to": {"host": me.host, "pid": me.pid}})
        except BaseException:
            self._let_go()
            lock.release(self.lock_path, user=self)
            raise
        self._claimed = True
        self._start_heartbeat()
        if entry is not None:
            self._notify([entry])
        return not mine

    @staticmethod
    def _other_host_alive(row: sqlite3.Row, me: Owner, beat: float) -> bool:
        """Whether ROW names a process on another host that renewed its heartbeat within
        ``LEASE_EXPIRY_S``: alive for all we know, where the OS lock may not reach."""
        return row["host"] != me.host and beat - row["heartbeat"] <= LEASE_EXPIRY_S

    def _refusal(self, note: lock.Holder | None, *, row: sqlite3.Row | None = None,
                 conn: sqlite3.Connection | None = None) -> SessionBusyError:
        """The refusal naming who drives the system: NOTE (what the lock file says of its
        holder) or the lease ROW; read-only."""
        with self._lock:
            db = conn or self._conn
            if row is None:
                row = db.execute("SELECT * FROM lease WHERE id = 1").fetchone()
                if note is not None and row is not None and (row["host"], row["pid"]) != (
                        note.host, note.pid):
                    row = None  # a row the lock's holder has not written yet: a dead one's
            current = db.execute("SELECT * FROM sessions WHERE ended IS NULL").fetchone()
        who = (f"{row['holder'] or 'a run'} (pid {row['pid']} on {row['host']}, since "
               f"{row['since']})" if row is not None else str(note or lock.Holder()))
        what = (f"session {current['id']} ({current['upgrade_state']}, "
                f"{current['operational_state']})" if current else "the system")
        return SessionBusyError(
            f"{what} of {self.target} is driven by {who}",
            "wait for it to end, or stop that process; its lease is taken over only once it "
            "is gone")

    def busy(self) -> SessionBusyError | None:
        """Why this process could not become the controller now (another one holds the
        controller lock, or a fresh lease from another host), else None. Read-only: it
        tests the lock without keeping it; :meth:`claim` decides, this only tells."""
        if lock.held(self.lock_path) and not self._lost:
            return None
        note = lock.probe(self.lock_path)
        if note is not None:
            return self._refusal(note)
        with self._lock:
            row = self._conn.execute("SELECT * FROM lease WHERE id = 1").fetchone()
        me = Owner.me()
        if row is None or Owner(row["host"], row["pid"], row["pid_start"]) == me:
            return None
        return self._refusal(None, row=row) if self._other_host_alive(
            row, me, time.time()) else None

    def release(self) -> None:
        """Give the lease up: its row if it names this process (one transaction, not synced,
        as in :meth:`claim`: a row left behind by a power cut names a process that is gone)
        and this object's hold of the controller lock (free once no process holds it)."""
        self._let_go()
        try:
            with self._write(sync=False) as conn:
                self._release(conn)
        finally:
            lock.release(self.lock_path, user=self)

    @staticmethod
    def _release(conn: sqlite3.Connection) -> None:
        me = Owner.me()
        conn.execute("DELETE FROM lease WHERE id = 1 AND host = ? AND pid = ?",
                     (me.host, me.pid))

    def _let_go(self) -> None:
        """Stop renewing the heartbeat; this object no longer counts itself the controller."""
        beat, self._beat = self._beat, None
        self._claimed = self._lost = False
        if beat is not None:
            beat[1].set()
            if beat[0] is not threading.current_thread():
                beat[0].join()

    def _start_heartbeat(self) -> None:
        if self._beat is not None:
            return
        stop = threading.Event()
        thread = threading.Thread(target=self._heartbeat, args=(stop,), daemon=True,
                                  name=f"ftkit-lease-{self.path.name}")
        self._beat = (thread, stop)
        thread.start()

    def _heartbeat(self, stop: threading.Event) -> None:
        """Every ``LEASE_RENEW_S`` while held: the lease row's heartbeat (one transaction,
        not synced), so that a long step never looks dead from another host. A row that no
        longer names this process makes the next :meth:`claim` refuse."""
        me = Owner.me()
        while not stop.wait(LEASE_RENEW_S):
            try:
                with self._write(sync=False) as conn:
                    renewed = conn.execute(
                        "UPDATE lease SET heartbeat = ? WHERE id = 1 AND host = ? AND pid = ?",
                        (time.time(), me.host, me.pid)).rowcount
            except sqlite3.Error as err:  # closed meanwhile, or busy for 30 s: try again
                if stop.is_set():
                    return
                log_.warning("controller lease heartbeat of %s not written: %s", self.path,
                             err)
                continue
            if not renewed:
                self._lost = True
                return

    def lease(self) -> dict[str, Any] | None:
        """Who holds the controller lease, if anyone (read-only)."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM lease WHERE id = 1").fetchone()
        return None if row is None else dict(row)

    # --- sessions ------------------------------------------------------------------------

    def begin_session(
        self, *, change_id: str, operator: str, reason: str, data: dict[str, Any] | None = None
    ) -> SessionRecord:
        """Start a session in Idle / Ready; one transaction.

        Raises :class:`SessionBusyError` if an unfinished session exists: of two processes
        racing here exactly one wins.
        """
        record, _intent = self.start(
            None, begin={"change_id": change_id, "operator": operator, "reason": reason,
                         "data": data or {}})
        return record

    def _begin(self, conn: sqlite3.Connection, begin: dict[str, Any]) -> tuple[
            SessionRecord, Entry]:
        busy = conn.execute("SELECT * FROM sessions WHERE ended IS NULL").fetchone()
        if busy is not None:
            raise _busy(SessionRecord._from_row(busy))
        change = _text(begin.get("change_id") or "")
        ran = change and conn.execute(
            "SELECT id, outcome FROM sessions WHERE change_id = ? ORDER BY id DESC LIMIT 1",
            (change,)).fetchone()
        if ran:
            raise TransitionError(
                f"change {change} ran already on {self.target} (session {ran['id']}: "
                f"{ran['outcome']}); it is never run twice",
                "rerun it to report it, or give a new change id for a new upgrade")
        now = _iso(self._clock())
        cursor = conn.execute(
            "INSERT INTO sessions (target, change_id, operator, reason, started, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                self.target,
                _text(begin.get("change_id") or ""),
                _text(begin.get("operator") or ""),
                _text(begin.get("reason") or ""),
                now,
                _clean_json(begin.get("data") or {}),
            ),
        )
        session_id = int(cursor.lastrowid or 0)
        record = self._record(self._row(conn, session_id))
        entry = self._append(
            conn,
            session_id,
            "info",
            f"session {session_id} (change {record.change_id or '-'}) started by "
            f"{record.operator or 'unknown'}"
            + (f" (account {record.data['account']})" if record.data.get("account") else "")
            + (f": {record.reason}" if record.reason else ""),
            detail={
                "change_id": record.change_id,
                "operator": record.operator,
                "account": record.data.get("account", ""),
                "reason": record.reason,
                "target": record.target,
                SESSION_ROW: self._covered(conn, session_id),
            },
        )
        return record, entry

    def start(
        self,
        session_id: int | None,
        *,
        begin: dict[str, Any] | None = None,
        step: str = "",
        message: str = "",
        upgrade_state: str | None = None,
        operational_state: str = OperationalState.BUSY.value,
        sim_time: float | None = None,
        decision: dict[str, Any] | None = None,
    ) -> tuple[SessionRecord, int | None]:
        """Begin a session (``begin``: change_id, operator, reason, data) and/or record the
        intent of STEP with the state it enters, Busy; ONE transaction, so a process killed
        at any instant leaves either nothing or the session with its intent and Busy.

        ``decision`` (the keywords of :meth:`decision`) is the answer that leads to STEP:
        journaled first, in the same transaction. Returns the session and the intent's id
        (None without a STEP). Raises :class:`SessionBusyError` when ``begin`` finds an
        unfinished session.
        """
        written: list[Entry] = []
        try:
            with self._write() as conn:
                if begin is not None:
                    record, entry = self._begin(conn, begin)
                    written.append(entry)
                elif session_id is not None:
                    record = self._open_session(conn, session_id)
                else:
                    raise FtkitError("Journal.start() needs a session id or begin=",
                                     "pass the session's id, or begin={...} to start one")
                if decision is not None:
                    written.append(self._decision(conn, record.id, **decision))
                intent_id = None
                if step:
                    entry = self._append(conn, record.id, "intent", message or step, step=step,
                                         sim_time=sim_time)
                    intent_id = entry.id
                    written.append(entry)
                    written.append(self._move(
                        conn, record.id, upgrade_state=upgrade_state or record.upgrade_state,
                        operational_state=operational_state, broken_step=None,
                        broken_reason=None, message=f"{step} started", sim_time=sim_time))
                    record = self._record(self._row(conn, record.id))
        except sqlite3.IntegrityError as err:  # the unique index, if a raw writer raced us
            current = self.current_session()
            if current is None or begin is None:
                raise
            raise _busy(current) from err
        self._notify(written)
        return record, intent_id

    def adopt_session(self, *, begin: dict[str, Any], seen: Note, upgrade_state: str,
                      operational_state: str, broken_step: str | None = None,
                      broken_reason: str | None = None, message: str = "",
                      decisions: Iterable[dict[str, Any]] = ()) -> SessionRecord:
        """Begin a session in the state a system shows when its journal was lost (``ftkit
        recover``): the session's beginning, SEEN (what the system showed), the DECISIONS
        that state implies (the keywords of :meth:`decision`) and the state; ONE
        transaction. Raises :class:`SessionBusyError` when an unfinished session exists."""
        with self._write() as conn:
            record, entry = self._begin(conn, begin)
            written = [entry, self._write_note(conn, record.id, seen)]
            written += [self._decision(conn, record.id, **d) for d in decisions]
            written.append(self._move(
                conn, record.id, upgrade_state=upgrade_state,
                operational_state=operational_state, broken_step=broken_step,
                broken_reason=broken_reason, message=message, sim_time=seen.sim_time))
            record = self._record(self._row(conn, record.id))
        self._notify(written)
        return record

    def current_session(self) -> SessionRecord | None:
        """The unfinished session, if any; read-only."""
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM sessions WHERE ended IS NULL ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return None if row is None else self._record(row)

    def written(self, session_id: int) -> SessionRecord:
        """Session SESSION_ID as this object's last write transaction left it (read and
        written inside it): what a writer reads back of its own write — the engine after a
        step, a listener hearing this object's entries. :meth:`session` when that write did
        not touch it. Read-only."""
        with self._lock:
            left = self._left
            if left is not None and session_id in left[1]:
                return left[1][session_id]
        return self.session(session_id)

    def session(self, session_id: int) -> SessionRecord:
        """Session SESSION_ID (FtkitError if there is none); read-only. Not read again
        when this object's last write transaction left it so and no other connection
        committed since."""
        with self._lock:
            left = self._left
            if left is not None and session_id in left[1] and (
                    self._data_version() == left[0]):
                return left[1][session_id]
            row = self._conn.execute(
                "SELECT * FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
        if row is None:
            raise FtkitError(
                f"journal {self.path} has no session {session_id}",
                "use Journal.sessions() to list them",
            )
        return self._record(row)

    def sessions(self) -> list[SessionRecord]:
        """Every session, oldest first; read-only."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM sessions ORDER BY id").fetchall()
        return [self._record(row) for row in rows]

    def set_state(
        self,
        session_id: int,
        *,
        upgrade_state: str,
        operational_state: str,
        broken_step: str | None = None,
        broken_reason: str | None = None,
        message: str = "",
        sim_time: float | None = None,
    ) -> Entry:
        """Move the session's state and append a 'state' entry; one transaction."""
        with self._write() as conn:
            self._open_session(conn, session_id)
            entry = self._move(
                conn,
                session_id,
                upgrade_state=upgrade_state,
                operational_state=operational_state,
                broken_step=broken_step,
                broken_reason=broken_reason,
                message=message,
                sim_time=sim_time,
            )
        self._notify([entry])
        return entry

    def _move(
        self,
        conn: sqlite3.Connection,
        session_id: int,
        *,
        upgrade_state: str,
        operational_state: str,
        broken_step: str | None,
        broken_reason: str | None,
        message: str,
        sim_time: float | None,
    ) -> Entry:
        state = {
            "upgrade_state": _text(upgrade_state),
            "operational_state": _text(operational_state),
            "broken_step": _opt_text(broken_step),
            "broken_reason": _opt_text(broken_reason),
        }
        row = _row_content(self._set_row(
            conn, session_id,
            "UPDATE sessions SET upgrade_state = :upgrade_state,"
            " operational_state = :operational_state, broken_step = :broken_step,"
            " broken_reason = :broken_reason WHERE id = :id", state))
        default = f"{state['upgrade_state']} / {state['operational_state']}"
        if state["broken_step"]:
            default += f" at {state['broken_step']}"
        if state["broken_reason"]:
            default += f": {state['broken_reason']}"
        return self._append(
            conn,
            session_id,
            "state",
            message or default,
            step=broken_step or "",
            detail={**state, SESSION_ROW: row},
            sim_time=sim_time,
        )

    def end_session(
        self, session_id: int, *, outcome: str, sim_time: float | None = None
    ) -> SessionRecord:
        """Close the session with OUTCOME and append an 'info' entry; one transaction."""
        with self._write() as conn:
            self._open_session(conn, session_id)
            entry = self._end(conn, session_id, outcome, sim_time)
            record = self._record(self._row(conn, session_id))
        self._notify([entry])
        return record

    def _end(self, conn: sqlite3.Connection, session_id: int, outcome: str,
             sim_time: float | None) -> Entry:
        now = _iso(self._clock())
        self._set_row(conn, session_id,
                      "UPDATE sessions SET ended = :ended, outcome = :outcome WHERE id = :id",
                      {"ended": now, "outcome": _text(outcome)})
        return self._append(
            conn,
            session_id,
            "info",
            f"session {session_id} ended: {_text(outcome)}",
            detail={"outcome": _text(outcome), "ended": now,
                    SESSION_ROW: self._covered(conn, session_id)},
            sim_time=sim_time,
        )

    # --- entries -------------------------------------------------------------------------

    def intent(
        self,
        session_id: int,
        step: str,
        message: str,
        detail: Any = None,
        *,
        sim_time: float | None = None,
    ) -> int:
        """Record that STEP is about to be done; one transaction. Returns the intent's id."""
        with self._write() as conn:
            self._open_session(conn, session_id)
            entry = self._append(
                conn, session_id, "intent", message, step=step, detail=detail, sim_time=sim_time
            )
        self._notify([entry])
        return entry.id

    def outcome(
        self,
        session_id: int,
        intent_id: int,
        *,
        ok: bool,
        message: str,
        detail: Any = None,
        sim_time: float | None = None,
        upgrade_state: str | None = None,
        operational_state: str | None = None,
        broken_step: str | None = None,
        broken_reason: str | None = None,
        end: str | None = None,
        notes: Iterable[Note] = (),
        release: bool = False,
        sync: bool = True,
    ) -> int:
        """Record how intent INTENT_ID ended and, if given, the new state; one transaction.

        NOTES (what the step observed since its last driver request: an outage, the
        Upgrade side verified) are written first, in the same transaction. With
        ``upgrade_state`` and/or ``operational_state`` the session row moves and a 'state'
        entry follows the outcome in the same transaction (a missing one of the two keeps
        its current value). With ``end`` the session also ends with that outcome in the
        same transaction (Finish), and with ``release`` this process gives the controller
        lease up in it too. An intent takes one outcome only. Returns the outcome's id.

        ``sync=False`` commits without waiting for the disk: only when the caller's next
        write is a synced intent, before anything is asked of the system (see the module's
        notes on durability), or :meth:`sync` follows.
        """
        notes = list(notes)
        _check_notes(notes)
        with self._write(sync=sync) as conn:
            record = self._open_session(conn, session_id)
            # an intent this object wrote, no other connection having committed since: its
            # session, step and outcome (if this object gave it one) are known; else the
            # intent is read, and the unique index refuses a second outcome (below)
            known = self._intents.get(intent_id) if self._chain is not None else None
            if known is not None:
                of, step, done = known
            else:
                row = conn.execute(
                    "SELECT step, kind, session_id FROM entries WHERE id = ?", (intent_id,)
                ).fetchone()
                of, step, done = (row["session_id"], row["step"], None) if row and row[
                    "kind"] == "intent" else (None, "", None)
            if of != session_id:
                raise FtkitError(
                    f"entry {intent_id} is not an intent of session {session_id}",
                    "pass the id that Journal.intent() returned",
                )
            if done is not None:
                raise _done_twice(intent_id, step, done)
            body = {"ok": bool(ok)}
            if isinstance(detail, dict):
                body.update(detail)
            elif detail is not None:
                body["detail"] = detail
            written = [self._write_note(conn, session_id, note) for note in notes]
            written.append(
                self._append(
                    conn,
                    session_id,
                    "outcome",
                    message,
                    step=step,
                    detail=body,
                    sim_time=sim_time,
                    intent_id=intent_id,
                )
            )
            outcome_id = written[-1].id
            if upgrade_state is not None or operational_state is not None:
                written.append(
                    self._move(
                        conn,
                        session_id,
                        upgrade_state=upgrade_state or record.upgrade_state,
                        operational_state=operational_state or record.operational_state,
                        broken_step=broken_step,
                        broken_reason=broken_reason,
                        message="",
                        sim_time=sim_time,
                    )
                )
            if end is not None:
                written.append(self._end(conn, session_id, end, sim_time))
            try:  # the unique index refuses an outcome this object did not know of
                self._flush(conn)
            except sqlite3.IntegrityError:
                done = self._outcome_of(conn, intent_id)
                if done is None:
                    raise
                raise _done_twice(intent_id, step, done) from None
            if release:
                self._release(conn)
        if release:  # the row went with the outcome; now the lock
            self._let_go()
            lock.release(self.lock_path, user=self)
        self._notify(written)
        return outcome_id

    @staticmethod
    def _outcome_of(conn: sqlite3.Connection, intent_id: int) -> int | None:
        """The id of intent INTENT_ID's outcome, None while it has none; read-only."""
        done = conn.execute(
            "SELECT id FROM entries WHERE kind = 'outcome' AND intent_id = ?", (intent_id,)
        ).fetchone()
        return None if done is None else int(done["id"])

    def pending_intent(self, session_id: int) -> Entry | None:
        """The session's last intent without an outcome (what a killed process left); read-only."""
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM entries AS e WHERE e.session_id = ? AND e.kind = 'intent'"
                " AND NOT EXISTS (SELECT 1 FROM entries AS o"
                "                 WHERE o.kind = 'outcome' AND o.intent_id = e.id)"
                " ORDER BY e.id DESC LIMIT 1",
                (session_id,),
            ).fetchone()
        return None if row is None else Entry._from_row(row)

    def log(
        self,
        session_id: int | None,
        kind: str,
        message: str,
        *,
        step: str = "",
        detail: Any = None,
        remote: bool = False,
        sim_time: float | None = None,
        sync: bool = True,
    ) -> int:
        """Append an info/warning/error/action entry; one transaction. Returns its id.

        ``remote=True`` files it in the Upgrade side's remote activity log. SESSION_ID may
        be None for a note outside any session (a readiness check in Idle, say).
        ``sync=False`` commits without waiting for the disk: only for a progress note that
        nothing reads back to decide anything (see the module's notes on durability).
        """
        return self.log_many(session_id, [Note(kind, message, step=step, detail=detail,
                                               remote=remote, sim_time=sim_time)],
                             sync=sync)[0]

    def log_many(self, session_id: int | None, notes: Iterable[Note], *,
                 sync: bool = True) -> list[int]:
        """Append NOTES (info/warning/error/action entries) in order; one transaction.
        Returns their ids. ``sync`` as in :meth:`log`."""
        notes = list(notes)
        _check_notes(notes)
        with self._write(sync=sync) as conn:
            if session_id is not None:
                self._open_session(conn, session_id)
            written = [self._write_note(conn, session_id, note) for note in notes]
        self._notify(written)
        return [entry.id for entry in written]

    def _write_note(self, conn: sqlite3.Connection, session_id: int | None,
                    note: Note) -> Entry:
        return self._append(conn, session_id, _text(note.kind), note.message, step=note.step,
                            detail=note.detail, remote=note.remote, sim_time=note.sim_time)

    def decision(
        self,
        session_id: int,
        *,
        name: str,
        answer: str,
        who: str,
        why: str,
        source: str,
        where: str,
        step: str = "",
        sim_time: float | None = None,
        account: str = "",
    ) -> int:
        """Record a decision (who, what, why, when, source, where); one transaction."""
        with self._write() as conn:
            self._open_session(conn, session_id)
            entry = self._decision(conn, session_id, name=name, answer=answer, who=who,
                                   why=why, source=source, where=where, step=step,
                                   sim_time=sim_time, account=account)
        self._notify([entry])
        return entry.id

    def _decision(self, conn: sqlite3.Connection, session_id: int, *, name: str, answer: str,
                  who: str, why: str, source: str, where: str, step: str = "",
                  sim_time: float | None = None, account: str = "") -> Entry:
        when = _iso(self._clock())
        detail = {
            "name": name,
            "answer": answer,
            "who": who,
            "why": why,
            "when": when,
            "source": source,
            "where": where,
            "account": account,
        }
        message = f"decision {_text(name)}: {_text(answer)} by {_text(who)} ({_text(source)})"
        if why:
            message += f": {_text(why)}"
        return self._append(conn, session_id, "decision", message, step=step, detail=detail,
                            sim_time=sim_time)

    def entries(
        self,
        session_id: int | None = None,
        *,
        log: str | None = None,
        kinds: Iterable[str] | None = None,
    ) -> list[Entry]:
        """Entries in order, filtered by session, log ('local'/'remote') and KINDS; read-only.

        A session's entries are read from the file once, and again only when another
        connection has committed since (this object's own appends are kept as they commit).
        """
        wanted = None if kinds is None else {
            _text(k) for k in ([kinds] if isinstance(kinds, str) else kinds)}
        if session_id is None:
            sql = "SELECT * FROM entries WHERE 1 = 1"
            args: list[Any] = []
            if log is not None:
                sql += " AND log = ?"
                args.append(log)
            if wanted is not None:
                sql += f" AND kind IN ({', '.join('?' for _ in wanted) or 'NULL'})"
                args.extend(wanted)
            with self._lock:
                rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
            return [Entry._from_row(row) for row in rows]
        with self._lock:
            version = self._data_version()
            listing = self._listing
            if listing is None or listing[:3] != (session_id, version, self._commits):
                rows = self._conn.execute("SELECT * FROM entries WHERE session_id = ? ORDER BY id",
                                          (session_id,)).fetchall()
                known = {e.id: e for e in listing[3]} if listing and listing[0] == session_id \
                    else {}
                found = []
                for row in rows:  # an entry already decoded is not decoded again
                    entry = known.get(row["id"])
                    found.append(entry if entry is not None and entry.hash == row["hash"]
                                 else Entry._from_row(row))
                listing = (session_id, version, self._commits, found)
                self._listing = listing
            return [e for e in listing[3] if (log is None or e.log == log)
                    and (wanted is None or e.kind in wanted)]

    def to_dataframe(self, session_id: int | None = None) -> pd.DataFrame:
        """The entries (of one session) as a DataFrame, ``ts`` as UTC datetimes; read-only."""
        import pandas as pd

        columns = [f for f in Entry.__dataclass_fields__]
        frame = pd.DataFrame([asdict(e) for e in self.entries(session_id)], columns=columns)
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
        return frame

    def head_entry(self, session_id: int | None = None) -> dict[str, Any]:
        """``{"journal_entry": id, "journal_hash": hash}`` of the last entry, or of SESSION_ID's
        last entry (what its record cites: not another process's entry, which may not be
        on disk yet). Read-only."""
        with self._lock:
            row = self._conn.execute(
                "SELECT id, hash FROM entries WHERE ? IS NULL OR session_id = ? "
                "ORDER BY id DESC LIMIT 1", (session_id, session_id)).fetchone()
        return {"journal_entry": row["id"] if row else 0,
                "journal_hash": row["hash"] if row else GENESIS}

    def anchors(self) -> list[tuple[int, str]]:
        """The (seq, hash) of every ledger entry this system's runs were archived as, as
        journaled then (read-only): ``ftkit reports verify`` cross-checks the ledger."""
        return [(int(e.detail["ledger_seq"]), str(e.detail["ledger_hash"]))
                for e in self.entries(kinds=["info"])
                if isinstance(e.detail, dict) and "ledger_seq" in e.detail]

    def head(self) -> str:
        """The hash of the last entry (GENESIS for an empty journal); read-only."""
        with self._lock:
            row = self._conn.execute("SELECT hash FROM entries ORDER BY id DESC LIMIT 1").fetchone()
        return row["hash"] if row else GENESIS

    def check(self) -> None:
        """Before a step: the journal file is still the one this object opened, and the
        entries added since the last check continue the verified chain (read-only; cost
        proportional to what was added). Raises :class:`ArchiveError` otherwise."""
        try:
            now = self.path.stat()
            same = (now.st_ino, now.st_dev) == self._identity
        except OSError:
            same = False
        if not same:
            raise ArchiveError(
                f"journal {self.path} was removed or replaced while in use",
                "stop; restore it from a backup, or run `ftkit recover TARGET` to adopt "
                "the system's own state in a new journal")
        tip = self._tip
        if tip is not None:
            with self._lock:
                version = self._data_version()
            if version == tip[0]:  # no other connection committed: only our own appends
                self._verified = (tip[1], tip[2])
                return
        self.verify(since=self._verified)

    def verify(self, *, since: tuple[int, str] | None = None) -> int:
        """Check the hash chain; returns the number of entries checked; read-only.

        With ``since=(id, hash)`` (what an earlier verify reached) only the entries after
        it are checked, after checking that entry still has that hash. Raises
        :class:`ArchiveError` naming the first entry that was edited, removed or reordered.
        """
        remedy = "restore the journal from a backup; do not resume a session on it"
        start_id, start_hash = since or (0, GENESIS)
        with self._read() as conn:
            if start_id:
                row = conn.execute("SELECT hash FROM entries WHERE id = ?",
                                   (start_id,)).fetchone()
                if row is None or row["hash"] != start_hash:
                    raise ArchiveError(f"journal {self.path}: entry {start_id} was edited or "
                                       "removed since it was verified", remedy)
            rows = conn.execute("SELECT * FROM entries WHERE id > ? ORDER BY id",
                                (start_id,)).fetchall()
            head = conn.execute("SELECT value FROM meta WHERE key = 'head'").fetchone()
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            table = conn.execute("SELECT * FROM sessions ORDER BY id").fetchall()
            known = self._chained if start_id else None
            chained = conn.execute(_COVERING if known else _LAST_COVERING,
                                   (known[0] if known else 0,)).fetchall()
        prev_hash, prev_id = start_hash, (start_id or None)
        for row in rows:
            fields = dict(row)
            if fields["prev_hash"] != prev_hash:
                after = f"entry {prev_id}" if prev_id is not None else "the start"
                raise ArchiveError(
                    f"journal {self.path}: entry {fields['id']} does not follow {after} "
                    "(an entry was removed or reordered)",
                    remedy,
                )
            if _entry_hash(fields) != fields["hash"]:
                raise ArchiveError(
                    f"journal {self.path}: entry {fields['id']} was edited (hash mismatch)",
                    remedy,
                )
            prev_hash, prev_id = fields["hash"], fields["id"]
        if (head["value"] if head else GENESIS) != prev_hash:
            raise ArchiveError(
                f"journal {self.path}: the last entries after entry {prev_id} were removed "
                "(the chain ends before its recorded head)",
                remedy,
            )
        self._check_sessions(table, chained, remedy, known=known)
        self._verified = (prev_id or 0, prev_hash)
        self._tip = (version, prev_id or 0, prev_hash)
        return len(rows)

    def _check_sessions(self, table: list[sqlite3.Row], chained: list[sqlite3.Row],
                        remedy: str, *,
                        known: tuple[int, dict[int, dict[str, Any]]] | None) -> None:
        """The sessions TABLE is what the chain says (each session's last entry carrying
        its row: CHAINED, read on from what was KNOWN): raises :class:`ArchiveError`
        naming the first session and field that differ, a row the chain never saw, or a
        row removed. Writes nothing but what the next incremental verify reads on from."""
        said: dict[int, dict[str, Any]] = dict(known[1]) if known else {}
        upto = known[0] if known else 0
        for entry in chained:
            upto = max(upto, entry["id"])
            try:
                content = json.loads(entry["detail"]).get(SESSION_ROW)
            except (ValueError, AttributeError):
                content = None
            if isinstance(content, dict) and content.get("id") == entry["session_id"]:
                said[entry["session_id"]] = content
        self._chained = (upto, dict(said))
        where = f"journal {self.path}"
        seen, self._rows_seen = self._rows_seen, {}
        for row in table:
            told = said.pop(row["id"], None)
            if told is None:
                raise ArchiveError(f"{where}: session {row['id']} is not in the hash chain "
                                   "(its row was added outside ftkit)", remedy)
            key = (tuple(row), told)
            before = seen.get(row["id"])
            if before is not None and before[0] == key[0] and before[1] is told:
                self._rows_seen[row["id"]] = key  # the same row, the same chained content
                continue
            content = json.loads(canonical.dumps(_row_content(row)))
            if content == told or _clean(content)[1] == told:  # as written, or as redacted
                self._rows_seen[row["id"]] = key
                continue
            for name in _ROW_FIELDS:
                if content.get(name) != told.get(name):
                    raise ArchiveError(
                        f"{where}: session {row['id']}'s {name} is {content.get(name)!r} in "
                        f"the sessions table, the hash chain says {told.get(name)!r} (the "
                        "table was edited)", remedy)
            if content.get("data_sha256") != told.get("data_sha256"):
                raise ArchiveError(
                    f"{where}: session {row['id']}'s data (configuration, packages, "
                    "account) is not what the hash chain says (the table was edited)", remedy)
        if said:
            raise ArchiveError(f"{where}: session {min(said)} was removed from the sessions "
                               "table (the hash chain has it)", remedy)


# each session's last entry that carries its row (SESSION_ROW): what the row must be
_COVERS = f"""session_id IS NOT NULL AND kind IN ('info', 'state')
      AND instr(detail, '"{SESSION_ROW}":') > 0"""
_LAST_COVERING = f"""
SELECT e.id, e.session_id, e.detail FROM entries AS e JOIN (
    SELECT session_id, MAX(id) AS id FROM entries WHERE id > ? AND {_COVERS}
    GROUP BY session_id) AS last ON e.id = last.id
"""
# the entries carrying a row after a given one, in order (an incremental verify)
_COVERING = f"SELECT id, session_id, detail FROM entries WHERE id > ? AND {_COVERS} ORDER BY id"


def _row_content(row: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
    """A sessions ROW's every field (``data`` as the SHA-256 of its text), as a chained
    entry carries it."""
    content = {name: row[name] for name in _ROW_FIELDS}
    content["data_sha256"] = _data_sha256(row["data"])
    return content


@functools.lru_cache(maxsize=64)  # a session's data is written once, hashed per row write
def _data_sha256(text: str) -> str:
    return canonical.sha256_hex(text)


def _check_notes(notes: list[Note]) -> None:
    """Refuse, before anything is written, a note of a kind only other writes make."""
    for note in notes:
        if _text(note.kind) not in LOG_KINDS:
            raise FtkitError(
                f"Journal.log() does not write {_text(note.kind)!r} entries",
                f"use one of {', '.join(LOG_KINDS)}; intent(), outcome(), decision() and "
                "set_state() write the others",
            )


def _key(target: str, system_id: str) -> str:
    return f"system:{system_id}" if system_id else target


def _connect(target: str) -> Any:
    from ftkit.drivers import connect

    return connect(target)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _locate(driver: Any) -> tuple[Path, Path]:
    """(journal file, controller lock file) of DRIVER's system; read-only, creates nothing.

    Where the system keeps its own state (:func:`ftkit.drivers.state_dir_of`: for
    ``sim://`` the folder ``NAME.ftkit`` beside the twin ``NAME.db``, for ``host://`` the
    site's state folder): ``journal-<system id>.db`` (a new system of an old name starts a
    new journal) and ``controller.lock``. A driver that names no such folder keeps today's
    place: ``$FTKIT_HOME/journals``, keyed by the system id, the lock beside the journal."""
    from ftkit.drivers import state_dir_of

    system_id = str(getattr(driver.status(), "system_id", "") or "")
    folder = state_dir_of(driver)
    if folder is None:
        path = home.journal_path(_key(driver.target, system_id), create=False)
        return path, path.with_suffix(".lock")
    name = _UNSAFE.sub("_", system_id).strip("._-")[:80]
    return folder / (f"journal-{name}.db" if name else "journal.db"), folder / lock.LOCK_NAME


def journal_path_of(target: str) -> Path:
    """Where TARGET's journal lives (read-only, creates nothing): beside the system's own
    state, keyed by its system id (:func:`_locate`), when the system can be opened; else
    under ``$FTKIT_HOME/journals``, keyed by the target string."""
    try:
        driver = _connect(target)
    except FtkitError:
        return home.journal_path(target, create=False)
    try:
        return _locate(driver)[0]
    finally:
        driver.close()


def legacy_journal_path_of(target: str) -> Path | None:
    """Where an older ftkit kept TARGET's journal (``$FTKIT_HOME/journals``, keyed by its
    system id), if the system can be opened; read-only, creates nothing."""
    try:
        driver = _connect(target)
    except FtkitError:
        return None
    try:
        return home.journal_path(_key(driver.target, driver.status().system_id), create=False)
    finally:
        driver.close()


def lock_path_of(target: str) -> Path | None:
    """Where TARGET's controller lock is (read-only, creates nothing): beside the system's
    own state; for a ``sim://`` system not created yet, where it will be; None for a
    target that names no system this process can reach (nothing to lock)."""
    try:
        driver = _connect(target)
    except FtkitError:
        from ftkit.drivers import split_target

        try:
            scheme, rest = split_target(target)
            if scheme != "sim":
                return None
            from ftkit.sim.driver import state_dir_for, system_path

            return state_dir_for(system_path(rest)) / lock.LOCK_NAME
        except FtkitError:
            return None
    try:
        return _locate(driver)[1]
    finally:
        driver.close()


def _move_legacy(driver: Any, path: Path) -> None:
    """Move the journal an older ftkit kept for DRIVER's system under
    ``$FTKIT_HOME/journals`` to PATH, where it belongs now, when PATH has none: copied
    whole (SQLite's backup), published by a link that fails if another process did it
    first, and the old file renamed ``<name>.moved-<UTC time>``. Nothing when there is none."""
    if path.exists():
        return
    legacy = home.journal_path(_key(driver.target, driver.status().system_id), create=False)
    if legacy == path or not legacy.is_file():
        return
    import os
    import uuid
    from datetime import UTC

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.moving")
    try:
        source = sqlite3.connect(legacy)
        try:
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy)
            finally:
                copy.close()
        finally:
            source.close()
        try:
            os.link(partial, path)
        except FileExistsError:
            return  # another process moved it first
    finally:
        partial.unlink(missing_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for suffix in ("", "-wal", "-shm"):
        old = Path(f"{legacy}{suffix}")
        if old.is_file():
            old.rename(old.with_name(f"{legacy.name}.moved-{stamp}{suffix}"))
    log_.warning("journal %s moved to %s (beside the system's own state)", legacy, path)


def _done_twice(intent_id: int, step: str, done: int) -> TransitionError:
    return TransitionError(f"intent {intent_id} ({step}) already has outcome {done}",
                           "record a new intent before acting again")


def _busy(record: SessionRecord) -> SessionBusyError:
    state = f"{record.upgrade_state}, {record.operational_state}"
    if record.broken_step:
        state += f" at {record.broken_step}"
    return SessionBusyError(
        f"session {record.id} of {record.target} is in progress ({state}; "
        f"started {record.started} by {record.operator or 'unknown'})",
        "resume it, or run the abort runbook to abort and finish it",
    )


def _split_sql(script: str) -> list[str]:
    """The statements of SCRIPT (complete per sqlite3.complete_statement)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return [s for s in statements if s]
