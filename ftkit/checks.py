"""The readiness check of Active Upgrade and the PrepareMerge checks
(docs/DOMAIN.md#readiness-checks).

Every check reads a :class:`~ftkit.model.SystemState` snapshot from ``driver.status()``,
the upgrade configuration and the update packages, and says pass, warn or fail with a
detail that names the module, disk, team or service and its numbers, and a remedy.
Nothing here changes the system: the checks are read-only and may run any number of
times while the system is Idle::

    results = run_checks(driver, config, packages)
    if failed(results):
        ...
    readiness(driver, config, packages)          # the same as a pandas DataFrame

A check is a function of one :class:`CheckContext` (the snapshot, configuration,
packages and flags) that notes problems in its :class:`Findings` and returns what a pass
says; its id and title are given once, to :func:`check`, which declares it in order. A
driver for real hardware gets them all for free, since they read only the driver-agnostic
model. ``in_session=True`` is the
re-check inside PrepareSplit by the session that owns the system; ``stage_pending=True``
says that PrepareSplit will stage the packages itself, so unstaged packages only warn.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from ftkit.config import CustomAction, UpgradeConfig
from ftkit.drivers import Driver
from ftkit.model import (
    DiskRole,
    Mirror,
    MirrorState,
    Module,
    ModuleState,
    PartnerState,
    SystemState,
    Team,
)
from ftkit.packages import UpdatePackage, support_problems

if TYPE_CHECKING:
    import pandas

__all__ = [
    "COLUMNS",
    "Check",
    "CheckContext",
    "CheckFunction",
    "CheckResult",
    "CheckStatus",
    "Findings",
    "check",
    "checks_frame",
    "failed",
    "merge_checks",
    "readiness",
    "registry",
    "run_checks",
    "summary",
]

#: Columns of :func:`readiness`'s DataFrame, in order.
COLUMNS: tuple[str, ...] = ("check", "title", "status", "detail", "remedy")

READINESS = "readiness"
MERGE = "merge"


class CheckStatus(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check: ``remedy`` is empty on pass."""

    check: str  # stable id, e.g. "system-duplex"
    title: str
    status: CheckStatus
    detail: str
    remedy: str = ""

    @property
    def ok(self) -> bool:
        """True unless the check failed (a warning does not stop the upgrade)."""
        return self.status is not CheckStatus.FAIL


@dataclass(frozen=True)
class CheckContext:
    """What every check reads (read-only): one ``driver.status()`` snapshot, the
    configuration, the update packages, and the flags of the run.

    ``in_session`` is the re-check inside PrepareSplit by the session that owns the
    system; ``stage_pending`` says PrepareSplit will stage the packages itself.
    """

    state: SystemState
    config: UpgradeConfig
    packages: Sequence[UpdatePackage]
    in_session: bool = False
    stage_pending: bool = False
    target: str = ""  # the system's target (whether a change window is required)


@dataclass
class Findings:
    """Problems found by one check; the worst one sets the status."""

    fails: list[tuple[str, str]] = field(default_factory=list)
    warns: list[tuple[str, str]] = field(default_factory=list)

    def fail(self, detail: str, remedy: str) -> None:
        """Note a problem that stops the upgrade."""
        self.fails.append((detail, remedy))

    def warn(self, detail: str, remedy: str) -> None:
        """Note a problem that does not stop the upgrade."""
        self.warns.append((detail, remedy))

    def verdict(self, check_id: str, title: str, ok_detail: str) -> CheckResult:
        """One result: pass with ``ok_detail``, else every problem's detail and remedy."""
        found = self.fails + self.warns
        if not found:
            return CheckResult(check_id, title, CheckStatus.PASS, ok_detail, "")
        status = CheckStatus.FAIL if self.fails else CheckStatus.WARN
        detail = "; ".join(d for d, _ in found)
        remedy = "; ".join(dict.fromkeys(r for _, r in found if r))
        return CheckResult(check_id, title, status, detail, remedy)


