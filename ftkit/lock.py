"""The controller lock: an OS lock beside the system's own state, held by the one process
that drives the system (see docs/DESIGN.md, "One controller, nothing twice").

The lock is ``flock(LOCK_EX | LOCK_NB)`` on a file in the folder the system's driver names
(:func:`ftkit.drivers.state_dir`): whoever drives the system, from whatever
``$FTKIT_HOME``, pid namespace or host name, locks the same file, and the kernel releases
the lock when its holder dies. Nothing here touches a journal; :meth:`ftkit.journal.Journal.claim`
takes this lock and keeps the journal's lease row (who, for people) beside it.

Within one process the lock is held once, on one open file, by any number of users
(journals, an ``ftkit run``); it is let go when the last one releases it. It is never
unlocked with ``LOCK_UN``, only closed: a lock handed to a child process (:func:`holding`)
is one open file shared by both, held until both have closed it.

The holder writes who it is (host, pid, holder, since) into the lock file, so that a
process refused can say who drives the system even before that one wrote a journal.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ftkit import canonical

__all__ = ["HANDOFF_ENV", "LOCK_NAME", "Holder", "handoff_env", "held", "holder_of", "holding",
           "probe",
           "release", "take"]

log_ = logging.getLogger(__name__)

LOCK_NAME = "controller.lock"
#: Set by :func:`holding` for the processes it starts: where a child asks for the lock.
HANDOFF_ENV = "FTKIT_CONTROL_HANDOFF"
_INFO_SIZE = 1024  # the holder's note is written whole over the same bytes each time
_TRIES = 5  # a read-only probe holds the lock for microseconds: try again a few times
_PAUSE_S = 0.02


@dataclass(frozen=True)
class Holder:
    """Who the lock file says holds the lock (read from it; "" where it says nothing)."""

    host: str = ""
    pid: int = 0
    holder: str = ""
    since: str = ""

    def __str__(self) -> str:
        where = f"pid {self.pid} on {self.host}" if self.pid else "a process"
        since = f", since {self.since}" if self.since else ""
        return f"{self.holder or 'a run'} ({where}{since})"


@dataclass
class _Held:
    fd: int
    identity: tuple[int, int]  # (st_dev, st_ino) of the lock file
    users: set[int]


_HELD: dict[Path, _Held] = {}
_GUARD = threading.RLock()


def _key(path: Path) -> Path:
    return Path(os.path.abspath(path))


def held(path: Path) -> bool:
    """Whether this process holds the lock at PATH (read-only, no system call)."""
    with _GUARD:
        return _key(path) in _HELD


def take(path: Path, *, user: object, holder: str) -> Holder | None:
    """Hold the lock at PATH for USER: None once this process holds it (newly, or already
    for another user), else who holds it (this process then holds nothing). Creates the
    lock file and its folder if missing and, when newly taken, writes HOLDER's note into
    it. A process started by :func:`holding` is handed its parent's lock instead."""
    key = _key(path)
    with _GUARD:
        mine = _HELD.get(key)
        if mine is not None:
            mine.users.add(id(user))
            return None
        key.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        taken, handed = False, None
        try:
            taken = _lock(fd)
            handed = None if taken else _ask_parent(key)
        finally:
            if not taken:
                os.close(fd)
        if handed is not None:
            fd = handed
        elif not taken:
            return holder_of(key) or Holder()
        stat = os.fstat(fd)
        _HELD[key] = _Held(fd, (stat.st_dev, stat.st_ino), {id(user)})
        note = holder_of(key) if handed is not None else None  # the parent's: keep since
        _write_note(fd, holder, since=note.since if note else "")
        return None


