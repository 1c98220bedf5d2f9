"""Administering simulated systems: create, list, remove, arm and clear faults, repair.

The simulator's public face for the CLI, the runbooks and tests, so that none of them
reaches into the driver's or the twin's internals.  Every function takes a NAME as the
operator writes it — a bare name (``lab1``), ``sim://lab1`` or ``sim:///abs/path/lab1.db``
— and checks it before anything is touched: bad input is a one-line
:class:`~ftkit.errors.FtkitError` and changes nothing.  Each says whether it is read-only
or how many twin transactions it makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftkit.drivers import Progress, split_target
from ftkit.errors import FaultError, FtkitError, TargetError
from ftkit.home import ftkit_home
from ftkit.model import SystemState
from ftkit.sim import faults
from ftkit.sim.driver import SimDriver, create_system, open_sim, system_path
from ftkit.sim.twin import SystemExistsError, is_twin

__all__ = [
    "ArmedFault",
    "Repair",
    "SystemInfo",
    "arm_fault",
    "clear_faults",
    "create",
    "ensure",
    "info",
    "open_system",
    "remove",
    "repair",
    "set_journal_aside",
    "sim_target",
    "systems",
]


@dataclass(frozen=True)
class SystemInfo:
    """One simulated system as ``sim list`` shows it.  ``state`` is None (and
    ``problem`` says why) when the file cannot be read as a twin."""

    name: str
    target: str
    path: Path
    system_id: str = ""
    scenario: str = ""
    time_scale: float = 0.0
    armed: tuple[dict[str, Any], ...] = ()
    state: SystemState | None = None
    problem: str = ""


@dataclass(frozen=True)
class ArmedFault:
    """A fault armed (or, at point ``now``, happened) on a system."""

    name: str
    point: str
    side: str
    target: str
    times: int
    enclosure: int  # the enclosure the side names (fixed for the whole session)
    state: SystemState  # the system just after


@dataclass(frozen=True)
class Repair:
    """What a repair replaced (nothing, with ``message`` saying so, when nothing was
    broken) and the system just after."""

    repaired: tuple[str, ...]
    message: str
    state: SystemState


def sim_target(name: str) -> tuple[str, Path]:
    """The ``sim://`` target NAME means and its twin file; a bare NAME means
    ``sim://NAME``.  A malformed name, or another scheme, is a TargetError (read-only)."""
    target = name if "://" in name else f"sim://{name}"
    scheme, _rest = split_target(target)
    if scheme != "sim":
        raise TargetError(f"{target!r} is not a simulated system", "write NAME or sim://NAME")
    return target, system_path(target.removeprefix("sim://"))  # all of it: no trailing \n


def open_system(name: str) -> SimDriver:
    """The driver of the existing system NAME (the caller closes it)."""
    target, _path = sim_target(name)
    return open_sim(target, target.removeprefix("sim://"))


def create(name: str, *, scenario: str = "demo", seed: int = 0,
           time_scale: float = 0.0) -> SystemInfo:
    """Create NAME from SCENARIO, whole or not at all; SystemExistsError (a TargetError)
    when it exists, also when another process creates it at the same moment."""
    target, _path = sim_target(name)
    driver = create_system(target, scenario=scenario, seed=seed, time_scale=time_scale)
    try:
        return _info(driver)
    finally:
        driver.close()


def ensure(name: str, *, scenario: str = "demo", seed: int = 0,
           time_scale: float = 0.0) -> tuple[SimDriver, bool]:
    """Open NAME, creating it from SCENARIO first if it does not exist (a first run on a
    fresh machine); returns the driver and whether this call created it.  Of several
    processes ensuring one new name at once, one creates it and the others open it."""
    target, path = sim_target(name)
    if not path.exists():
        try:
            return create_system(target, scenario=scenario, seed=seed,
                                 time_scale=time_scale), True
        except SystemExistsError:
            pass  # another process won the race: open its twin
    return open_sim(target, target.removeprefix("sim://")), False


def info(name: str) -> SystemInfo:
    """NAME as ``sim list`` shows it (read-only)."""
    target, path = sim_target(name)
    try:
        driver = open_sim(target, target.removeprefix("sim://"))
    except FtkitError as err:
        return SystemInfo(name=path.stem, target=target, path=path, problem=err.message)
    try:
        return _info(driver)
    finally:
        driver.close()


def systems() -> list[SystemInfo]:
    """Every simulated system under ``$FTKIT_HOME``, by name; unreadable ones included
    with the reason (read-only)."""
    folder = ftkit_home() / "systems"
    names = sorted(p.stem for p in folder.glob("*.db")) if folder.is_dir() else []
    return [info(name) for name in names]


