"""SQLite connections shared by the twin and the journal: WAL, a 30 s busy timeout, and a
journal-mode switch that survives several processes opening a new file at once.

SQLite does not call the busy handler while it changes a file's journal mode, so
``PRAGMA journal_mode=WAL`` on a file that another process is switching (or writing)
fails at once with "database is locked". :func:`connect` retries that one statement until
the busy timeout runs out; every later statement waits on the busy timeout as usual.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

__all__ = ["BUSY_TIMEOUT_S", "connect"]

BUSY_TIMEOUT_S = 30.0


def connect(path: str | Path, *, check_same_thread: bool = True,
            timeout_s: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """A connection in autocommit mode (``isolation_level=None``: callers BEGIN IMMEDIATE
    themselves) with the busy timeout set and the file switched to WAL."""
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None,
                           check_same_thread=check_same_thread)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        _switch_to_wal(conn, timeout_s)
    except BaseException:
        conn.close()
        raise
    return conn


def _switch_to_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) and "busy" not in str(err):
                raise
            if time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
