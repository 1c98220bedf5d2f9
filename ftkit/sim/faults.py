"""The simulator's faults: what can be injected, where and on which side, how each one
fires, and how a repair puts right what it broke.

A fault is armed by name at a *point* (the driver request it fires in, or ``now``)
and on a *side* (``production``, ``upgrade``, or an enclosure ``0``/``1``).  Armed
faults live in the twin, so a fault armed by ``ftkit sim fault`` in one process fires
in the upgrade run of another.  Each fires ``times`` times (default once): after a
repair, Retry succeeds.

Side names are fixed for the whole session (docs/DOMAIN.md#production-side-and-upgrade-side):
``production`` is the enclosure that keeps the resources at the split (the one with the
primary I/O module) before, during and after the merge, and ``upgrade`` the other one, as
``ftkit status`` and the system picture call them.

The driver's requests call the firing functions at their fault points; every function
here that changes the twin says in how many transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ftkit.drivers import Progress
from ftkit.errors import ActionTimeoutError, FaultError, StepFailedError
from ftkit.model import (
    DiskRole,
    Mirror,
    MirrorState,
    ModuleState,
    PartnerState,
    SystemState,
)
from ftkit.sim.twin import BOOT_S, POST_S, TwinStore, Txn, automatic, finish_resync

__all__ = [
    "FAULTS",
    "POINTS",
    "SIDES",
    "FaultSpec",
    "arm",
    "disarm",
    "enclosure",
    "fire",
    "hang_or",
    "inject",
    "refuse_service",
    "repair",
    "resync",
    "take",
    "take_action_fault",
]

POINTS = ("now", "split", "install", "reboot", "merge", "commit", "abort", "finish", "action")
SIDES = ("production", "upgrade", "0", "1")


@dataclass(frozen=True)
class FaultSpec:
    """One fault of the catalogue: where it may fire and where it fires by default."""

    name: str
    description: str
    points: tuple[str, ...]
    default_point: str
    default_side: str
    needs_target: bool = False  # e.g. which service, disk or package


FAULTS: dict[str, FaultSpec] = {
    spec.name: spec
    for spec in (
        FaultSpec("module-fail", "a CPU module fails (its enclosure drops out)",
                  POINTS[:-1], "now", "upgrade"),
        FaultSpec("installer-fail", "an update installer exits non-zero",
                  ("install",), "install", "upgrade"),
        FaultSpec("installer-hang", "an update installer hangs past its timeout",
                  ("install",), "install", "upgrade"),
        FaultSpec("hang-post", "the partner side hangs at BIOS POST",
                  ("reboot", "abort"), "reboot", "upgrade"),
        FaultSpec("hang-boot", "the partner side hangs while the OS boots",
                  ("reboot", "abort"), "reboot", "upgrade"),
        FaultSpec("hang-shutdown", "the partner side hangs while shutting down",
                  ("reboot", "merge", "abort"), "reboot", "upgrade"),
        FaultSpec("service-stop-refused", "a critical service refuses to stop",
                  ("split", "merge", "abort"), "merge", "production"),
        FaultSpec("service-start-refused", "a critical service refuses to start",
                  ("merge", "abort"), "merge", "upgrade"),
        FaultSpec("action-fail", "a custom action exits non-zero",
                  ("action",), "action", "production"),
        FaultSpec("action-timeout", "a custom action runs past its timeout",
                  ("action",), "action", "production"),
        FaultSpec("resync-fail", "an RDR resync fails part way",
                  ("commit", "abort"), "commit", "upgrade"),
        FaultSpec("dhcp-lease-fail", "a DHCP lease cannot be renewed",
                  ("now",), "now", "production"),
        FaultSpec("disk-fail", "an internal data disk member fails",
                  ("now", "split", "install", "merge", "commit", "abort"), "now", "upgrade",
                  needs_target=False),
    )
}


def arm(name: str, *, point: str | None = None, side: str | None = None,
        target: str = "", times: int = 1) -> dict[str, Any]:
    """A validated armed-fault record; bad input is a one-line FaultError."""
    spec = FAULTS.get(name)
    if spec is None:
        raise FaultError(f"unknown fault {name!r}", f"choose one of: {', '.join(FAULTS)}")
    point = point or spec.default_point
    if point not in spec.points:
        raise FaultError(
            f"fault {name!r} cannot fire at {point!r}", f"use --at {' | '.join(spec.points)}"
        )
    side = (side or spec.default_side).lower()
    if side not in SIDES:
        raise FaultError(f"unknown side {side!r}", f"use --side {' | '.join(SIDES)}")
    if times < 1:
        raise FaultError(f"--times must be at least 1, not {times}", "write --times 1 or more")
    return {"name": name, "point": point, "side": side, "target": target, "times": times}


# --- arming -------------------------------------------------------------------------


def inject(store: TwinStore, name: str, *, point: str | None = None, side: str | None = None,
           target: str = "", times: int = 1) -> dict[str, Any]:
    """Arm a fault; ``point='now'`` makes it happen at once (one transaction)."""
    record = arm(name, point=point, side=side, target=target, times=times)
    with store.transaction() as txn:
        if record["point"] == "now":
            _apply(txn, record)
        else:
            txn.sim.faults.append(record)
        txn.event("fault", f"armed {name} at {record['point']} on {record['side']}")
    return record


def disarm(store: TwinStore, name: str | None = None) -> list[dict[str, Any]]:
    """Remove the armed faults (all, or those named NAME) before they fire; returns them
    (one transaction)."""
    with store.transaction() as txn:
        cleared = [f for f in txn.sim.faults if name is None or f["name"] == name]
        txn.sim.faults = [f for f in txn.sim.faults if f not in cleared]
        if cleared:
            txn.event("fault", f"disarmed {', '.join(f['name'] for f in cleared)}")
    return cleared


def enclosure(state: SystemState, side: str) -> int:
    """The enclosure a side name means: ``production`` is the one that keeps (or kept)
    the resources at the split, whether or not the system has merged since; ``upgrade``
    is the other one; ``0``/``1`` name an enclosure directly (read-only)."""
    if side in ("0", "1"):
        return int(side)
    production = state.production
    if production is None:
        production = next(m.enclosure for m in state.modules.values() if m.primary)
    return production if side == "production" else 1 - production


# --- firing -------------------------------------------------------------------------


def take(txn: Txn, point: str, *names: str) -> dict[str, Any] | None:
    """Use up one firing of the first fault armed at POINT (among NAMES, if given)."""
    for record in txn.sim.faults:
        if record["point"] == point and (not names or record["name"] in names):
            record["times"] -= 1
            if record["times"] <= 0:
                txn.sim.faults.remove(record)
            txn.sim.fired += 1
            return record
    return None


def fire(store: TwinStore, point: str, *names: str) -> None:
    """Fire a fault armed at POINT (a module or disk fault, unless NAMES are given) in one
    transaction, then raise the error the interrupted step reports: its consequences are
    kept."""
    with store.transaction() as txn:
        record = take(txn, point, *(names or ("module-fail", "disk-fail")))
        if record is None:
            return
        try:
            error = _apply(txn, record)
        except FaultError as refused:
            # e.g. disk-fail on the only up-to-date copy: outside the single-fault
            # model, so it is used up without effect; raising here would roll back
            # its use and fail every Retry of the step forever
            txn.event("fault", f"{record['name']} at {point} not applied: {refused}")
            error = None
    if error is not None:
        raise error


def refuse_service(store: TwinStore, point: str, fault: str, critical: Sequence[str]) -> None:
    """A service-stop-refused or service-start-refused armed at POINT fires: the step
    fails naming the service (one transaction)."""
    with store.transaction() as txn:
        record = take(txn, point, fault)
    if record is not None:
        name = record.get("target") or critical[0]
        verb = "stop" if fault == "service-stop-refused" else "start"
        raise StepFailedError(
            f"service {name} refused to {verb}",
            f"see why {name} will not {verb}, then Retry (or Abort)",
            step=point, reason=f"{name} refused to {verb}",
        )


def hang_or(store: TwinStore, enc: int, point: str, fault: str, state: PartnerState,
            hung: PartnerState, seconds: float, progress: Progress | None) -> None:
    """Enclosure ENC goes through STATE for SECONDS; a FAULT armed at POINT hangs it
    there (five times as long, then HUNG and a timeout).  Several transactions."""
    with store.transaction() as txn:
        txn.state.sides[enc].os = state
        record = take(txn, point, fault)
    store.elapse(seconds * (5 if record else 1), f"enclosure {enc}: {state.value}",
                 progress, chunks=4)
    if record is not None:
        with store.transaction() as txn:
            txn.state.sides[enc].os = hung
        raise ActionTimeoutError(
            f"enclosure {enc} is {hung.value}",
            "Retry power-cycles it; Abort returns to the original software",
            step=point, reason=hung.value)


def resync(store: TwinStore, point: str, progress: Progress | None) -> None:
    """Wait for every resyncing mirror to finish; a resync-fail armed at POINT restarts
    one half way.  Several transactions."""
    st, sim = store.read()
    # mirrors resync side by side (Txn.advance moves each at the full rate): the
    # longest one sets the wait, not their sum
    total = max((m.size_gb * 1024 / sim.resync_mb_s * (1 - m.progress)
                 for m in st.mirrors.values() if m.state is MirrorState.RESYNCING),
                default=0.0)
    failing: Mirror | None = None
    with store.transaction() as txn:
        record = take(txn, point, "resync-fail")
        if record is not None:
            failing = next((m for m in txn.state.mirrors.values()
                            if m.state is MirrorState.RESYNCING), None)
    if record is not None:
        store.elapse(total / 2, f"{point}: RDR resync", progress)
        with store.transaction() as txn:
            if failing is not None:
                txn.state.mirrors[failing.name].progress = 0.0
        raise StepFailedError(
            "RDR resync failed part way", "Retry restarts the resync from the start",
            step=point, reason="resync failed")
    if total > 0:
        store.elapse(total * 1.0001, f"{point}: RDR resync", progress, chunks=50)
    with store.transaction() as txn:
        for mirror in txn.state.mirrors.values():
            if mirror.state is MirrorState.RESYNCING and mirror.progress >= 0.9999:
                finish_resync(mirror)


def take_action_fault(store: TwinStore, executable: str) -> dict[str, Any] | None:
    """Use up an action-fail or action-timeout armed for custom actions; the record when
    it is meant for EXECUTABLE (a file name, or any action when it names none), else
    None (one transaction)."""
    with store.transaction() as txn:
        record = take(txn, "action", "action-fail", "action-timeout")
    if record is not None and record.get("target") not in ("", None, executable):
        return None
    return record


def _apply(txn: Txn, record: dict[str, Any]) -> StepFailedError | None:
    """Make a fault happen; returns the error the interrupted step reports."""
    st = txn.state
    name, enc = record["name"], enclosure(st, record["side"])
    if name == "module-fail":
        kind = record.get("target") or "cpu"
        mod = next(m for m in st.modules.values() if m.enclosure == enc and m.kind == kind)
        mod.state = ModuleState.BROKEN
        mod.reason = f"injected fault at {record['point']}"
        mod.fault_count += 1
        _enclosure_lost(txn, enc)
        txn.event(f"module {mod.id}", f"BROKEN: {mod.reason}")
        return StepFailedError(
            f"{kind.upper()} module {mod.id} (enclosure {enc}) failed",
            "repair it (ftkit sim repair), then Retry or Abort",
            step=record["point"], reason=f"module {mod.id} BROKEN",
        )
    if name == "disk-fail":
        disk = _disk_fail(txn, record, enc)
        return StepFailedError(
            f"disk {disk} on enclosure {enc} failed",
            "replace it (ftkit sim repair), then Retry or Abort",
            step=record["point"], reason=f"disk {disk} failed")
    if name == "dhcp-lease-fail":
        dhcp = [t for t in st.teams.values() if t.addressing == "dhcp"]
        if record.get("target"):
            dhcp = [t for t in dhcp if t.name == record["target"]]
        if not dhcp:
            raise FaultError("no DHCP team to fail the lease of",
                             "use a scenario with a DHCP team (dhcp-lease)")
        for team in dhcp:
            team.lease_renewable = False
        return None
    raise FaultError(f"fault {name!r} cannot happen 'now'", "give it --at a step")


def _enclosure_lost(txn: Txn, enc: int) -> None:
    st = txn.state
    side = st.sides[enc]
    side.os = PartnerState.OS_CRASHED if st.split else PartnerState.DC_OFF
    side.running = []
    if not st.split:
        for mirror in st.mirrors.values():
            if mirror.state in (MirrorState.MIRRORED, MirrorState.RESYNCING):
                mirror.state, mirror.source, mirror.progress = MirrorState.BROKEN, None, 0.0
        if st.apps_on is not None:
            st.apps_on = 1 - enc  # lockstep partner carries on: no outage
            st.apps_duplex = False
    elif st.apps_on == enc:
        txn.apps_stopped()
        txn.event("workload", f"applications down: enclosure {enc} failed while split")


def _disk_fail(txn: Txn, record: dict[str, Any], enc: int) -> str:
    st = txn.state
    name = record.get("target") or next(
        m.name for m in st.mirrors.values() if m.role is DiskRole.DATA
    )
    mirror = st.mirrors.get(name)
    if mirror is None:
        raise FaultError(f"no internal disk {name!r}", f"name one of: {', '.join(st.mirrors)}")
    if _current_members(st, mirror) == [enc]:
        raise FaultError(
            f"{name} on enclosure {enc} is the only up-to-date copy while split",
            "inject disk-fail on the other side; a lone copy is outside the single-fault model",
        )
    mirror.members[enc].healthy = False
    if mirror.state in (MirrorState.MIRRORED, MirrorState.RESYNCING):
        mirror.state, mirror.source, mirror.progress = MirrorState.BROKEN, None, 0.0
    txn.event(f"disk {name}", f"member on enclosure {enc} failed")
    return name


def _current_members(st: SystemState, mirror: Mirror) -> list[int]:
    if mirror.state is MirrorState.DISABLED and mirror.role is DiskRole.DATA:
        return [st.production if st.production is not None else 0]
    if mirror.state is MirrorState.RESYNCING and mirror.source is not None:
        return [mirror.source]
    return [e for e, m in mirror.members.items() if m.healthy]


# --- repair -------------------------------------------------------------------------


def repair(store: TwinStore, what: str = "all", *, progress: Progress | None = None
           ) -> list[str]:
    """Replace broken modules and failed disks ("all", a module id or a disk name), boot
    the enclosures that were down, and, unless split, resync back to duplex.  Returns
    what was replaced, empty when nothing matched (then nothing changes).  Several
    transactions: the replacement is one, each boot stage one, the resync its chunks."""
    try:
        with store.transaction() as txn:
            repaired, booted = _replace(txn, what)
    except _NothingToRepair:
        return []  # rolled back: not even the twin's version moved
    for enc in sorted(set(booted)):
        _boot(store, enc, progress)
    with store.transaction() as txn:
        st = txn.state
        if not st.split:
            for mirror in st.mirrors.values():
                if mirror.state is MirrorState.BROKEN:
                    healthy = [e for e, m in mirror.members.items() if m.healthy]
                    src = st.apps_on if st.apps_on in healthy else healthy[0]
                    mirror.state, mirror.source, mirror.progress = (
                        MirrorState.RESYNCING, src, 0.0)
            if st.apps_on is not None and all(st.enclosure_up(e) for e in (0, 1)):
                st.apps_duplex = True
            for side in st.sides.values():
                if side.os is PartnerState.OS_UP:
                    side.running = automatic(st, side.enclosure)
    if not store.read()[0].split:
        resync(store, "repair", progress)  # back to duplex before anything goes on
    return repaired


class _NothingToRepair(Exception):
    """Nothing broken matched: the repair's transaction rolls back."""