def remove(name: str, *, force: bool = False) -> Path:
    """Delete NAME's twin file (with SQLite's -wal, -shm and -journal beside it); returns
    its path.  Refuses a missing file, and a file that is not a twin unless FORCE (a
    damaged twin, or one left by an interrupted tool).  Only ever a ``.db`` file that the
    name rule allows.  Its journal is moved aside (:func:`set_journal_aside`), so a new
    system of the same name starts clean."""
    _target, path = sim_target(name)
    if not path.exists():
        raise TargetError(f"no simulated system at {path}", "see: ftkit sim list")
    if not path.is_file():
        raise TargetError(f"{path} is not a file", "remove it by hand if it must go")
    if not force and not is_twin(path):
        raise TargetError(f"{path} is not an ftkit twin",
                          f"remove it anyway with: ftkit sim remove {name} --force")
    set_journal_aside(_target)
    try:
        path.unlink()
    except OSError as err:
        raise TargetError(f"cannot remove {path}: {err.strerror}",
                          "check the folder's permissions") from None
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def set_journal_aside(target: str) -> list[Path]:
    """Rename TARGET's journal (beside the twin, keyed by its system id; and one an older
    ftkit kept under ``$FTKIT_HOME/journals``, by system id or by the target string) to
    ``<file>.removed-<UTC time>`` beside it: the record of what was done to the system
    is kept, and is never resumed by a new system of the same name.  Returns the new
    paths (none when the system never had a journal); creates nothing."""
    from datetime import UTC, datetime

    from ftkit.home import journal_path
    from ftkit.journal import journal_path_of, legacy_journal_path_of

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved = []
    found = (journal_path_of(target), legacy_journal_path_of(target),
             journal_path(target, create=False))
    for journal in dict.fromkeys(p for p in found if p is not None):
        if journal.is_file():
            aside = journal.with_name(f"{journal.name}.removed-{stamp}")
            journal.rename(aside)
            moved.append(aside)
            for suffix in ("-wal", "-shm"):
                extra = Path(f"{journal}{suffix}")
                if extra.is_file():
                    extra.rename(Path(f"{aside}{suffix}"))
    return moved


def arm_fault(name: str, fault: str, *, point: str | None = None, side: str | None = None,
              target: str = "", times: int = 1) -> ArmedFault:
    """Arm FAULT on NAME (at POINT, on SIDE), or make it happen now; validated before the
    system is opened (one transaction)."""
    record = faults.arm(fault, point=point, side=side, target=target, times=times)
    driver = open_system(name)
    try:
        done = driver.inject(fault, point=record["point"], side=record["side"],
                             target=record["target"], times=record["times"])
        state = driver.status()
    finally:
        driver.close()
    return ArmedFault(name=fault, point=done["point"], side=done["side"],
                      target=done["target"], times=done["times"],
                      enclosure=faults.enclosure(state, done["side"]), state=state)


def clear_faults(name: str, fault: str | None = None) -> list[dict[str, Any]]:
    """Disarm NAME's armed faults (all, or those named FAULT) before they fire; returns
    them (one transaction)."""
    if fault is not None and fault not in faults.FAULTS:
        raise FaultError(f"unknown fault {fault!r}", f"choose one of: {', '.join(faults.FAULTS)}")
    driver = open_system(name)
    try:
        return driver.disarm(fault)
    finally:
        driver.close()


def repair(name: str, what: str = "all", *, progress: Progress | None = None) -> Repair:
    """Replace NAME's broken modules and failed disks ("all", a module id or a disk
    name), boot what was down and resync.  Nothing broken is no error: the result says
    so, and nothing changes.  WHAT naming no module or disk is a FaultError."""
    driver = open_system(name)
    try:
        state = driver.status()
        known = ["all", *(str(m) for m in state.modules), *state.mirrors]
        if what not in known:
            raise FaultError(f"no module or disk named {what!r} on {driver.target}",
                             f"name one of: {', '.join(known)}")
        repaired = faults.repair(driver.store, what, progress=progress)
        state = driver.status()
    finally:
        driver.close()
    if repaired:
        return Repair(tuple(repaired), f"repaired {', '.join(repaired)}", state)
    return Repair((), _nothing_broken(state, what), state)


def _nothing_broken(state: SystemState, what: str) -> str:
    if what == "all":
        return "nothing to repair: every module is ONLINE and every disk member healthy"
    if what in state.mirrors:
        return f"nothing to repair: disk {what} is healthy on both enclosures"
    module = state.modules[int(what)]
    return f"nothing to repair: module {what} is {module.state.value}"


def _info(driver: SimDriver) -> SystemInfo:
    state, sim = driver.store.read()
    return SystemInfo(name=driver.store.path.stem, target=driver.target,
                      path=driver.store.path, system_id=state.system_id,
                      scenario=sim.scenario, time_scale=sim.time_scale,
                      armed=tuple(sim.faults), state=state)
