"""The simulator driver: a digital twin of a duplexed NEC Express5800/ft server.

It does to the twin what the vendor's Active Upgrade software does to the machine.
Every request is resumable: a multi-part request (ExecuteMerge, Commit, Abort) runs the
parts :mod:`ftkit.sim.parts` declares for it, and the twin keeps a marker of the next
one, transaction by transaction, so calling it again after a fault or a killed process
carries on instead of starting over.  Faults fire at the points :mod:`ftkit.sim.faults`
names; time passes on a virtual clock (``time_scale`` 0 = instant, 1 = real time) while
the workload acknowledges transactions into the ledger (:mod:`ftkit.sim.twin`).
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ftkit.drivers import ActionResult, Outage, Progress, run_executable
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
    PartnerState,
    Request,
    SideRole,
    StartupType,
    SystemState,
)
from ftkit.sim import faults
from ftkit.sim.parts import AbortPart, CommitPart, Marker, MergePart, todo
from ftkit.sim.twin import (
    BOOT_S,
    POST_S,
    SHUTDOWN_S,
    SimSettings,
    TwinStore,
    Txn,
    automatic,
    build_state,
    load_scenario,
)

__all__ = ["NAME_RULE", "SimDriver", "create_system", "list_systems", "open_sim", "state_dir_for",
           "system_path"]

# Realistic durations in simulated seconds (boot and shutdown: see ftkit.sim.twin).
SPLIT_S = 45.0
FLUSH_S = 4.0
HANDOVER_S = 6.0
STAGE_S = 20.0
NAME_RULE = "[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_NAME = re.compile(NAME_RULE)


def system_path(rest: str) -> Path:
    """The twin file a ``sim://`` target names: ``sim://NAME`` (NAME matches
    :data:`NAME_RULE`) is ``$FTKIT_HOME/systems/NAME.db``; ``sim:///abs/path.db`` is that
    file.  Anything else is a one-line TargetError naming the rule (read-only)."""
    _refuse_control_characters(rest)
    if rest.startswith("/"):
        path = Path(rest)
        if path.suffix != ".db" or ".." in path.parts or not _NAME.fullmatch(path.stem):
            raise TargetError(
                f"malformed simulator path {rest!r}",
                f"an absolute path names a .db file, no '..' in it, its name {NAME_RULE} "
                "(sim:///abs/path/demo.db)")
        return path
    if not _NAME.fullmatch(rest):
        raise TargetError(
            f"malformed simulator name {rest!r}",
            f"a NAME is {NAME_RULE}: a letter or digit, then up to 63 letters, digits, "
            "'.', '_' or '-' (sim://demo); or sim:///abs/path/demo.db")
    return ftkit_home() / "systems" / f"{rest}.db"


def state_dir_for(twin: Path) -> Path:
    """The folder beside the twin file TWIN (``NAME.db`` → ``NAME.ftkit``) where ftkit keeps
    that system's journal and controller lock, whichever ``$FTKIT_HOME`` names it
    (read-only; ``sim list`` sees no ``.db`` in it)."""
    return twin.with_suffix(".ftkit")


def _refuse_control_characters(text: str) -> None:
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        raise TargetError(f"malformed simulator target {text!r}: it holds a control character",
                          f"write sim://NAME (NAME is {NAME_RULE}) or sim:///abs/path/NAME.db")


def open_sim(target: str, rest: str) -> SimDriver:
    """The driver of an existing twin (the ``sim`` scheme's factory)."""
    _refuse_control_characters(target)  # e.g. a trailing newline the scheme match dropped
    return SimDriver(target, TwinStore(system_path(rest)))


def create_system(target: str, *, scenario: str = "demo", seed: int = 0,
                  time_scale: float = 0.0, epoch: datetime | None = None) -> SimDriver:
    """Create a simulated system from a scenario, whole or not at all, with a new system
    id; refuses to overwrite one (:class:`~ftkit.sim.twin.SystemExistsError`, also when
    another process creates it at the same moment)."""
    from ftkit.drivers import split_target

    _refuse_control_characters(target)
    scheme, rest = split_target(target)
    if scheme != "sim":
        raise TargetError(f"{target!r} is not a simulator target", "write sim://NAME")
    path = system_path(rest)
    from ftkit.preflight import check_value

    check_value("time_scale", time_scale)  # finite, 0 to 1000: before anything is created
    data = load_scenario(scenario)
    start = (epoch or datetime.now(UTC).replace(microsecond=0)).isoformat()
    state = build_state(path.stem, data, epoch=start, system_id=str(uuid.uuid4()))
    sim = SimSettings(
        seed=seed,
        time_scale=time_scale,
        rate_tps=float(data.get("rate_tps", 5.0)),
        resync_mb_s=float(data.get("resync_mb_s", 250.0)),
        scenario=scenario,
    )
    return SimDriver(target, TwinStore.create(path, state, sim))


def list_systems() -> list[str]:
    """Names of the simulated systems under ``$FTKIT_HOME`` (read-only)."""
    folder = ftkit_home() / "systems"
    return sorted(p.stem for p in folder.glob("*.db")) if folder.is_dir() else []


class SimDriver:
    """The ``sim://`` driver."""

    def __init__(self, target: str, store: TwinStore) -> None:
        self.target = target
        self.store = store

    def state_dir(self) -> Path:
        """``NAME.ftkit`` beside the twin ``NAME.db`` (:func:`state_dir_for`); read-only."""
        return state_dir_for(self.store.path)

    # --- reading ---------------------------------------------------------

    def status(self) -> SystemState:
        return self.store.read()[0]

    def now(self) -> float:
        """The simulated clock, in seconds (read-only; cheaper than ``status().now``)."""
        return self.store.now()

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

    # --- time and faults ------------------------------------------------------

    def _txn(self) -> AbstractContextManager[Txn]:
        return self.store.transaction()

    def _elapse(self, seconds: float, label: str, progress: Progress | None,
                *, chunks: int = 20) -> None:
        self.store.elapse(seconds, label, progress, chunks=chunks)

    def wait(self, seconds: float, *, progress: Progress | None = None) -> None:
        self._elapse(seconds, "soak", progress)

    def inject(self, name: str, *, point: str | None = None, side: str | None = None,
               target: str = "", times: int = 1) -> dict[str, Any]:
        """Arm a fault; ``point='now'`` makes it happen at once (one transaction)."""
        return faults.inject(self.store, name, point=point, side=side, target=target,
                             times=times)

    def disarm(self, name: str | None = None) -> list[dict[str, Any]]:
        """Remove the armed faults (all, or those named NAME) before they fire; returns
        them (one transaction)."""
        return faults.disarm(self.store, name)

    def repair(self, what: str = "all", *, progress: Progress | None = None) -> list[str]:
        """Replace broken modules and disks ("all", a module id or a disk name); a
        FaultError when nothing broken matches (and nothing changes)."""
        repaired = faults.repair(self.store, what, progress=progress)
        if not repaired:
            raise FaultError(f"nothing to repair matching {what!r}",
                             "see ftkit status for BROKEN modules and failed disks")
        return repaired

    # --- Active Upgrade requests -----------------------------------------------

    def _marker(self) -> Marker | None:
        return self.store.read()[1].marker

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
        faults.fire(self.store, "split")
        faults.refuse_service(self.store, "split", "service-stop-refused", critical)
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
            txn.sim.marker = None
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
        faults.fire(self.store, "install")
        with self._txn() as txn:
            record = faults.take(txn, "install", "installer-fail", "installer-hang")
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
        faults.fire(self.store, "reboot")
        self._shutdown(up, "reboot", progress, reboot=True)
        self._boot_stages(up, "reboot", progress)
        with self._txn() as txn:
            side = txn.state.sides[up]
            side.os, side.reboot_pending = PartnerState.OS_UP, False
            side.running = automatic(txn.state, up)

    def _boot_stages(self, enc: int, point: str, progress: Progress | None) -> None:
        """BIOS POST then OS boot on ENC; a hang-post or hang-boot armed at POINT hangs it."""
        faults.hang_or(self.store, enc, point, "hang-post", PartnerState.BIOS_POST,
                       PartnerState.HUNG_BIOS_POST, POST_S, progress)
        faults.hang_or(self.store, enc, point, "hang-boot", PartnerState.OS_BOOTING,
                       PartnerState.HUNG_OS_BOOTING, BOOT_S, progress)

    def _shutdown(self, enc: int, point: str, progress: Progress | None,
                  *, reboot: bool) -> None:
        state = PartnerState.OS_REBOOTING if reboot else PartnerState.OS_SHUTTING_DOWN
        hung = PartnerState.HUNG_OS_REBOOTING if reboot else PartnerState.HUNG_OS_SHUTTING_DOWN
        faults.hang_or(self.store, enc, point, "hang-shutdown", state, hung, SHUTDOWN_S,
                       progress)
        with self._txn() as txn:
            side = txn.state.sides[enc]
            side.running = []
            side.os = PartnerState.DC_ON if reboot else PartnerState.OS_SHUT_DOWN

    def merge(self, *, critical: Sequence[str], progress: Progress | None = None) -> None:
        """ExecuteMerge, part by part (:class:`~ftkit.sim.parts.MergePart`)."""
        st = self.status()
        marker = self._marker()
        if st.merged and marker is None:
            return  # merged already
        up = self._upgrade_enclosure()
        prod = 1 - up
        if st.sides[up].os is not PartnerState.OS_UP and not st.merged:
            raise StepFailedError(f"the Upgrade side is {st.sides[up].os.value}",
                                  "reboot it, then Retry", step="merge",
                                  reason="Upgrade side not up")
        if marker is not None and marker.request is not Request.EXECUTE_MERGE:
            return  # an Abort under way has superseded the merge
        parts = todo(marker, Request.EXECUTE_MERGE)
        if MergePart.STOP_APPLICATIONS in parts:
            faults.fire(self.store, "merge")
            faults.refuse_service(self.store, "merge", "service-stop-refused", critical)
            stop_s = max((st.services[c].stop_s for c in critical if c in st.services),
                         default=5.0)
            self._elapse(stop_s, "stop applications on the Production side", progress, chunks=2)
            with self._txn() as txn:
                txn.apps_stopped()
                side = txn.state.sides[prod]
                side.running = [s for s in side.running if s not in critical]
                txn.sim.marker = Marker.after(MergePart.STOP_APPLICATIONS)
                txn.event("active-upgrade", "merge: applications stopped on Production side")
        if MergePart.HAND_OVER in parts:
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
                txn.sim.marker = Marker.after(MergePart.HAND_OVER)
        if MergePart.START_APPLICATIONS in parts:
            faults.refuse_service(self.store, "merge", "service-start-refused", critical)
            st = self.status()
            start_s = max((st.services[c].start_s for c in critical if c in st.services),
                          default=5.0)
            self._elapse(start_s, "start applications on the Upgrade side", progress, chunks=2)
            with self._txn() as txn:
                st = txn.state
                st.sides[up].running = automatic(st, up)
                st.merged = True
                txn.sim.marker = Marker.after(MergePart.START_APPLICATIONS)
                txn.apps_started(up)
                txn.event("active-upgrade", f"merge: applications running on enclosure {up}")
        if MergePart.SHUT_DOWN_ORIGINAL_SIDE in parts:
            # the original side stays shut down, its system disk kept for an abort (a
            # failed one is down already: its partner state stays as it is)
            if self.status().enclosure_up(prod):
                self._shutdown(prod, "merge", progress, reboot=False)
            with self._txn() as txn:
                txn.sim.marker = Marker.after(MergePart.SHUT_DOWN_ORIGINAL_SIDE)

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
        """Commit, part by part (:class:`~ftkit.sim.parts.CommitPart`)."""
        st = self.status()
        marker = self._marker()
        committing = marker is not None and marker.request is Request.COMMIT
        if not st.merged and not committing:
            if not st.split and marker is None:
                self._finish_resync("commit", progress)  # one left running (a lost journal)
                return  # committed already, or nothing to commit
            raise TransitionError("commit needs a merged system", "merge first")
        # (merged with the original side still to shut down: commit supersedes that part)
        parts = todo(marker, Request.COMMIT)
        if CommitPart.REJOIN in parts:
            up = self._upgrade_enclosure()
            faults.fire(self.store, "commit")
            with self._txn() as txn:
                st = txn.state
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
                txn.sim.marker = Marker.after(CommitPart.REJOIN)
                txn.event("active-upgrade", "commit: RDR resync of the old side started")
        faults.resync(self.store, "commit", progress)  # CommitPart.RESYNC, until Finish

    def abort(self, *, progress: Progress | None = None) -> None:
        """Abort, part by part (:class:`~ftkit.sim.parts.AbortPart`)."""
        st = self.status()
        marker = self._marker()
        request = marker.request if marker is not None else None
        if request is Request.COMMIT:
            raise TransitionError("commit has started: abort is refused",
                                  "let the commit finish, then Finish")
        if not st.split and request is not Request.ABORT:
            self._finish_resync("abort", progress)  # one left running (a lost journal)
            return  # nothing to abort, or done already
        prod = st.production if st.production is not None else 0
        up = 1 - prod
        if st.split and not st.enclosure_up(prod):
            raise StepFailedError(
                f"the Production side (enclosure {prod}) is down",
                "repair it first: its data disks hold the only up-to-date copy",
                step="abort", reason="Production side down")
        faults.fire(self.store, "abort")
        parts = todo(marker, Request.ABORT)
        if AbortPart.STOP_APPLICATIONS in parts:
            with self._txn() as txn:
                if txn.state.apps_on == up:
                    txn.apps_stopped()
                txn.sim.marker = Marker.after(AbortPart.STOP_APPLICATIONS)
        if AbortPart.SHUT_DOWN_UPGRADE_SIDE in parts:
            now = self.status()
            if now.enclosure_up(up) and now.sides[up].os is not PartnerState.OS_SHUT_DOWN:
                self._shutdown(up, "abort", progress, reboot=False)
            with self._txn() as txn:
                txn.sim.marker = Marker.after(AbortPart.SHUT_DOWN_UPGRADE_SIDE)
        now = self.status()
        if AbortPart.RESTART_PRODUCTION in parts and (
                now.apps_on != prod or now.sides[prod].os is not PartnerState.OS_UP):
            # after a merge (or part of one) the applications left the Production side
            if now.sides[prod].os is not PartnerState.OS_UP:
                self._boot_stages(prod, "abort", progress)
                with self._txn() as txn:
                    txn.state.sides[prod].os = PartnerState.OS_UP
            faults.refuse_service(self.store, "abort", "service-start-refused",
                                  st.critical or ["service"])
            start_s = max((st.services[c].start_s for c in st.critical if c in st.services),
                          default=5.0)
            self._elapse(start_s, "start applications on the original side", progress, chunks=2)
            with self._txn() as txn:
                txn.state.sides[prod].running = automatic(txn.state, prod)
                txn.apps_started(prod)
                txn.sim.marker = Marker.after(AbortPart.RESTART_PRODUCTION)
        if AbortPart.REJOIN in parts:
            with self._txn() as txn:
                self._rejoin_after_abort(txn, prod, up)
                txn.sim.marker = Marker.after(AbortPart.REJOIN)
                txn.event("active-upgrade", "abort: Upgrade side resyncing from original side")
        faults.resync(self.store, "abort", progress)  # AbortPart.RESYNC, until Finish

    def _finish_resync(self, point: str, progress: Progress | None) -> None:
        """Wait for an RDR resync still running (none: nothing happens, no transaction)."""
        if any(m.state is MirrorState.RESYNCING for m in self.status().mirrors.values()):
            faults.resync(self.store, point, progress)

    @staticmethod
    def _rejoin_after_abort(txn: Txn, prod: int, up: int) -> None:
        st = txn.state
        for disk in st.external.values():
            disk.hbas[up] = True
        resync = st.enclosure_up(up)
        for mirror in st.mirrors.values():
            if mirror.members[up].healthy and resync:
                mirror.state, mirror.source, mirror.progress = MirrorState.RESYNCING, prod, 0.0
            else:
                mirror.state, mirror.source = MirrorState.BROKEN, None
        for side in st.sides.values():
            side.role, side.isolated, side.address = SideRole.DUPLEX, False, ""
        if resync:
            st.sides[up].os = PartnerState.OS_UP
            st.sides[up].running = automatic(st, prod)
        st.split, st.merged, st.production = False, False, None
        st.apps_duplex = resync

    def finish(self) -> None:
        st = self.status()
        if st.split:
            raise TransitionError("the system is still split", "commit or abort first")
        busy = [m.name for m in st.mirrors.values() if m.state is MirrorState.RESYNCING]
        if busy:
            raise TransitionError(f"RDR resync still running on {', '.join(busy)}",
                                  "wait for it (Retry the commit or abort), then Finish")
        faults.fire(self.store, "finish")
        with self._txn() as txn:
            txn.sim.marker = None
            txn.state.staged = {}
            txn.state.saved_startup = {}  # the critical services stay critical
            txn.event("active-upgrade", "finish: back to Idle")

    # --- custom actions ----------------------------------------------------------

    def run_custom_action(self, path: str, *, args: Sequence[str], env: Mapping[str, str],
                          timeout_s: float, request: str, side: str) -> ActionResult:
        """Run the executable for real here; an armed action fault overrides it."""
        record = faults.take_action_fault(self.store, Path(path).name)
        if record is not None and record["name"] == "action-timeout":
            return ActionResult(-9, "", f"killed after {timeout_s:.0f} s (injected)",
                                timeout_s, timed_out=True)
        done = run_executable([path, *args], env=env, timeout_s=timeout_s)
        if record is None or done.timed_out:
            return done
        return ActionResult(1, done.stdout, done.stderr + "injected failure\n",
                            done.duration_s)


def _count(ranges: list[list[int]], upto: int) -> int:
    return sum(max(0, min(b, upto) - a + 1) for a, b in ranges)
