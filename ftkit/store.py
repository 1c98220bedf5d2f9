"""SQLite connections shared by the twin and the journal: WAL, a 30 s busy timeout, and a
journal-mode switch that survives several processes opening a new file at once.

SQLite does not call the busy handler while it changes a file's journal mode, so
``PRAGMA journal_mode=WAL`` on a file that another process is switching (or writing)
fails at once with "database is locked". :func:`connect` retries that one statement until
the busy timeout runs out; every later statement waits on the busy timeout as usual.

A writer that waits for the disk keeps zeros ahead of the WAL's end (:class:`WalReserve`):
see docs/DESIGN.md, "The journal's guarantees".
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

__all__ = ["BUSY_TIMEOUT_S", "WAL_RESERVE", "WalReserve", "connect"]

BUSY_TIMEOUT_S = 30.0
#: zeros kept ahead of a WAL's end: a few runs of one upgrade's frames (about 0.5 MB each)
WAL_RESERVE = 1 << 20

log_ = logging.getLogger(__name__)


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


class WalReserve:
    """Zeros kept ahead of the end of the WAL of DB_PATH, so that a commit that waits for
    the disk rewrites blocks the file already has instead of growing it.

    A synced commit that grows the file waits for the file system's own journal as well
    (the new size and blocks): on ext4 about twice as long as one that rewrites. SQLite
    reuses its WAL from the start once it is checkpointed, but a run starts with a fresh
    one (the last connection to close deletes it), so every commit of a run would grow it.
    Bytes past the WAL's last valid frame are what SQLite itself leaves there after it
    starts the WAL over: a frame is only read if its salt matches the WAL header and its
    checksum the chain, which zeros never do; recovery stops at the first such frame.

    :meth:`top_up` must be called inside a write transaction (``BEGIN IMMEDIATE``: the
    WAL's writer lock held, so no other connection writes the WAL meanwhile). It writes
    only when the file does not end in zeros (a whole frame of zeros is never SQLite's),
    so writers in several processes never stack their reserves; it never creates the WAL.
    Failing to write (a full disk) changes nothing SQLite reads: the commit grows the file.
    """

    _TAIL = 4096 + 24  # a frame: its header and a page (ftkit's journals use 4 KiB pages)

    def __init__(self, db_path: str | Path, *, size: int = WAL_RESERVE) -> None:
        self.path = Path(f"{db_path}-wal")
        self.size = size
        self._fd: int | None = None

    def top_up(self) -> None:
        """``size`` zeros past the WAL's end, unless it ends in zeros already (read-only
        then: one ``fstat`` and one read of its last frame's length)."""
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
            end = os.fstat(self._fd).st_size
            if end == 0:  # empty: SQLite writes the WAL's header first
                return
            tail = os.pread(self._fd, self._TAIL, max(end - self._TAIL, 0))
            if tail.count(0) == len(tail):  # a reserve left (this object's or another's)
                return
            os.pwrite(self._fd, bytes(self.size), end)
        except FileNotFoundError:  # no WAL yet (SQLite creates it): the next write reserves
            pass
        except OSError as err:
            log_.debug("WAL reserve of %s not written: %s", self.path, err)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
