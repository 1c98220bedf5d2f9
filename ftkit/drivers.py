"""Drivers: how ftkit reaches a system, found by the scheme of a target string.

A driver speaks at the level of the vendor's Active Upgrade requests: split, install,
reboot the Upgrade side, merge, commit, abort, finish.  Each request is *resumable*:
called again after a failure or a killed process it carries on from where the system
is, and a request that already happened does nothing the second time.  The simulator
(``sim://``) is the first driver and ``host://`` upgrades a real service on a Linux host;
a driver for real hardware registers its own scheme through the ``ftkit.drivers``
entry-point group and passes the same contract tests (``tests/test_driver_contract.py``).
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ftkit.errors import TargetError
from ftkit.model import SystemState

__all__ = [
    "ENTRY_POINT_GROUP",
    "ActionResult",
    "Driver",
    "Outage",
    "Progress",
    "clock_of",
    "connect",
    "ensure_system",
    "register",
    "run_executable",
    "schemes",
    "split_target",
    "state_dir_of",
]

Progress = Callable[[str, float, float], None]
"""``progress(label, done, total)`` in simulated seconds, for progress bars."""


@dataclass(frozen=True)
class ActionResult:
    """What a custom action did."""

    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False


@dataclass(frozen=True)
class Outage:
    """A gap in acknowledged transactions: the applications served nobody."""

    start: float  # simulated time of the last acknowledged transaction before
    end: float | None  # first one after; None while the outage goes on
    before: int | None  # enclosure that served before (None = duplex)
    after: int | None

    @property
    def seconds(self) -> float | None:
        return None if self.end is None else self.end - self.start


@runtime_checkable
class Driver(Protocol):
    """What the Active Upgrade process needs of a system."""

    target: str

    def status(self) -> SystemState:
        """A snapshot of the whole system (read-only)."""

    def wait(self, seconds: float, *, progress: Progress | None = None) -> None:
        """Let time pass while the applications run (a soak)."""

    def stage(self, label: str, digest: str) -> None:
        """Copy an update package onto the system disk before the split."""

    def split(self, *, critical: Sequence[str], upgrade_ip: str,
              progress: Progress | None = None) -> None:
        """ExecuteSplit: disable RDR mirroring, isolate the Upgrade side, disable and stop
        the critical services there only."""

    def install(self, package: Mapping[str, Any], *, progress: Progress | None = None) -> None:
        """Run one update package's installer on the Upgrade side."""

    def reboot_upgrade_side(self, *, progress: Progress | None = None) -> None:
        """Restart the Upgrade side and wait until it is OS Up."""

    def merge(self, *, critical: Sequence[str], progress: Progress | None = None) -> None:
        """ExecuteMerge: stop the applications on the Production side, hand the data disks
        over, restore startup types and start the applications on the Upgrade side."""

    def commit(self, *, progress: Progress | None = None) -> None:
        """Resynchronise the old system disk and the stale data copies; no outage."""

    def abort(self, *, progress: Progress | None = None) -> None:
        """Return to the original software and resynchronise the Upgrade side."""

    def finish(self) -> None:
        """Clean up after commit or abort once the resync is complete."""

    def backup_event_logs(self, names: Sequence[str]) -> dict[str, list[str]]:
        """The Production side's event logs, before commit overwrites its system disk."""

    def run_custom_action(self, path: str, *, args: Sequence[str], env: Mapping[str, str],
                          timeout_s: float, request: str, side: str) -> ActionResult:
        """Run one custom action executable on the given side, with exactly ENV as its
        environment (the process declares it: ACTIVE_UPGRADE_*, PATH and what the
        configuration names; never the caller's whole environment)."""

    def outages(self) -> list[Outage]:
        """Every gap in service measured from the transaction ledger (read-only)."""

    def lost_transactions(self) -> int:
        """Acknowledged transactions missing from the surviving data disks (read-only)."""

    def acknowledged(self) -> int:
        """How many transactions the applications have acknowledged (read-only)."""

    def state_dir(self) -> Path | None:
        """The folder where the system keeps its own state, in which ftkit keeps the
        system's journal and controller lock (``journal-<system id>.db``,
        ``controller.lock``): every process that drives the system must find the same
        folder, whatever its ``$FTKIT_HOME``. None when there is none this process can
        reach. Read-only: it creates nothing (ftkit creates the folder when it first writes
        there)."""

    def close(self) -> None:
        """Release the connection."""


def state_dir_of(driver: Driver) -> Path | None:
    """DRIVER's :meth:`Driver.state_dir`; None for a driver that has none (one written
    before drivers named it: ftkit then keeps the journal under ``$FTKIT_HOME/journals``
    as before, with the lock beside it, so two homes do not share it). Read-only."""
    method = getattr(driver, "state_dir", None)
    folder = method() if callable(method) else None
    return None if folder is None else Path(folder)


