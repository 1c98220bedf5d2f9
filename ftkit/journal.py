"""The journal: an append-only, hash-chained activity log of upgrade sessions in SQLite.

One journal file per target (``Journal.open("sim://lab")``). It holds

- ``sessions``: one row per Active Upgrade session, with its current upgrade state,
  operational state (Ready / Busy / Broken, with the failing step and reason) and outcome;
  at most one session is unfinished at a time, across processes (SPEC invariant 5);
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
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftkit import canonical, home, store
from ftkit.errors import ArchiveError, FtkitError, SessionBusyError, TransitionError
from ftkit.redact import redact, scrub

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "GENESIS",
    "KINDS",
    "LOG_KINDS",
    "Entry",
    "Journal",
    "SessionRecord",
]

log_ = logging.getLogger(__name__)

GENESIS = "0" * 64
KINDS = ("intent", "outcome", "info", "warning", "error", "decision", "action", "state")
LOG_KINDS = ("info", "warning", "error", "action")  # what Journal.log() may write
SCHEMA_VERSION = 1

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
    if isinstance(value, Enum):
        value = value.value
    return scrub(str(value))


def _opt_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _json(value: Any) -> str:
    """Canonical JSON (:func:`ftkit.canonical.dumps`)."""
    return canonical.dumps(value)


def _clean_json(value: Any) -> str:
    """VALUE made JSON (so that str() of odd objects is scrubbed too), redacted, canonical."""
    plain = json.loads(canonical.dumps(value))
    return canonical.dumps(redact(plain))


def _entry_hash(fields: dict[str, Any]) -> str:
    payload = {name: fields[name] for name in _HASHED}
    return canonical.sha256_hex(canonical.dumps(payload))


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
        return cls(
            id=row["id"],
            session_id=row["session_id"],
            ts=row["ts"],
            sim_time=row["sim_time"],
            log=row["log"],
            kind=row["kind"],
            step=row["step"],
            message=row["message"],
            detail=json.loads(row["detail"]),
            intent_id=row["intent_id"],
            prev_hash=row["prev_hash"],
            hash=row["hash"],
        )


@dataclass(frozen=True)
class SessionRecord:
    """One upgrade session: who, why, and where it stands now."""

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
        return self.operational_state == "Broken"

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> SessionRecord:
        return cls(
            id=row["id"],
            target=row["target"],
            change_id=row["change_id"],
            operator=row["operator"],
            reason=row["reason"],
            started=row["started"],
            ended=row["ended"],
            outcome=row["outcome"],
            upgrade_state=row["upgrade_state"],
            operational_state=row["operational_state"],
            broken_step=row["broken_step"],
            broken_reason=row["broken_reason"],
            data=json.loads(row["data"]),
        )


Listener = Callable[[Entry], None]


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
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock or _utc_now
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        try:
            self._conn = store.connect(self.path, check_same_thread=False)
        except sqlite3.DatabaseError as err:
            raise FtkitError(
                f"cannot open journal {self.path}: {err}",
                "check that it is a readable ftkit journal (or set $FTKIT_HOME elsewhere)",
            ) from err
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA foreign_keys = ON")
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
        """The journal of TARGET under ``$FTKIT_HOME/journals`` (created if new)."""
        return cls(home.journal_path(target), target=target, clock=clock)

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
            stored = conn.execute("SELECT value FROM meta WHERE key = 'target'").fetchone()
        self.target = stored["value"]

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on any error), holding the thread lock."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

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
        """Close the database connection."""
        with self._lock:
            self._conn.close()

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
        """Append one chained entry inside the caller's write transaction."""
        last = conn.execute("SELECT id, hash FROM entries ORDER BY id DESC LIMIT 1").fetchone()
        seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entries'").fetchone()
        next_id = max(last["id"] if last else 0, seq["seq"] if seq else 0) + 1
        fields: dict[str, Any] = {
            "id": next_id,
            "session_id": session_id,
            "ts": _iso(self._clock()),
            "sim_time": None if sim_time is None else float(sim_time),
            "log": "remote" if remote else "local",
            "kind": kind,
            "step": _text(step or ""),
            "message": _text(message or ""),
            "detail": _clean_json(detail),
            "intent_id": intent_id,
            "prev_hash": last["hash"] if last else GENESIS,
        }
        fields["hash"] = _entry_hash(fields)
        conn.execute(
            "INSERT INTO entries (id, session_id, ts, sim_time, log, kind, step, message,"
            " detail, intent_id, prev_hash, hash)"
            " VALUES (:id, :session_id, :ts, :sim_time, :log, :kind, :step, :message,"
            " :detail, :intent_id, :prev_hash, :hash)",
            fields,
        )
        conn.execute(
            "INSERT INTO meta VALUES ('head', :hash) ON CONFLICT(key) DO UPDATE SET value = :hash",
            {"hash": fields["hash"]},
        )
        return Entry(**{**fields, "detail": json.loads(fields["detail"])})

    def _open_session(self, conn: sqlite3.Connection, session_id: int) -> SessionRecord:
        row = conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise FtkitError(
                f"journal {self.path} has no session {session_id}",
                "use Journal.current_session() or Journal.sessions() to find it",
            )
        record = SessionRecord._from_row(row)
        if not record.active:
            raise TransitionError(
                f"session {session_id} of {record.target} ended {record.ended} "
                f"({record.outcome}); it records nothing more",
                "begin a new session",
            )
        return record

    # --- sessions ------------------------------------------------------------------------

    def begin_session(
        self, *, change_id: str, operator: str, reason: str, data: dict[str, Any] | None = None
    ) -> SessionRecord:
        """Start a session in Idle / Ready; one transaction.

        Raises :class:`SessionBusyError` if an unfinished session exists: of two processes
        racing here exactly one wins.
        """
        try:
            with self._write() as conn:
                busy = conn.execute("SELECT * FROM sessions WHERE ended IS NULL").fetchone()
                if busy is not None:
                    raise _busy(SessionRecord._from_row(busy))
                now = _iso(self._clock())
                cursor = conn.execute(
                    "INSERT INTO sessions (target, change_id, operator, reason, started, data)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        self.target,
                        _text(change_id or ""),
                        _text(operator or ""),
                        _text(reason or ""),
                        now,
                        _clean_json(data or {}),
                    ),
                )
                session_id = int(cursor.lastrowid or 0)
                record = SessionRecord._from_row(
                    conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
                )
                entry = self._append(
                    conn,
                    session_id,
                    "info",
                    f"session {session_id} started by {record.operator or 'unknown'}"
                    + (f": {record.reason}" if record.reason else ""),
                    detail={
                        "change_id": record.change_id,
                        "operator": record.operator,
                        "reason": record.reason,
                        "target": record.target,
                    },
                )
        except sqlite3.IntegrityError as err:  # the unique index, if a raw writer raced us
            current = self.current_session()
            if current is None:
                raise
            raise _busy(current) from err
        self._notify([entry])
        return record

    def current_session(self) -> SessionRecord | None:
        """The unfinished session, if any; read-only."""
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM sessions WHERE ended IS NULL ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return None if row is None else SessionRecord._from_row(row)

    def session(self, session_id: int) -> SessionRecord:
        """Session SESSION_ID (FtkitError if there is none); read-only."""
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
        if row is None:
            raise FtkitError(
                f"journal {self.path} has no session {session_id}",
                "use Journal.sessions() to list them",
            )
        return SessionRecord._from_row(row)

    def sessions(self) -> list[SessionRecord]:
        """Every session, oldest first; read-only."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM sessions ORDER BY id").fetchall()
        return [SessionRecord._from_row(row) for row in rows]

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
        conn.execute(
            "UPDATE sessions SET upgrade_state = :upgrade_state,"
            " operational_state = :operational_state, broken_step = :broken_step,"
            " broken_reason = :broken_reason WHERE id = :id",
            {**state, "id": session_id},
        )
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
            detail=state,
            sim_time=sim_time,
        )

    def end_session(
        self, session_id: int, *, outcome: str, sim_time: float | None = None
    ) -> SessionRecord:
        """Close the session with OUTCOME and append an 'info' entry; one transaction."""
        with self._write() as conn:
            self._open_session(conn, session_id)
            now = _iso(self._clock())
            conn.execute(
                "UPDATE sessions SET ended = ?, outcome = ? WHERE id = ?",
                (now, _text(outcome), session_id),
            )
            entry = self._append(
                conn,
                session_id,
                "info",
                f"session {session_id} ended: {_text(outcome)}",
                detail={"outcome": _text(outcome), "ended": now},
                sim_time=sim_time,
            )
            record = SessionRecord._from_row(
                conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
            )
        self._notify([entry])
        return record

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
    ) -> int:
        """Record how intent INTENT_ID ended and, if given, the new state; one transaction.

        With ``upgrade_state`` and/or ``operational_state`` the session row moves and a
        'state' entry follows the outcome in the same transaction (a missing one of the
        two keeps its current value). An intent takes one outcome only. Returns its id.
        """
        with self._write() as conn:
            record = self._open_session(conn, session_id)
            row = conn.execute(
                "SELECT step, kind, session_id FROM entries WHERE id = ?", (intent_id,)
            ).fetchone()
            if row is None or row["kind"] != "intent" or row["session_id"] != session_id:
                raise FtkitError(
                    f"entry {intent_id} is not an intent of session {session_id}",
                    "pass the id that Journal.intent() returned",
                )
            done = conn.execute(
                "SELECT id FROM entries WHERE kind = 'outcome' AND intent_id = ?", (intent_id,)
            ).fetchone()
            if done is not None:
                raise TransitionError(
                    f"intent {intent_id} ({row['step']}) already has outcome {done['id']}",
                    "record a new intent before acting again",
                )
            body = {"ok": bool(ok)}
            if isinstance(detail, dict):
                body.update(detail)
            elif detail is not None:
                body["detail"] = detail
            written = [
                self._append(
                    conn,
                    session_id,
                    "outcome",
                    message,
                    step=row["step"],
                    detail=body,
                    sim_time=sim_time,
                    intent_id=intent_id,
                )
            ]
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
        self._notify(written)
        return written[0].id

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
    ) -> int:
        """Append an info/warning/error/action entry; one transaction. Returns its id.

        ``remote=True`` files it in the Upgrade side's remote activity log. SESSION_ID may
        be None for a note outside any session (a readiness check in Idle, say).
        """
        kind = _text(kind)
        if kind not in LOG_KINDS:
            raise FtkitError(
                f"Journal.log() does not write {kind!r} entries",
                f"use one of {', '.join(LOG_KINDS)}; intent(), outcome(), decision() and "
                "set_state() write the others",
            )
        with self._write() as conn:
            if session_id is not None:
                self._open_session(conn, session_id)
            entry = self._append(
                conn,
                session_id,
                kind,
                message,
                step=step,
                detail=detail,
                remote=remote,
                sim_time=sim_time,
            )
        self._notify([entry])
        return entry.id

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
    ) -> int:
        """Record a decision (who, what, why, when, source, where); one transaction."""
        when = _iso(self._clock())
        detail = {
            "name": name,
            "answer": answer,
            "who": who,
            "why": why,
            "when": when,
            "source": source,
            "where": where,
        }
        message = f"decision {_text(name)}: {_text(answer)} by {_text(who)} ({_text(source)})"
        if why:
            message += f": {_text(why)}"
        with self._write() as conn:
            self._open_session(conn, session_id)
            entry = self._append(
                conn,
                session_id,
                "decision",
                message,
                step=step,
                detail=detail,
                sim_time=sim_time,
            )
        self._notify([entry])
        return entry.id

    def entries(
        self,
        session_id: int | None = None,
        *,
        log: str | None = None,
        kinds: Iterable[str] | None = None,
    ) -> list[Entry]:
        """Entries in order, filtered by session, log ('local'/'remote') and KINDS; read-only."""
        sql = "SELECT * FROM entries WHERE 1 = 1"
        args: list[Any] = []
        if session_id is not None:
            sql += " AND session_id = ?"
            args.append(session_id)
        if log is not None:
            sql += " AND log = ?"
            args.append(log)
        if kinds is not None:
            wanted = [_text(k) for k in ([kinds] if isinstance(kinds, str) else kinds)]
            sql += f" AND kind IN ({', '.join('?' for _ in wanted) or 'NULL'})"
            args.extend(wanted)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return [Entry._from_row(row) for row in rows]

    def to_dataframe(self, session_id: int | None = None) -> pd.DataFrame:
        """The entries (of one session) as a DataFrame, ``ts`` as UTC datetimes; read-only."""
        import pandas as pd

        columns = [f for f in Entry.__dataclass_fields__]
        frame = pd.DataFrame([asdict(e) for e in self.entries(session_id)], columns=columns)
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
        return frame

    def head(self) -> str:
        """The hash of the last entry (GENESIS for an empty journal); read-only."""
        with self._lock:
            row = self._conn.execute("SELECT hash FROM entries ORDER BY id DESC LIMIT 1").fetchone()
        return row["hash"] if row else GENESIS

    def verify(self) -> int:
        """Check the hash chain; returns the number of entries checked; read-only.

        Raises :class:`ArchiveError` naming the first entry that was edited, removed or
        reordered.
        """
        remedy = "restore the journal from a backup; do not resume a session on it"
        with self._read() as conn:
            rows = conn.execute("SELECT * FROM entries ORDER BY id").fetchall()
            head = conn.execute("SELECT value FROM meta WHERE key = 'head'").fetchone()
        prev_hash, prev_id = GENESIS, None
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
        return len(rows)


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