def _lock(fd: int) -> bool:
    for attempt in range(_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
        if attempt + 1 < _TRIES:
            time.sleep(_PAUSE_S)
    return False


def release(path: Path, *, user: object) -> None:
    """USER no longer needs the lock at PATH; the last user's release closes it (the lock
    is free once no process holds the file open, a child handed it included)."""
    with _GUARD:
        key = _key(path)
        mine = _HELD.get(key)
        if mine is None:
            return
        mine.users.discard(id(user))
        if not mine.users:
            del _HELD[key]
            os.close(mine.fd)


def probe(path: Path) -> Holder | None:
    """Who holds the lock at PATH if another process does, else None (also when this
    process holds it, or no lock file exists). Read-only: it creates nothing and keeps
    nothing (a shared lock for an instant, on a file opened for reading)."""
    key = _key(path)
    if held(key):
        return None
    try:
        fd = os.open(key, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        return _read_note(fd) or Holder()
    finally:
        os.close(fd)
    return None


def holder_of(path: Path) -> Holder | None:
    """The note the lock file at PATH holds, None if none (read-only; says nothing about
    whether the lock is held now: see :func:`probe`)."""
    try:
        fd = os.open(_key(path), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return _read_note(fd)
    finally:
        os.close(fd)


def _write_note(fd: int, holder: str, *, since: str = "") -> None:
    note = {"host": socket.gethostname(), "pid": os.getpid(), "holder": holder[:600],
            "since": since or canonical.iso(canonical.utc_now())}
    text = json.dumps(note).encode()[:_INFO_SIZE]
    os.pwrite(fd, text.ljust(_INFO_SIZE), 0)


def _read_note(fd: int) -> Holder | None:
    try:
        data = json.loads(os.pread(fd, _INFO_SIZE, 0).decode() or "null")
    except (ValueError, UnicodeDecodeError):  # being written: say nothing rather than wrong
        return None
    if not isinstance(data, dict):
        return None
    return Holder(host=str(data.get("host", "")), pid=int(data.get("pid") or 0),
                  holder=str(data.get("holder", "")), since=str(data.get("since", "")))


# --- handing the lock to a child process ------------------------------------------------


@contextmanager
def holding(path: Path, *, holder: str) -> Iterator[Holder | None]:
    """Hold the lock at PATH for the body and hand it to the processes started meanwhile
    that ask for it (a papermill kernel, through ``$FTKIT_CONTROL_HANDOFF``): they get this
    process's open lock file, so the lock stays held until this process and they are all
    done, whichever dies first. Yields None while held, else who holds it (and holds
    nothing). Only processes of this user can ask (a Unix socket in a private folder)."""
    user = object()  # this hold's own: a nested one releases only itself
    busy = take(path, user=user, holder=holder)
    if busy is not None:
        yield busy
        return
    before = os.environ.get(HANDOFF_ENV)  # a holder's child holding: its children ask it
    asked_here = getattr(_THREAD, "address", None)
    folder = tempfile.mkdtemp(prefix="ftkit-control-")
    address = os.path.join(folder, "s")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stop = threading.Event()
    thread = None
    try:
        server.bind(address)
        server.listen(8)
        server.settimeout(0.2)
        thread = threading.Thread(target=_serve, args=(server, _key(path), stop),
                                  name="ftkit-control-handoff", daemon=True)
        thread.start()
        os.environ[HANDOFF_ENV] = address
        _THREAD.address = address
        yield None
    finally:
        _THREAD.address = asked_here
        if before is None:
            os.environ.pop(HANDOFF_ENV, None)
        else:
            os.environ[HANDOFF_ENV] = before
        stop.set()
        if thread is not None:
            thread.join(timeout=2)
        server.close()
        Path(address).unlink(missing_ok=True)
        os.rmdir(folder)
        release(path, user=user)


def handoff_env() -> dict[str, str]:
    """The environment a child started by this thread needs to ask for the lock this
    thread holds (read-only): ``{HANDOFF_ENV: address}``, else empty. The process's own
    ``os.environ`` says the same while one thread holds; with several holding at once (a
    Dask worker running systems side by side) only this says which is whose."""
    address = getattr(_THREAD, "address", None)
    return {HANDOFF_ENV: address} if address else {}


#: the hand-off address of the lock each thread holds (see handoff_env)
_THREAD = threading.local()


def _serve(server: socket.socket, path: Path, stop: threading.Event) -> None:
    """Answer each child that asks for the lock at PATH with its open file (SCM_RIGHTS)."""
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        try:
            with conn:
                conn.settimeout(2)
                uid = struct.unpack("3i", conn.getsockopt(
                    socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[1]
                asked = conn.recv(4096).decode(errors="replace")
                with _GUARD:
                    mine = _HELD.get(path)
                    if uid != os.getuid() or mine is None or _key(Path(asked)) != path:
                        conn.sendall(b"no")
                        continue
                    socket.send_fds(conn, [b"ok"], [mine.fd])
        except OSError as err:  # a child that went away: it asks again or is refused
            log_.debug("controller lock hand-off failed: %s", err)


def _ask_parent(path: Path) -> int | None:
    """The lock at PATH as the process that started this one holds it (its open file),
    if it does and says so through ``$FTKIT_CONTROL_HANDOFF``; else None."""
    address = os.environ.get(HANDOFF_ENV)
    if not address:
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(address)
            sock.sendall(str(path).encode())
            sock.shutdown(socket.SHUT_WR)
            msg, fds, _flags, _addr = socket.recv_fds(sock, 16, 1)
    except OSError:
        return None  # the parent is gone (then the lock is free) or holds another lock
    if msg != b"ok" or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        return None
    fd = fds[0]
    os.set_inheritable(fd, False)
    theirs, ours = os.fstat(fd), os.stat(path)
    if (theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino):
        os.close(fd)
        return None
    return fd