CheckFunction = Callable[[CheckContext, Findings], str]
"""``fn(ctx, found) -> detail``: notes problems in ``found`` and returns what a pass says."""


@dataclass(frozen=True)
class Check:
    """One registered check: its stable id, title, the stages it runs in, the function."""

    id: str
    title: str
    stages: tuple[str, ...]
    function: CheckFunction

    def run(self, ctx: CheckContext) -> CheckResult:
        """The check's verdict on ``ctx``; a check that raises fails, naming the error."""
        found = Findings()
        try:
            ok_detail = self.function(ctx, found)
        except Exception as exc:  # one broken check must not hide the others
            return CheckResult(
                self.id,
                self.title,
                CheckStatus.FAIL,
                f"the check could not run: {type(exc).__name__}: {exc}",
                "report this to the ftkit maintainers; run the check again after fixing",
            )
        return found.verdict(self.id, self.title, ok_detail)


_REGISTRY: dict[str, Check] = {}
_STAGES: dict[str, list[str]] = {READINESS: [], MERGE: []}


def check(
    check_id: str,
    title: str,
    *,
    stages: Sequence[str] = (READINESS,),
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under a stable id (given here only); checks run in
    declaration order."""

    def register(function: CheckFunction) -> CheckFunction:
        if check_id in _REGISTRY:
            raise ValueError(f"check {check_id!r} is registered twice")
        _REGISTRY[check_id] = Check(check_id, title, tuple(stages), function)
        for stage in stages:
            _STAGES.setdefault(stage, []).append(check_id)
        return function

    return register


def registry(stage: str = READINESS) -> list[Check]:
    """The checks of a stage (``"readiness"`` or ``"merge"``), in the order they run."""
    return [_REGISTRY[check_id] for check_id in _STAGES.get(stage, [])]


def _also(check_id: str, stage: str) -> None:
    """Run an already declared check in one more stage, after that stage's own checks."""
    entry = _REGISTRY[check_id]
    _REGISTRY[check_id] = Check(entry.id, entry.title, (*entry.stages, stage), entry.function)
    _STAGES.setdefault(stage, []).append(check_id)


# --- running them -------------------------------------------------------------------------


def _run(stage: str, ctx: CheckContext) -> list[CheckResult]:
    return [entry.run(ctx) for entry in registry(stage)]


def run_checks(
    driver: Driver,
    config: UpgradeConfig,
    packages: Sequence[UpdatePackage],
    *,
    in_session: bool = False,
    stage_pending: bool = False,
) -> list[CheckResult]:
    """Run the readiness check (docs/DOMAIN.md#readiness-checks) against one
    ``driver.status()`` snapshot.

    Read-only: nothing on the system changes. ``in_session`` is the re-check inside
    PrepareSplit by the session that owns the system; ``stage_pending`` says PrepareSplit
    will stage the packages, so packages not staged yet warn instead of failing.
    """
    ctx = CheckContext(driver.status(), config, packages, in_session, stage_pending,
                       target=getattr(driver, "target", ""))
    return _run(READINESS, ctx)


def merge_checks(
    driver: Driver, config: UpgradeConfig, packages: Sequence[UpdatePackage]
) -> list[CheckResult]:
    """The PrepareMerge checks (docs/DOMAIN.md#preparemerge-checks): the Upgrade side is OS
    Up and not hung, every package is installed at its version on its system disks, no
    reboot is pending and the custom actions are still ready. Read-only."""
    return _run(MERGE, CheckContext(driver.status(), config, packages, in_session=True))


def checks_frame(results: Iterable[CheckResult] | pandas.DataFrame) -> pandas.DataFrame:
    """Check results as a DataFrame with :data:`COLUMNS`, status as its string (``"pass"``,
    ``"warn"``, ``"fail"``); a DataFrame is returned as it is. The one place results
    become a table (the CLI, the session and the widgets all use it). Read-only."""
    import pandas

    if isinstance(results, pandas.DataFrame):
        return results
    rows = [(r.check, r.title, r.status.value, r.detail, r.remedy) for r in results]
    return pandas.DataFrame(rows, columns=list(COLUMNS))


def readiness(
    driver: Driver, config: UpgradeConfig, packages: Sequence[UpdatePackage], **options: bool
) -> pandas.DataFrame:
    """:func:`run_checks` as a DataFrame (:func:`checks_frame`). Read-only."""
    return checks_frame(run_checks(driver, config, packages, **options))


def failed(results: Sequence[CheckResult]) -> list[CheckResult]:
    """The results that failed, in order."""
    return [r for r in results if r.status is CheckStatus.FAIL]


def summary(results: Sequence[CheckResult]) -> str:
    """One line: ``"14 checks: 13 passed, 1 warning, 0 failed"``."""
    counts = {status: sum(r.status is status for r in results) for status in CheckStatus}
    warn = counts[CheckStatus.WARN]
    return (
        f"{len(results)} checks: {counts[CheckStatus.PASS]} passed, "
        f"{warn} warning{'' if warn == 1 else 's'}, {counts[CheckStatus.FAIL]} failed"
    )


# --- helpers of the checks ------------------------------------------------------------------


def _module(mod: Module) -> str:
    kind = "CPU" if mod.kind == "cpu" else "I/O"
    return f"{kind} module {mod.id} (enclosure {mod.enclosure})"


def _pct(progress: float) -> str:
    return f"{progress * 100:.0f} %"


def _names(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "none"


def _running_enclosure(state: SystemState) -> int:
    """The enclosure whose services the applications run on (the primary one if duplex)."""
    if state.apps_on is not None:
        return state.apps_on
    if state.production is not None:
        return state.production
    return next((m.enclosure for m in state.modules.values() if m.primary), 0)


def _system_volumes(state: SystemState, config: UpgradeConfig) -> list[Mirror]:
    """The configured system disks plus every system-role mirror, once each."""
    named = [state.mirrors[n] for n in config.system_disks if n in state.mirrors]
    extra = [m for m in state.mirrors.values() if m.role is DiskRole.SYSTEM and m not in named]
    return named + extra


def _mirror_state(mirror: Mirror, state: SystemState) -> str:
    if mirror.state is MirrorState.BROKEN:
        down = [enc for enc in sorted(mirror.members) if not state.enclosure_up(enc)]
        return f"broken (enclosure {_names([str(e) for e in down])} down)" if down else "broken"
    if mirror.state is MirrorState.RESYNCING:
        source = "" if mirror.source is None else f" from enclosure {mirror.source}"
        return f"resyncing{source}, {_pct(mirror.progress)} done"
    if mirror.state is MirrorState.DISABLED:
        return "disabled (RDR mirroring split)"
    return mirror.state.value


def _upgrade_team(state: SystemState, config: UpgradeConfig) -> Team | None:
    if config.team is not None:
        return state.teams.get(config.team)
    return next(iter(state.teams.values()), None)


# --- the readiness checks, in the order docs/DOMAIN.md#readiness-checks lists them ----------


@check("system-duplex", "System duplex")
def _system_duplex(ctx: CheckContext, found: Findings) -> str:
    state = ctx.state
    if state.split:
        found.fail(
            f"the system is split (Production side enclosure {state.production})",
            "finish or abort the Active Upgrade session first",
        )
    for mod in state.modules.values():
        if mod.state is not ModuleState.ONLINE:
            reason = f": {mod.reason}" if mod.reason else ""
            found.fail(
                f"{_module(mod)} is {mod.state.value}{reason}",
                f"bring {_module(mod)} back ONLINE (replace it if BROKEN) so that the "
                "system is duplex",
            )
    for enc in (0, 1):
        if not any(m.enclosure == enc for m in state.modules.values()):
            found.fail(f"enclosure {enc} has no modules", "install both CPU/IO enclosures")
    for enc, side in sorted(state.sides.items()):
        if side.os is not PartnerState.OS_UP and not state.split:
            found.fail(
                f"enclosure {enc} is {side.os.value}, not OS Up",
                f"power on enclosure {enc} and wait until it is duplex",
            )
    for disk in state.external.values():
        if not disk.healthy:
            found.fail(f"external disk {disk.name} has failed", f"repair {disk.name}")
        lost = [enc for enc, reachable in sorted(disk.hbas.items()) if not reachable]
        for enc in lost:
            found.fail(
                f"external disk {disk.name} is not reachable through the HBA in enclosure {enc}",
                f"check the HBA and cabling of enclosure {enc} to {disk.name}",
            )
    mods = len(state.modules)
    return (
        f"duplex: all {mods} modules ONLINE in both enclosures, both enclosures OS Up, "
        f"{len(state.external)} external disk(s) reachable from both enclosures"
    )


@check("system-disks", "System disks RDR-mirrored")
def _system_disks(ctx: CheckContext, found: Findings) -> str:
    state, config = ctx.state, ctx.config
    ok: list[str] = []
    internal = _names(list(state.mirrors))
    for name in config.system_disks:
        mirror = state.mirrors.get(name)
        if mirror is None:
            if name in state.external:
                found.fail(
                    f"{name} is an external disk: a system disk is an internal RDR mirror",
                    "name internal system mirrors under [disks] system",
                )
            else:
                found.fail(
                    f"system disk {name} not found (internal disks: {internal})",
                    "correct [disks] system in the configuration",
                )
            continue
        if mirror.role is not DiskRole.SYSTEM:
            found.fail(
                f"{name} is a {mirror.role.value} disk, not a system disk",
                f"move {name} to [disks] {mirror.role.value} in the configuration",
            )
            continue
        bad = [enc for enc, m in sorted(mirror.members.items()) if not m.healthy]
        for enc in bad:
            found.fail(
                f"system disk {name}: member in enclosure {enc} has failed",
                f"replace the failed disk of {name} and let RDR resync it",
            )
        if len(mirror.members) < 2 and not bad:
            found.fail(
                f"system disk {name} has {len(mirror.members)} member(s), needs 2",
                f"add a disk in the other enclosure and RDR-mirror {name}",
            )
        if bad:
            continue
        if mirror.state is not MirrorState.MIRRORED or mirror.progress < 1.0:
            found.fail(
                f"system disk {name} is {_mirror_state(mirror, state)}, not fully mirrored",
                f"wait until {name} is mirrored and fully synchronised",
            )
        else:
            ok.append(
                f"{name} ({mirror.size_gb:.0f} GB, {mirror.physical}) mirrored, "
                "both members synchronised"
            )
    for mirror in state.mirrors.values():
        if mirror.role is DiskRole.SYSTEM and mirror.name not in config.system_disks:
            found.warn(
                f"{mirror.name} is a system disk the configuration does not name",
                f"add {mirror.name} to [disks] system if the upgrade may change it",
            )
    return "; ".join(ok) or "no system disks named"


@check("data-disks", "Data disks separate from system volumes")
def _data_disks(ctx: CheckContext, found: Findings) -> str:
    state, config = ctx.state, ctx.config
    ok: list[str] = []
    data_mirrors: list[Mirror] = []
    known = _names([*state.mirrors, *state.external])
    for name in config.data_disks:
        if name in state.external:
            disk = state.external[name]
            if not disk.healthy:
                found.fail(f"external data disk {name} has failed", f"repair {name}")
            else:
                ok.append(f"{name} (external, {disk.size_gb:.0f} GB)")
            continue
        mirror = state.mirrors.get(name)
        if mirror is None:
            found.fail(
                f"data disk {name} not found (disks: {known})",
                "correct [disks] data in the configuration",
            )
            continue
        if mirror.role is not DiskRole.DATA:
            found.fail(
                f"{name} is a {mirror.role.value} disk, not a data disk",
                f"move {name} to [disks] {mirror.role.value} in the configuration",
            )
            continue
        data_mirrors.append(mirror)
        bad = [enc for enc, m in sorted(mirror.members.items()) if not m.healthy]
        for enc in bad:
            found.fail(
                f"data disk {name}: member in enclosure {enc} has failed",
                f"replace the failed disk of {name} and let RDR resync it",
            )
        if mirror.state in (MirrorState.BROKEN, MirrorState.DISABLED) and not bad:
            found.fail(
                f"data disk {name} is {_mirror_state(mirror, state)}",
                f"repair {name} until it is RDR-mirrored again",
            )
        elif not bad:
            ok.append(f"{name} (internal, {mirror.physical})")
    # Any data volume, named or not, sharing a physical disk with a system volume is split
    # along with the system volume: the Production side could not keep it.
    data_mirrors += [
        m for m in state.mirrors.values() if m.role is DiskRole.DATA and m not in data_mirrors
    ]
    system = _system_volumes(state, config)
    for mirror in data_mirrors:
        shared = [s.name for s in system if s.physical == mirror.physical]
        if shared:
            found.fail(
                f"data disk {mirror.name} is on physical disk {mirror.physical} with system "
                f"volume {_names(shared)}",
                f"move the data of {mirror.name} to a volume on its own physical disk",
            )
    if not config.data_disks:
        found.warn(
            "the configuration names no data disks",
            "name the disks holding the applications' persistent data under [disks] data",
        )
    physical = _names(sorted({s.physical for s in system}))
    return f"{_names(ok)}; no data volume on the system volumes' physical disks ({physical})"


@check("ethernet-teams", "Ethernet teams in both enclosures")
def _ethernet_teams(ctx: CheckContext, found: Findings) -> str:
    state = ctx.state
    ok: list[str] = []
    for team in state.teams.values():
        linked = {a.enclosure for a in team.adapters if a.link}
        missing = [enc for enc in (0, 1) if enc not in linked]
        for enc in missing:
            here = [
                f"{a.name} (enclosure {a.enclosure}{'' if a.link else ', no link'})"
                for a in team.adapters
            ]
            found.fail(
                f"team {team.name} has no linked adapter in enclosure {enc} "
                f"(adapters: {_names(here)})",
                f"add a linked adapter of enclosure {enc} to {team.name}, or fix its cabling",
            )
        if not missing:
            ok.append(
                f"{team.name}: "
                + ", ".join(f"{a.name} (enclosure {a.enclosure})" for a in team.adapters if a.link)
            )
    if not state.teams:
        found.fail(
            "no Ethernet team is configured",
            "team an adapter of each enclosure for the production network",
        )
    return "; ".join(ok)


@check("upgrade-ip", "Upgrade-side IP")
def _upgrade_ip(ctx: CheckContext, found: Findings) -> str:
    state, config = ctx.state, ctx.config
    ip = config.upgrade_ip
    team = _upgrade_team(state, config)
    if ip is None:
        found.fail(
            "no upgrade-side IP is configured",
            'set [network] upgrade_ip to a spare address, e.g. upgrade_ip = "192.0.2.50"',
        )
        return ""
    if team is None:
        where = f"team {config.team} not found" if config.team else "no Ethernet team"
        found.fail(
            f"{where} (teams: {_names(list(state.teams))})",
            "name an existing team in [network] team",
        )
        return ""
    network = ipaddress.ip_network(team.network, strict=False)
    if ip not in network:
        found.fail(
            f"{ip} is not on team {team.name}'s network {network}",
            f"choose a spare address in {network}",
        )
    elif network.num_addresses > 2 and ip in (network.network_address, network.broadcast_address):
        found.fail(
            f"{ip} is the network or broadcast address of {network}",
            f"choose a spare host address in {network}",
        )
    users = [t.name for t in state.teams.values() if t.address == str(ip)]
    seen = [t.name for t in state.teams.values() if str(ip) in t.in_use]
    if users:
        found.fail(
            f"{ip} is already the address of team {_names(users)}",
            f"choose a spare, unused address in {network}",
        )
    elif seen:
        found.fail(
            f"{ip} is already in use on the network of team {_names(seen)}",
            f"choose a spare, unused address in {network}",
        )
    return (
        f"{ip} is on team {team.name}'s network {network} and unused "
        f"({len(team.in_use) + 1} addresses in use there)"
    )


@check("dhcp-leases", "DHCP leases")
def _dhcp_leases(ctx: CheckContext, found: Findings) -> str:
    state = ctx.state
    for team in state.teams.values():
        if team.addressing != "dhcp":
            continue
        if team.lease_renewable:
            found.warn(
                f"team {team.name} gets {team.address} by DHCP (lease renewable)",
                f"prefer a static address for {team.name}: a lease that lapses while split "
                "cuts the Production side off the network",
            )
        else:
            found.fail(
                f"team {team.name} gets {team.address} by DHCP and its lease cannot be renewed",
                f"give {team.name} a static address, or fix the DHCP server so the lease renews",
            )
    return "every team has a static address"


@check("critical-services", "Critical services")
def _critical_services(ctx: CheckContext, found: Findings) -> str:
    state, config = ctx.state, ctx.config
    enc = _running_enclosure(state)
    running = state.sides[enc].running if enc in state.sides else []
    for name in config.critical_services:
        service = state.services.get(name)
        if service is None or not service.exists:
            found.fail(
                f"service {name} is not installed",
                f"install {name}, or remove it from critical_services",
            )
            continue
        if name not in running:
            found.fail(
                f"service {name} is not running on enclosure {enc}",
                f"start {name} before the upgrade",
            )
        if not service.stoppable:
            found.fail(
                f"service {name} cannot be stopped",
                f"make {name} stoppable: Active Upgrade stops it on the Upgrade side",
            )
    if not config.critical_services:
        found.warn(
            "the configuration names no critical services",
            "name the application services in critical_services so they are kept "
            "off the Upgrade side while split",
        )
    return (
        f"{_names(list(config.critical_services))} installed, running on enclosure {enc} "
        "and stoppable"
    )


def _action_problem(found: Findings, action: CustomAction) -> None:
    path = Path(action.path)
    where = f"custom action {action.name} ({path})"
    if not path.exists():
        found.fail(f"{where} does not exist", f"install {path} or correct its path")
    elif not path.is_file():
        found.fail(f"{where} is not a file", f"point {action.name} at its executable")
    elif not os.access(path, os.X_OK):
        found.fail(f"{where} is not executable", f"chmod +x {path}")


@check("custom-actions", "Custom actions")
def _custom_actions(ctx: CheckContext, found: Findings) -> str:
    for action in ctx.config.custom_actions:
        _action_problem(found, action)
    names = _names([a.name for a in ctx.config.custom_actions])
    return f"{len(ctx.config.custom_actions)} custom action(s) present and executable: {names}"


@check("module-health", "Modules healthy (MTBF)")
def _module_health(ctx: CheckContext, found: Findings) -> str:
    state = ctx.state
    for mod in state.modules.values():
        if mod.state is ModuleState.BROKEN:
            reason = f": {mod.reason}" if mod.reason else ""
            if "fault count" not in reason:
                reason += f" (fault count {mod.fault_count})"
            found.fail(f"{_module(mod)} is BROKEN{reason}", f"replace {_module(mod)}")
        elif mod.below_mtbf:
            found.fail(
                f"{_module(mod)} has {mod.fault_count} faults, MTBF {mod.mtbf_h:g} h below its "
                f"threshold {mod.mtbf_threshold_h:g} h: it would not be brought back after "
                "another fault",
                f"replace {_module(mod)} or clear its MTBF statistics before the upgrade",
            )
    return f"no module BROKEN, none below its MTBF threshold ({len(state.modules)} modules)"


@check("rdr-resync", "No RDR resync in progress")
def _rdr_resync(ctx: CheckContext, found: Findings) -> str:
    state = ctx.state
    for mirror in state.mirrors.values():
        if mirror.state is MirrorState.RESYNCING:
            found.fail(
                f"{mirror.name} ({mirror.size_gb:.0f} GB) is {_mirror_state(mirror, state)}",
                f"wait until the RDR resync of {mirror.name} completes, then check again",
            )
    return f"all {len(state.mirrors)} internal disks fully synchronised"


@check("no-session", "No Active Upgrade session in progress")
def _no_session(ctx: CheckContext, found: Findings) -> str:
    state, in_session = ctx.state, ctx.in_session
    busy = state.split or state.merged or state.unfinished is not None
    if busy and not in_session:
        what = []
        if state.split:
            what.append(f"system split, Production side enclosure {state.production}")
        if state.merged:
            what.append("merged")
        if state.unfinished is not None:
            what.append(f"{state.unfinished.value} unfinished")
        found.fail(
            f"a session is in progress ({'; '.join(what)})",
            "resume it (active-upgrade runbook) or abort it (abort runbook), then Finish; "
            "if its journal was lost, run ftkit recover TARGET first",
        )
    ok = "checked by the session that owns the system" if in_session else "the system is Idle"
    return ok


@check("packages-staged", "Update packages staged")
def _packages_staged(ctx: CheckContext, found: Findings) -> str:
    state, packages, stage_pending = ctx.state, ctx.packages, ctx.stage_pending
    for pkg in packages:
        staged = state.staged.get(pkg.label)
        if staged == pkg.digest:
            continue
        if staged is None:
            problem = f"{pkg.label} is not staged on the system disk"
        else:
            problem = (
                f"{pkg.label} staged copy differs from its manifest "
                f"(staged {staged[:12]}, manifest {pkg.digest[:12]})"
            )
        if stage_pending:
            found.warn(
                f"{problem}: will be staged at PrepareSplit",
                "nothing to do: PrepareSplit stages it before the split",
            )
        else:
            found.fail(
                problem, "stage the packages before the split: the Upgrade side has no network"
            )
    staged_ok = [p.label for p in packages if state.staged.get(p.label) == p.digest]
    return f"staged: {_names(staged_ok)}" if packages else "no update packages given"


@check("packages-supported", "Update packages supported")
def _packages_supported(ctx: CheckContext, found: Findings) -> str:
    packages = ctx.packages
    for pkg in packages:
        for problem in support_problems(pkg):
            found.fail(
                f"{problem.detail} (rule {problem.rule_id})", f"{problem.package}: {problem.remedy}"
            )
    kinds = ", ".join(f"{p.label} ({p.kind})" for p in packages)
    return f"supported: {kinds}" if packages else "no update packages given"


@check("packages-new", "Update packages not installed yet")
def _packages_new(ctx: CheckContext, found: Findings) -> str:
    state, config, packages = ctx.state, ctx.config, ctx.packages
    ok: list[str] = []
    disks = [state.mirrors[n] for n in config.system_disks if n in state.mirrors]
    for pkg in packages:
        installed = {
            member.software.get(pkg.name) for disk in disks for member in disk.members.values()
        }
        if disks and installed == {pkg.version}:
            found.warn(
                f"{pkg.name} {pkg.version} is already installed on "
                f"{_names([d.name for d in disks])}: nothing to do",
                f"leave {pkg.label} out of this upgrade",
            )
        else:
            before = _names(sorted(v for v in installed if v is not None))
            ok.append(
                f"{pkg.name} {before if before != 'none' else 'not installed'} → {pkg.version}"
            )
    if not packages:
        found.warn(
            "no update packages given: the upgrade would install nothing",
            "name the update package manifests to install",
        )
    return "; ".join(ok)


# --- the PrepareMerge checks ----------------------------------------------------------------


def _upgrade_enclosure(state: SystemState, found: Findings) -> int | None:
    """The Upgrade side's enclosure; ``None`` (with the failure noted) if not split."""
    if state.split and state.production is not None:
        return 1 - state.production
    found.fail(
        "the system is not split: there is no Upgrade side",
        "PrepareMerge follows ExecuteSplit; run the split first",
    )
    return None


@check("upgrade-side", "Upgrade side up", stages=(MERGE,))
def _upgrade_side(ctx: CheckContext, found: Findings) -> str:
    state = ctx.state
    up = _upgrade_enclosure(state, found)
    if up is None:
        return ""
    partner = state.sides[up].os
    if partner.hung:
        found.fail(
            f"the Upgrade side (enclosure {up}) is {partner.value}",
            "Retry power-cycles it; Abort returns to the original software",
        )
    elif partner is not PartnerState.OS_UP:
        found.fail(
            f"the Upgrade side (enclosure {up}) is {partner.value}, not OS Up",
            "reboot the Upgrade side and wait until it is OS Up",
        )
    for mod in state.modules.values():
        if mod.enclosure == up and mod.state is not ModuleState.ONLINE:
            found.fail(f"{_module(mod)} is {mod.state.value}", f"repair {_module(mod)}")
    return f"the Upgrade side (enclosure {up}) is OS Up"


@check("packages-installed", "Update packages installed", stages=(MERGE,))
def _packages_installed(ctx: CheckContext, found: Findings) -> str:
    state, config, packages = ctx.state, ctx.config, ctx.packages
    up = _upgrade_enclosure(state, found)
    if up is None:
        return ""
    disks = [state.mirrors[n] for n in config.system_disks if n in state.mirrors]
    for pkg in packages:
        for disk in disks:
            member = disk.members.get(up)
            have = None if member is None else member.software.get(pkg.name)
            if have != pkg.version:
                found.fail(
                    f"{pkg.name} is {have or 'not installed'} on {disk.name} of the "
                    f"Upgrade side (enclosure {up}), expected {pkg.version}",
                    f"install {pkg.label} on the Upgrade side (Retry), or Abort",
                )
    done = ", ".join(p.label for p in packages) or "no packages"
    return f"{done} installed on the Upgrade side (enclosure {up})"


@check("reboot-pending", "No reboot pending", stages=(MERGE,))
def _reboot_pending(ctx: CheckContext, found: Findings) -> str:
    state, packages = ctx.state, ctx.packages
    up = _upgrade_enclosure(state, found)
    if up is None:
        return ""
    if state.sides[up].reboot_pending:
        needing = _names([p.label for p in packages if p.needs_reboot])
        found.fail(
            f"the Upgrade side (enclosure {up}) needs a reboot to finish installing ({needing})",
            "reboot the Upgrade side and wait until it is OS Up",
        )
    return f"no reboot pending on enclosure {up}"


_also("custom-actions", MERGE)  # still ready (docs/DOMAIN.md#preparemerge-checks), run last


@check("change-window", "Change window")
def _change_window(ctx: CheckContext, found: Findings) -> str:
    """The change window (ftkit/window.py) and whether the plan fits it; inside a session
    the guards of split and merge hold the window instead."""
    if ctx.in_session:
        return "held by the guards of split and merge"
    from ftkit.flow import walk
    from ftkit.process import plan_facts
    from ftkit.window import check_window

    facts = plan_facts(ctx.state, ctx.config, list(ctx.packages))
    steps, _stop = walk({"split": "proceed", "merge": "proceed", "commit": "commit"}, facts)
    status, detail, remedy = check_window(ctx.state, ctx.config.controls, ctx.target,
                                          sum(s["minutes"] for s in steps),
                                          float(facts["merge_outage_s"]))
    if status == "fail":
        found.fail(detail, remedy)
    elif status == "warn":
        found.warn(detail, remedy)
    return detail


@check("commit-approvals", "Approvals at Commit")
def _commit_approvals(ctx: CheckContext, _found: Findings) -> str:
    """How many approvals Commit needs (ftkit/approvals.py); the guard at Commit counts
    them."""
    from ftkit.approvals import readiness_row

    return readiness_row(ctx.config, ctx.target)


@check("soak-probes", "Soak probes")
def _soak_probes(ctx: CheckContext, _found: Findings) -> str:
    """Which probes the soak runs and how often (ftkit/probes.py); their files are the
    custom-actions check's."""
    from ftkit.probes import readiness_row

    return readiness_row(ctx.config)