def _replace(txn: Txn, what: str) -> tuple[list[str], list[int]]:
    """Put new modules and disks in (inside the repair's first transaction); returns
    what was replaced and the enclosures to boot."""
    repaired: list[str] = []
    booted: list[int] = []
    st = txn.state
    for mod in st.modules.values():
        if mod.state is not ModuleState.ONLINE and what in ("all", str(mod.id)):
            mod.state, mod.reason = ModuleState.ONLINE, ""
            mod.mtbf_h = max(mod.mtbf_h, mod.mtbf_threshold_h * 2)
            repaired.append(f"module {mod.id}")
            booted.append(mod.enclosure)
    for mirror in st.mirrors.values():
        for enc, member in mirror.members.items():
            if not member.healthy and what in ("all", mirror.name):
                member.healthy = True
                member.txs = []
                repaired.append(f"disk {mirror.name}/{enc}")
                if mirror.state is MirrorState.BROKEN:
                    mirror.state, mirror.source = MirrorState.RESYNCING, 1 - enc
                    mirror.progress = 0.0
    if not repaired:
        raise _NothingToRepair
    txn.event("service", f"repaired {', '.join(repaired)}")
    return repaired, booted


def _boot(store: TwinStore, enc: int, progress: Progress | None) -> None:
    """A replaced enclosure goes through BIOS POST and OS boot; the applications start
    again if they ran nowhere and this is where they belong."""
    with store.transaction() as txn:
        txn.state.sides[enc].os = PartnerState.BIOS_POST
    store.elapse(POST_S, f"enclosure {enc}: BIOS POST", progress, chunks=4)
    with store.transaction() as txn:
        txn.state.sides[enc].os = PartnerState.OS_BOOTING
    store.elapse(BOOT_S, f"enclosure {enc}: OS booting", progress, chunks=4)
    with store.transaction() as txn:
        st = txn.state
        side = st.sides[enc]
        side.os = PartnerState.OS_UP
        side.running = automatic(st, enc)
        side.reboot_pending = False
        home = None
        if st.split and st.production is not None:
            home = 1 - st.production if st.merged else st.production
        if st.apps_on is None and enc == home:
            txn.apps_started(enc)  # the applications' services start at boot
            txn.event("workload", f"applications restarted on enclosure {enc}")
