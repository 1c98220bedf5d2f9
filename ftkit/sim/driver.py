"""The simulator driver: a digital twin of a duplexed NEC Express5800/ft server.

It does to the twin what the vendor's Active Upgrade software does to the machine.
Every request is resumable: a multi-part request records its progress in the twin
(``state.phase``) transaction by transaction, so calling it again after a fault or a
killed process carries on instead of starting over.  Time passes on a virtual clock
(``time_scale`` 0 = instant, 1 = real time) while the workload acknowledges
transactions into the ledger.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ftkit.drivers import ActionResult, Outage, Progress
from ftkit.errors import (
    ActionTimeoutError,
    FaultError,
    StepFailedError,
    TargetError,
    TransitionError,
)
from ftkit.home import ftkit_home
from ftkit.model import (
    DiskRole,
    MirrorState,
    ModuleState,
    PartnerState,
    SideRole,
    StartupType,
    SystemState,
)
from ftkit.sim import faults as fault_catalogue
from ftkit.sim.twin import SimSettings, TwinStore, Txn, build_state, finish_resync, load_scenario

__all__ = ["SimDriver", "create_system", "list_systems", "open_sim", "system_path"]

# Realistic durations in simulated seconds.
SPLIT_S = 45.0
SHUTDOWN_S = 60.0
POST_S = 120.0
BOOT_S = 90.0
FLUSH_S = 4.0
HANDOVER_S = 6.0
STAGE_S = 20.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def system_path(rest: str) -> Path:
    """The twin file a ``sim://`` target names."""
    if rest.startswith("/"):
        return Path(rest)
    if not _NAME.match(rest):
        raise TargetError(
            f"malformed simulator name {rest!r}",
            "use letters, digits, '.', '_' or '-' (sim://demo), or sim:///abs/path.db",
        )
    return ftkit_home() / "systems" / f"{rest}.db"


def open_sim(target: str, rest: str) -> SimDriver:
    return SimDriver(target, TwinStore(system_path(rest)))


def create_system(target: str, *, scenario: str = "demo", seed: int = 0,
                  time_scale: float = 0.0, epoch: datetime | None = None) -> SimDriver:
    """Create a simulated system from a scenario; refuses to overwrite one."""
    from ftkit.drivers import split_target

    scheme, rest = split_target(target)
    if scheme != "sim":
        raise TargetError(f"{target!r} is not a simulator target", "write sim://NAME")
    if time_scale < 0:
        raise TargetError(f"time scale {time_scale} is negative", "use 0 (instant) to 1 (real)")
    data = load_scenario(scenario)
    start = (epoch or datetime.now(UTC).replace(microsecond=0)).isoformat()
    state = build_state(rest.rsplit("/", 1)[-1].removesuffix(".db"), data, epoch=start)
    sim = SimSettings(
        seed=seed,
        time_scale=time_scale,
        rate_tps=float(data.get("rate_tps", 5.0)),
        resync_mb_s=float(data.get("resync_mb_s", 250.0)),
        scenario=scenario,
    )
    store = TwinStore.create(system_path(rest), state, sim)
    return SimDriver(target, store)


def list_systems() -> list[str]:
    """Names of the simulated systems under ``$FTKIT_HOME`` (read-only)."""
    folder = ftkit_home() / "systems"
    return sorted(p.stem for p in folder.glob("*.db")) if folder.is_dir() else []


