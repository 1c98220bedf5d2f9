"""Processes that outlive the controller: started detached, known by a pid file.

The front, the service and the Upgrade side's agent must keep running when the process
that started them (a notebook kernel) is killed, so each is started in a session of its own
and re-parented to init (a double fork through ``sh``); its pid and its start time (so a
reused pid is never mistaken for it) go into a pid file written atomically.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["alive", "read_pid", "spawn", "stop"]


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def read_pid(pidfile: Path) -> int | None:
    """The pid in PIDFILE if that very process still runs (read-only)."""
    try:
        pid_text, started = pidfile.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return pid if _start_time(pid) == started else None


def alive(pidfile: Path) -> bool:
    return read_pid(pidfile) is not None


def spawn(command: Sequence[str], *, pidfile: Path, log: Path,
          env: Mapping[str, str] | None = None, cwd: Path | None = None) -> int:
    """Start COMMAND detached (own session, parent init), output appended to LOG."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    script = 'exec "$@" </dev/null >>"$FTKIT_LOG" 2>&1 & echo $!'
    done = subprocess.run(
        ["sh", "-c", script, "sh", *command], capture_output=True, text=True, check=True,
        env={**(env if env is not None else os.environ), "FTKIT_LOG": str(log)},
        cwd=cwd, start_new_session=True)
    pid = int(done.stdout.strip())
    started = None
    for _ in range(100):  # the child exists once $! is printed; /proc may lag a moment
        started = _start_time(pid)
        if started is not None:
            break
        time.sleep(0.005)
    if started is None:
        raise OSError(f"{command[0]} exited at once; see {log}")
    partial = pidfile.with_suffix(".part")
    partial.write_text(f"{pid} {started}\n")
    partial.replace(pidfile)
    return pid


def stop(pidfile: Path, *, timeout_s: float, sig: int = signal.SIGTERM,
         kill: bool = True) -> bool:
    """Send SIG and wait up to TIMEOUT_S for the process to end; then SIGKILL if KILL.
    Returns True once it is gone (the pid file is removed then)."""
    pid = read_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if read_pid(pidfile) is None:
            pidfile.unlink(missing_ok=True)
            return True
        time.sleep(0.01)
    if not kill:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(500):
        if read_pid(pidfile) is None:
            break
        time.sleep(0.01)
    pidfile.unlink(missing_ok=True)
    return True