def run_executable(command: Sequence[str], *, env: Mapping[str, str],
                   timeout_s: float) -> ActionResult:
    """Run a custom action's COMMAND with exactly ENV, capturing its output as text
    (UTF-8; bytes that are not become U+FFFD, never an error): a timeout is ``timed_out``
    (exit -9; the command and every process it started in its process group are killed),
    a command that cannot start is exit 127 with the reason. What every driver's
    ``run_custom_action`` does once it knows where to run it."""
    import os
    import signal
    import subprocess
    import time

    started = time.monotonic()
    try:
        proc = subprocess.Popen(list(command), env=dict(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, encoding="utf-8", errors="replace",
                                start_new_session=True)  # its own group: killed whole
    except OSError as exc:
        return ActionResult(127, "", f"cannot run {command[0]}: {exc.strerror}",
                            time.monotonic() - started)
    with proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            try:  # what it printed before; a child that left the group may hold the pipes
                stdout, stderr = proc.communicate(timeout=_AFTER_KILL_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = "", f"killed after {timeout_s:g} s; its output was lost"
            return ActionResult(-9, stdout or "", stderr or "", time.monotonic() - started,
                                timed_out=True)
    return ActionResult(proc.returncode, stdout or "", stderr or "",
                        time.monotonic() - started)


#: How long a timed-out action's output is still read once its process group is killed.
_AFTER_KILL_S = 5.0

_REGISTRY: dict[str, Callable[[str, str], Driver]] = {}
_TARGET = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<rest>.+)$")
#: The drivers that ship with ftkit, imported only when a target of theirs is opened.
_BUILTIN = {
    "sim": "ftkit.sim.driver:open_sim",
    "host": "ftkit.host.driver:open_host",
}
#: Third-party drivers register a factory ``(target, rest) -> Driver`` in this group.
ENTRY_POINT_GROUP = "ftkit.drivers"


def clock_of(driver: Driver) -> float:
    """DRIVER's clock in seconds: its ``now()`` when it offers one (cheaper: the simulator
    reads it without decoding the whole state), else ``status().now``. Read-only."""
    now = getattr(driver, "now", None)
    return float(now() if callable(now) else driver.status().now)


def register(scheme: str, factory: Callable[[str, str], Driver]) -> None:
    """Make ``scheme://…`` targets open with ``factory(target, rest)``."""
    _REGISTRY[scheme] = factory


def schemes() -> list[str]:
    """Every scheme a target may use: built in, registered, or from an installed package's
    ``ftkit.drivers`` entry point (read-only)."""
    _load_builtin()
    return sorted(set(_REGISTRY) | {ep.name for ep in _entry_points()})


def known_scheme(scheme: str) -> bool:
    """Whether SCHEME has a driver (read-only): built in or registered without scanning the
    installed packages, else an ``ftkit.drivers`` entry point of that name."""
    _load_builtin()
    return scheme in _REGISTRY or any(ep.name == scheme for ep in _entry_points())


def split_target(target: str) -> tuple[str, str]:
    """``"sim://demo"`` → ``("sim", "demo")``; a malformed target is a TargetError."""
    match = _TARGET.match(target) if isinstance(target, str) else None
    if match is None:
        raise TargetError(
            f"malformed target {target!r}",
            "write SCHEME://NAME, for example sim://demo or sim:///abs/path.db",
        )
    return match["scheme"], match["rest"]


def connect(target: str) -> Driver:
    """Open the system a target names through its scheme's driver.

    Built-in schemes never scan the installed packages; only a scheme ftkit does not know
    looks for an ``ftkit.drivers`` entry point of that name."""
    scheme, rest = split_target(target)
    _load_builtin()
    factory = _REGISTRY.get(scheme) or _from_entry_point(scheme)
    if factory is None:
        raise TargetError(
            f"no driver for scheme {scheme!r} in {target!r}",
            f"use one of: {', '.join(s + '://' for s in schemes())}, or install the "
            f"package whose {ENTRY_POINT_GROUP!r} entry point provides {scheme}://",
        )
    return factory(target, rest)


def ensure_system(target: str, *, scenario: str = "demo",
                  time_scale: float = 0.0) -> tuple[Driver, bool]:
    """Connect to TARGET; a ``sim://`` system that does not exist yet is created from
    SCENARIO first (so a fresh machine's first run works). Returns ``(driver, created)``;
    of processes racing to create one system, one creates it and the others open it."""
    scheme, _rest = split_target(target)
    if scheme == "sim":
        from ftkit.sim import admin

        return admin.ensure(target, scenario=scenario, time_scale=time_scale)
    return connect(target), False


def _load_builtin() -> None:
    for scheme, spec in _BUILTIN.items():
        if scheme not in _REGISTRY:
            register(scheme, _lazy(spec))


def _lazy(spec: str) -> Callable[[str, str], Driver]:
    def factory(target: str, rest: str) -> Driver:
        module, _, name = spec.partition(":")
        opened: Driver = getattr(importlib.import_module(module), name)(target, rest)
        return opened

    return factory


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in _BUILTIN]


def _from_entry_point(scheme: str) -> Callable[[str, str], Driver] | None:
    """The factory an installed package registers for SCHEME, registered on first use."""
    for ep in _entry_points():
        if ep.name != scheme:
            continue
        try:
            factory = ep.load()
        except Exception as exc:  # a broken plug-in must say so, not crash the CLI
            raise TargetError(
                f"the driver for {scheme}:// ({ep.value}) cannot be loaded: "
                f"{type(exc).__name__}: {exc}",
                "reinstall the package that provides it, or remove it",
            ) from None
        register(scheme, factory)
        return factory
    return None