class SimDriver:
    """The ``sim://`` driver."""

    def __init__(self, target: str, store: TwinStore) -> None:
        self.target = target
        self.store = store

    # --- reading ---------------------------------------------------------

    def status(self) -> SystemState:
        return self.store.read()[0]

    def settings(self) -> SimSettings:
        return self.store.read()[1]

    def set_time_scale(self, scale: float) -> None:
        """Run the simulated clock at SCALE from now on (0 instant, 1 real time); one
        transaction. Lets a rehearsal slow down for a person watching, or speed up."""
        if scale < 0:
            raise TargetError(f"time scale {scale} is negative", "use 0 (instant) to 1 (real)")
        with self._txn() as txn:
            txn.sim.time_scale = scale
            txn.event("sim", f"time scale set to {scale:g}")

    def close(self) -> None:
        self.store.close()

    def acknowledged(self) -> int:
        return self.settings().next_seq - 1

    def outages(self) -> list[Outage]:
        state, sim = self.store.read()
        runs = self.store.ledger()
        gap = 1.5 / sim.rate_tps if sim.rate_tps > 0 else 0.0
        found: list[Outage] = []
        for prev, cur in itertools.pairwise(runs):
            if cur[2] - prev[3] > gap:
                found.append(Outage(prev[3], cur[2], prev[4], cur[4]))
        if runs and state.apps_on is None:
            found.append(Outage(runs[-1][3], None, runs[-1][4], None))
        elif runs and sim.next_due - runs[-1][3] > gap:
            # serving again, but no time has passed since: the first transaction after
            # the gap is due at next_due (the ledger will record it then)
            found.append(Outage(runs[-1][3], sim.next_due, runs[-1][4],
                                None if state.apps_duplex else state.apps_on))
        return found

    def lost_transactions(self) -> int:
        """Acknowledged transactions held by no healthy, current copy of some data disk."""
        state, sim = self.store.read()
        acked = sim.next_seq - 1
        worst = 0
        for mirror in state.mirrors.values():
            if mirror.role is not DiskRole.DATA:
                continue
            held = max(
                (_count(m.txs, acked) for m in mirror.members.values() if m.healthy), default=0
            )
            worst = max(worst, acked - held)
        for disk in state.external.values():
            worst = max(worst, acked - (_count(disk.txs, acked) if disk.healthy else 0))
        return worst

    def events(self, limit: int = 200) -> list[tuple[float, str, str]]:
        return self.store.events(limit)

    # --- time ------------------------------------------------------------

    @contextmanager
    def _txn(self) -> Iterator[Txn]:
        with self.store.transaction() as txn:
            yield txn

    def _elapse(self, seconds: float, label: str, progress: Progress | None,
                *, chunks: int = 20) -> None:
        """Let ``seconds`` of simulated time pass, in chunks that each commit."""
        if seconds <= 0:
            return
        scale = self.settings().time_scale
        step = seconds / chunks
        done = 0.0
        for _ in range(chunks):
            with self._txn() as txn:
                txn.advance(step)
            done += step
            if progress is not None:
                progress(label, min(done, seconds), seconds)
            if scale > 0:
                time.sleep(step * scale)

    def wait(self, seconds: float, *, progress: Progress | None = None) -> None:
        self._elapse(seconds, "soak", progress)

    # --- faults ------------------------------------------------------------

    def inject(self, name: str, *, point: str | None = None, side: str | None = None,
               target: str = "", times: int = 1) -> dict[str, object]:
        """Arm a fault; ``point='now'`` makes it happen at once (one transaction)."""
        record = fault_catalogue.arm(name, point=point, side=side, target=target, times=times)
        with self._txn() as txn:
            if record["point"] == "now":
                self._apply(txn, record)
            else:
                txn.sim.faults.append(record)
            txn.event("fault", f"armed {name} at {record['point']} on {record['side']}")
        return record

    def disarm(self, name: str | None = None) -> list[dict[str, Any]]:
        """Remove the armed faults (all, or those named NAME) before they fire; returns
        them (one transaction)."""
        with self._txn() as txn:
            cleared = [f for f in txn.sim.faults if name is None or f["name"] == name]
            txn.sim.faults = [f for f in txn.sim.faults if f not in cleared]
            if cleared:
                txn.event("fault", f"disarmed {', '.join(f['name'] for f in cleared)}")
        return cleared

    def _enclosure(self, state: SystemState, side: str) -> int:
        if side in ("0", "1"):
            return int(side)
        production = state.production
        if production is None:
            production = next(m.enclosure for m in state.modules.values() if m.primary)
        if state.merged and side == "production":
            # after merge the applications run on the upgraded enclosure
            return 1 - production
        return production if side == "production" else 1 - production

    def _take(self, txn: Txn, point: str, *names: str) -> dict[str, Any] | None:
        for record in txn.sim.faults:
            if record["point"] == point and (not names or record["name"] in names):
                record["times"] -= 1
                if record["times"] <= 0:
                    txn.sim.faults.remove(record)
                txn.sim.fired += 1
                return record
        return None

    def _fire(self, point: str, *names: str) -> None:
        """Fire a fault armed at ``point`` (module/disk faults apply to any point)."""
        with self._txn() as txn:
            record = self._take(txn, point, *(names or ("module-fail", "disk-fail")))
            if record is None:
                return
            try:
                error = self._apply(txn, record)
            except FaultError as refused:
                # e.g. disk-fail on the only up-to-date copy: outside the single-fault
                # model, so it is used up without effect; raising here would roll back
                # its use and fail every Retry of the step forever
                txn.event("fault", f"{record['name']} at {point} not applied: {refused}")
                error = None
        if error is not None:
            raise error  # after the commit: the fault's consequences are kept

    def _apply(self, txn: Txn, record: dict[str, Any]) -> StepFailedError | None:
        """Make a fault happen; returns the error the interrupted step reports."""
        st = txn.state
        name, enc = record["name"], self._enclosure(st, record["side"])
        if name == "module-fail":
            kind = record.get("target") or "cpu"
            mod = next(m for m in st.modules.values() if m.enclosure == enc and m.kind == kind)
            mod.state = ModuleState.BROKEN
            mod.reason = f"injected fault at {record['point']}"
            mod.fault_count += 1
            self._enclosure_lost(txn, enc)
            txn.event(f"module {mod.id}", f"BROKEN: {mod.reason}")
            return StepFailedError(
                    f"{kind.upper()} module {mod.id} (enclosure {enc}) failed",
                    "repair it (ftkit sim repair), then Retry or Abort",
                    step=record["point"], reason=f"module {mod.id} BROKEN",
                )
        elif name == "disk-fail":
            disk = self._disk_fail(txn, record, enc)
            return StepFailedError(
                    f"disk {disk} on enclosure {enc} failed",
                    "replace it (ftkit sim repair), then Retry or Abort",
                    step=record["point"], reason=f"disk {disk} failed")
        elif name == "dhcp-lease-fail":
            dhcp = [t for t in st.teams.values() if t.addressing == "dhcp"]
            if record.get("target"):
                dhcp = [t for t in dhcp if t.name == record["target"]]
            if not dhcp:
                raise FaultError("no DHCP team to fail the lease of",
                                 "use a scenario with a DHCP team (dhcp-lease)")
            for team in dhcp:
                team.lease_renewable = False
            return None
        else:
            raise FaultError(f"fault {name!r} cannot happen 'now'", "give it --at a step")

    def _enclosure_lost(self, txn: Txn, enc: int) -> None:
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

    def _disk_fail(self, txn: Txn, record: dict[str, Any], enc: int) -> str:
        st = txn.state
        name = record.get("target") or next(
            m.name for m in st.mirrors.values() if m.role is DiskRole.DATA
        )
        mirror = st.mirrors.get(name)
        if mirror is None:
            raise FaultError(f"no internal disk {name!r}",
                             f"name one of: {', '.join(st.mirrors)}")
        current = self._current_members(st, mirror)
        if current == [enc]:
            raise FaultError(
                f"{name} on enclosure {enc} is the only up-to-date copy while split",
                "inject disk-fail on the other side; a lone copy is outside the single-fault model",
            )
        mirror.members[enc].healthy = False
        if mirror.state in (MirrorState.MIRRORED, MirrorState.RESYNCING):
            mirror.state, mirror.source, mirror.progress = MirrorState.BROKEN, None, 0.0
        txn.event(f"disk {name}", f"member on enclosure {enc} failed")
        return name

    @staticmethod
    def _current_members(st: SystemState, mirror: Any) -> list[int]:
        if mirror.state is MirrorState.DISABLED and mirror.role is DiskRole.DATA:
            return [st.production if st.production is not None else 0]
        if mirror.state is MirrorState.RESYNCING and mirror.source is not None:
            return [mirror.source]
        return [e for e, m in mirror.members.items() if m.healthy]

    def repair(self, what: str = "all", *, progress: Progress | None = None) -> list[str]:
        """Replace broken modules and disks ("all", a module id or a disk name)."""
        repaired: list[str] = []
        booted: list[int] = []
        with self._txn() as txn:
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
                raise FaultError(f"nothing to repair matching {what!r}",
                                 "see ftkit status for BROKEN modules and failed disks")
            txn.event("service", f"repaired {', '.join(repaired)}")
        for enc in sorted(set(booted)):
            self._boot(enc, progress)
        with self._txn() as txn:
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
                        side.running = _automatic(st, side.enclosure)
        if not self.status().split:
            self._resync("repair", progress)  # back to duplex before anything goes on
        return repaired

    def _boot(self, enc: int, progress: Progress | None) -> None:
        with self._txn() as txn:
            txn.state.sides[enc].os = PartnerState.BIOS_POST
        self._elapse(POST_S, f"enclosure {enc}: BIOS POST", progress, chunks=4)
        with self._txn() as txn:
            txn.state.sides[enc].os = PartnerState.OS_BOOTING
        self._elapse(BOOT_S, f"enclosure {enc}: OS booting", progress, chunks=4)
        with self._txn() as txn:
            st = txn.state
            side = st.sides[enc]
            side.os = PartnerState.OS_UP
            side.running = _automatic(st, enc)
            side.reboot_pending = False
            home = None
            if st.split and st.production is not None:
                home = 1 - st.production if st.merged else st.production
            if st.apps_on is None and enc == home:
                txn.apps_started(enc)  # the applications' services start at boot
                txn.event("workload", f"applications restarted on enclosure {enc}")

    # --- Active Upgrade requests -----------------------------------------------

    def stage(self, label: str, digest: str) -> None:
        st = self.status()
        if st.staged.get(label) == digest:
            return
        if st.split:
            raise TransitionError(
                f"cannot stage {label} while split: the Upgrade side has no network",
                "stage every package before the split (abort, then start again)",
            )
        self._elapse(STAGE_S, f"stage {label}", None, chunks=1)
        with self._txn() as txn:
            txn.state.staged[label] = digest

    def split(self, *, critical: Sequence[str], upgrade_ip: str,
              progress: Progress | None = None) -> None:
        st = self.status()
        if st.split:
            return  # already done: resumable
        if not st.duplex:
            raise StepFailedError("the system is not duplex", "repair it first",
                                  step="split", reason="not duplex")
        self._fire("split")
        self._refuse_service("split", "service-stop-refused", critical)
        self._elapse(SPLIT_S, "split", progress, chunks=5)
        # looked at last, just before the mirrors are disabled: a disk that failed since
        # the readiness check would leave a side with no current copy of its data
        unmirrored = [m for m in self.status().mirrors.values()
                      if m.state is not MirrorState.MIRRORED
                      or not all(member.healthy for member in m.members.values())]
        if unmirrored:
            names = ", ".join(f"{m.name} ({m.state.value})" for m in unmirrored)
            raise StepFailedError(
                f"RDR mirror {names} is not fully mirrored: splitting now would leave a "
                "disk with no current copy on one side",
                "replace the failed disk (ftkit sim repair) and let RDR resync, then Retry; "
                "or Abort", step="split", reason=f"{unmirrored[0].name} not mirrored")
        with self._txn() as txn:
            st = txn.state
            prod = next(m.enclosure for m in st.modules.values() if m.primary)
            up = 1 - prod
            st.split, st.production, st.critical = True, prod, list(critical)
            st.apps_on, st.apps_duplex = prod, False
            for mirror in st.mirrors.values():
                mirror.state, mirror.source, mirror.progress = MirrorState.DISABLED, None, 1.0
            for disk in st.external.values():
                disk.hbas[up] = False
            boot = st.boot_disk().members[up]
            st.phase = ""
            st.saved_startup = {
                name: boot.startup.get(name, StartupType.AUTOMATIC) for name in critical
            }
            for name in critical:
                boot.startup[name] = StartupType.DISABLED
            st.sides[prod].role = SideRole.PRODUCTION
            upgrade = st.sides[up]
            upgrade.role, upgrade.isolated, upgrade.address = SideRole.UPGRADE, True, upgrade_ip
            upgrade.running = [s for s in upgrade.running if s not in critical]
            txn.event("active-upgrade", f"split: Production side {prod}, Upgrade side {up}")

    def _refuse_service(self, point: str, fault: str, critical: Sequence[str]) -> None:
        with self._txn() as txn:
            record = self._take(txn, point, fault)
        if record is not None:
            name = record.get("target") or critical[0]
            verb = "stop" if fault == "service-stop-refused" else "start"
            raise StepFailedError(
                f"service {name} refused to {verb}",
                f"see why {name} will not {verb}, then Retry (or Abort)",
                step=point, reason=f"{name} refused to {verb}",
            )

    def _upgrade_enclosure(self) -> int:
        st = self.status()
        if not st.split or st.production is None:
            raise TransitionError("the system is not split", "split it first")
        return 1 - st.production

    def install(self, package: Mapping[str, Any], *, progress: Progress | None = None) -> None:
        up = self._upgrade_enclosure()
        st = self.status()
        name, version = str(package["name"]), str(package["version"])
        if st.merged:
            raise TransitionError("the system is merged", "install before PrepareMerge")
        if st.boot_disk().members[up].software.get(name) == version:
            return  # installed already
        if st.sides[up].os is not PartnerState.OS_UP:
            raise StepFailedError(
                f"the Upgrade side is {st.sides[up].os.value}", "reboot it, then Retry",
                step="install", reason="Upgrade side not up")
        self._fire("install")
        with self._txn() as txn:
            record = self._take(txn, "install", "installer-fail", "installer-hang")
        minutes = float(package.get("duration_min", 10.0))
        if record is not None and record["name"] == "installer-hang":
            timeout = float(package.get("timeout_min") or minutes * 3) * 60
            self._elapse(timeout, f"install {name}", progress)
            raise ActionTimeoutError(
                f"installer of {name} {version} hung past its {timeout / 60:.0f} min timeout",
                "Retry runs it again; Abort returns to the original software",
                step="install", reason="installer timed out")
        self._elapse(minutes * 60 * (0.3 if record else 1.0), f"install {name}", progress)
        if record is not None:
            raise StepFailedError(
                f"installer of {name} {version} exited with code 1603",
                "read the installer log on the Upgrade side, then Retry or Abort",
                step="install", reason="installer exit code 1603")
        with self._txn() as txn:
            for mirror in txn.state.mirrors.values():
                if mirror.role is DiskRole.SYSTEM:
                    mirror.members[up].software[name] = version
            if package.get("needs_reboot"):
                txn.state.sides[up].reboot_pending = True
            txn.event("installer", f"{name} {version} installed on the Upgrade side")

    def reboot_upgrade_side(self, *, progress: Progress | None = None) -> None:
        up = self._upgrade_enclosure()
        self._fire("reboot")
        self._shutdown(up, "reboot", progress, reboot=True)
        self._hang_or(up, "reboot", "hang-post", PartnerState.BIOS_POST,
                      PartnerState.HUNG_BIOS_POST, POST_S, progress)
        self._hang_or(up, "reboot", "hang-boot", PartnerState.OS_BOOTING,
                      PartnerState.HUNG_OS_BOOTING, BOOT_S, progress)
        with self._txn() as txn:
            side = txn.state.sides[up]
            side.os, side.reboot_pending = PartnerState.OS_UP, False
            side.running = _automatic(txn.state, up)

    def _shutdown(self, enc: int, point: str, progress: Progress | None,
                  *, reboot: bool) -> None:
        state = PartnerState.OS_REBOOTING if reboot else PartnerState.OS_SHUTTING_DOWN
        hung = PartnerState.HUNG_OS_REBOOTING if reboot else PartnerState.HUNG_OS_SHUTTING_DOWN
        self._hang_or(enc, point, "hang-shutdown", state, hung, SHUTDOWN_S, progress)
        with self._txn() as txn:
            side = txn.state.sides[enc]
            side.running = []
            side.os = PartnerState.DC_ON if reboot else PartnerState.OS_SHUT_DOWN

    def _hang_or(self, enc: int, point: str, fault: str, state: PartnerState,
                 hung: PartnerState, seconds: float, progress: Progress | None) -> None:
        with self._txn() as txn:
            txn.state.sides[enc].os = state
            record = self._take(txn, point, fault)
        self._elapse(seconds * (5 if record else 1), f"enclosure {enc}: {state.value}",
                     progress, chunks=4)
        if record is not None:
            with self._txn() as txn:
                txn.state.sides[enc].os = hung
            raise ActionTimeoutError(
                f"enclosure {enc} is {hung.value}",
                "Retry power-cycles it; Abort returns to the original software",
                step=point, reason=hung.value)

    def merge(self, *, critical: Sequence[str], progress: Progress | None = None) -> None:
        st = self.status()
        if st.merged and st.phase == "":
            return
        up = self._upgrade_enclosure()
        prod = 1 - up
        if st.sides[up].os is not PartnerState.OS_UP and not st.merged:
            raise StepFailedError(f"the Upgrade side is {st.sides[up].os.value}",
                                  "reboot it, then Retry", step="merge",
                                  reason="Upgrade side not up")
        if st.phase == "":
            self._fire("merge")
            self._refuse_service("merge", "service-stop-refused", critical)
            stop_s = max((st.services[c].stop_s for c in critical if c in st.services),
                         default=5.0)
            self._elapse(stop_s, "stop applications on the Production side", progress, chunks=2)
            with self._txn() as txn:
                txn.apps_stopped()
                side = txn.state.sides[prod]
                side.running = [s for s in side.running if s not in critical]
                txn.state.phase = "merge:stopped"
                txn.event("active-upgrade", "merge: applications stopped on Production side")
        if self.status().phase == "merge:stopped":
            self._elapse(FLUSH_S + HANDOVER_S, "flush and hand over data disks", progress,
                         chunks=2)
            with self._txn() as txn:
                st = txn.state
                for disk in st.external.values():
                    disk.hbas[up] = True
                upgrade = st.sides[up]
                upgrade.isolated, upgrade.address = False, ""
                boot = st.boot_disk().members[up]
                boot.startup.update(st.saved_startup)
                st.phase = "merge:handed-over"
        if self.status().phase == "merge:handed-over":
            self._refuse_service("merge", "service-start-refused", critical)
            st = self.status()
            start_s = max((st.services[c].start_s for c in critical if c in st.services),
                          default=5.0)
            self._elapse(start_s, "start applications on the Upgrade side", progress, chunks=2)
            with self._txn() as txn:
                st = txn.state
                st.sides[up].running = _automatic(st, up)
                st.merged, st.phase = True, "merge:old-side-down"
                txn.apps_started(up)
                txn.event("active-upgrade", f"merge: applications running on enclosure {up}")
        if self.status().phase == "merge:old-side-down":
            # the original side stays shut down, its system disk kept for an abort (a
            # failed one is down already: its partner state stays as it is)
            if self.status().enclosure_up(prod):
                self._shutdown(prod, "merge", progress, reboot=False)
            with self._txn() as txn:
                txn.state.phase = ""

    def backup_event_logs(self, names: Sequence[str]) -> dict[str, list[str]]:
        st = self.status()
        prod = st.production if st.production is not None else 0
        logs = st.boot_disk().members[prod].event_logs
        missing = [n for n in names if n not in logs]
        if missing:
            raise StepFailedError(f"no event log named {', '.join(missing)}",
                                  f"name one of: {', '.join(logs)}", step="backup",
                                  reason="unknown event log")
        return {n: list(logs[n]) for n in names}

    def commit(self, *, progress: Progress | None = None) -> None:
        st = self.status()
        if not st.merged and st.phase != "commit:resyncing":
            if not st.split and st.phase == "":
                return  # committed already, or nothing to commit
            raise TransitionError("commit needs a merged system", "merge first")
        up = self._upgrade_enclosure() if st.split else None
        if st.phase != "commit:resyncing":
            self._fire("commit")
            with self._txn() as txn:
                st = txn.state
                assert up is not None
                prod = 1 - up
                for mirror in st.mirrors.values():
                    source = up if mirror.role is DiskRole.SYSTEM else prod
                    mirror.state, mirror.source, mirror.progress = (
                        MirrorState.RESYNCING, source, 0.0)
                for side in st.sides.values():
                    side.role, side.isolated = SideRole.DUPLEX, False
                st.sides[prod].os = PartnerState.OS_UP
                st.sides[prod].running = list(st.sides[up].running)
                st.split, st.merged, st.production = False, False, None
                st.apps_duplex = True
                st.phase = "commit:resyncing"
                txn.event("active-upgrade", "commit: RDR resync of the old side started")
        self._resync("commit", progress)

    def _resync(self, point: str, progress: Progress | None) -> None:
        """Wait for every resyncing mirror to finish; a resync-fail restarts one."""
        st, sim = self.store.read()
        # mirrors resync side by side (Txn.advance moves each at the full rate): the
        # longest one sets the wait, not their sum
        total = max((m.size_gb * 1024 / sim.resync_mb_s * (1 - m.progress)
                     for m in st.mirrors.values() if m.state is MirrorState.RESYNCING),
                    default=0.0)
        with self._txn() as txn:
            record = self._take(txn, point, "resync-fail")
            if record is not None:
                failing = next((m for m in txn.state.mirrors.values()
                                if m.state is MirrorState.RESYNCING), None)
        if record is not None:
            self._elapse(total / 2, f"{point}: RDR resync", progress)
            with self._txn() as txn:
                if failing is not None:
                    txn.state.mirrors[failing.name].progress = 0.0
            raise StepFailedError(
                "RDR resync failed part way", "Retry restarts the resync from the start",
                step=point, reason="resync failed")
        if total > 0:
            self._elapse(total * 1.0001, f"{point}: RDR resync", progress, chunks=50)
        with self._txn() as txn:
            for mirror in txn.state.mirrors.values():
                if mirror.state is MirrorState.RESYNCING and mirror.progress >= 0.9999:
                    finish_resync(mirror)

    def abort(self, *, progress: Progress | None = None) -> None:
        st = self.status()
        if st.phase == "commit:resyncing":
            raise TransitionError("commit has started: abort is refused",
                                  "let the commit finish, then Finish")
        if not st.split and not st.phase.startswith("abort"):
            return  # nothing to abort, or done already
        prod = st.production if st.production is not None else 0
        up = 1 - prod
        if st.split and not st.enclosure_up(prod):
            raise StepFailedError(
                f"the Production side (enclosure {prod}) is down",
                "repair it first: its data disks hold the only up-to-date copy",
                step="abort", reason="Production side down")
        after_merge = st.merged or st.phase.startswith("merge:")
        self._fire("abort")
        if st.phase == "" or st.phase.startswith("merge:"):
            with self._txn() as txn:
                if txn.state.apps_on == up:
                    txn.apps_stopped()
                txn.state.phase = "abort:1-down" if after_merge else "abort:1"
        if self.status().phase.startswith("abort:1"):
            if st.enclosure_up(up) and self.status().sides[up].os is not PartnerState.OS_SHUT_DOWN:
                self._shutdown(up, "abort", progress, reboot=False)
            with self._txn() as txn:
                txn.state.phase = ("abort:2-restart" if txn.state.phase == "abort:1-down"
                                   else "abort:3")
        if self.status().phase == "abort:2-restart":
            if self.status().sides[prod].os is not PartnerState.OS_UP:
                self._hang_or(prod, "abort", "hang-post", PartnerState.BIOS_POST,
                              PartnerState.HUNG_BIOS_POST, POST_S, progress)
                self._hang_or(prod, "abort", "hang-boot", PartnerState.OS_BOOTING,
                              PartnerState.HUNG_OS_BOOTING, BOOT_S, progress)
                with self._txn() as txn:
                    txn.state.sides[prod].os = PartnerState.OS_UP
            self._refuse_service("abort", "service-start-refused", st.critical or ["service"])
            start_s = max((st.services[c].start_s for c in st.critical if c in st.services),
                          default=5.0)
            self._elapse(start_s, "start applications on the original side", progress, chunks=2)
            with self._txn() as txn:
                txn.state.sides[prod].running = _automatic(txn.state, prod)
                txn.apps_started(prod)
                txn.state.phase = "abort:3"
        if self.status().phase == "abort:3":
            with self._txn() as txn:
                st = txn.state
                for disk in st.external.values():
                    disk.hbas[up] = True
                resync = st.enclosure_up(up)
                for mirror in st.mirrors.values():
                    if mirror.members[up].healthy and resync:
                        mirror.state, mirror.source, mirror.progress = (
                            MirrorState.RESYNCING, prod, 0.0)
                    else:
                        mirror.state, mirror.source = MirrorState.BROKEN, None
                for side in st.sides.values():
                    side.role, side.isolated, side.address = SideRole.DUPLEX, False, ""
                if resync:
                    st.sides[up].os = PartnerState.OS_UP
                    st.sides[up].running = _automatic(st, prod)
                st.split, st.merged, st.production = False, False, None
                st.apps_duplex = resync
                st.phase = "abort:resyncing"
                txn.event("active-upgrade", "abort: Upgrade side resyncing from original side")
        if self.status().phase == "abort:resyncing":
            self._resync("abort", progress)

    def finish(self) -> None:
        st = self.status()
        if st.split:
            raise TransitionError("the system is still split", "commit or abort first")
        busy = [m.name for m in st.mirrors.values() if m.state is MirrorState.RESYNCING]
        if busy:
            raise TransitionError(f"RDR resync still running on {', '.join(busy)}",
                                  "wait for it (Retry the commit or abort), then Finish")
        self._fire("finish")
        with self._txn() as txn:
            txn.state.phase = ""
            txn.state.staged = {}
            txn.state.critical = []
            txn.state.saved_startup = {}
            txn.event("active-upgrade", "finish: back to Idle")

    # --- custom actions ----------------------------------------------------------

    def run_custom_action(self, path: str, *, args: Sequence[str], env: Mapping[str, str],
                          timeout_s: float, request: str, side: str) -> ActionResult:
        """Run the executable for real here; an armed action fault overrides it."""
        with self._txn() as txn:
            record = self._take(txn, "action", "action-fail", "action-timeout")
        if record is not None and record.get("target") not in ("", None, Path(path).name):
            record = None
        if record is not None and record["name"] == "action-timeout":
            return ActionResult(-9, "", f"killed after {timeout_s:.0f} s (injected)",
                                timeout_s, timed_out=True)
        started = time.monotonic()
        try:
            done = subprocess.run(
                [path, *args], env={**os.environ, **env}, capture_output=True, text=True,
                timeout=timeout_s, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return ActionResult(-9, _text(exc.stdout), _text(exc.stderr),
                                time.monotonic() - started, timed_out=True)
        except OSError as exc:
            return ActionResult(127, "", f"cannot run {path}: {exc.strerror}",
                                time.monotonic() - started)
        code = 1 if record is not None else done.returncode
        return ActionResult(code, done.stdout, done.stderr + (
            "injected failure\n" if record is not None else ""), time.monotonic() - started)


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _automatic(st: SystemState, enc: int) -> list[str]:
    boot = st.boot_disk().members[enc]
    return [s for s, t in boot.startup.items()
            if t is StartupType.AUTOMATIC and st.services.get(s) and st.services[s].exists]


def _count(ranges: list[list[int]], upto: int) -> int:
    return sum(max(0, min(b, upto) - a + 1) for a, b in ranges)
