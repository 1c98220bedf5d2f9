"""The hardware model of a duplexed ft server, in the vendor's words.

Enums carry the names the operator meets on the console (module states from the
vendor MIB, upgrade states from the Active Upgrade console, partner states).  The
dataclasses are plain data: a driver builds them, the process and the checks read
them.  ``to_dict``/``from_dict`` give a JSON-safe round trip.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "Adapter",
    "DiskMember",
    "DiskRole",
    "ExternalDisk",
    "Mirror",
    "MirrorState",
    "Module",
    "ModuleState",
    "MtbfPolicy",
    "OperationalState",
    "PartnerState",
    "Request",
    "Service",
    "SideRole",
    "SideState",
    "StartupType",
    "SystemState",
    "Team",
    "UpgradeState",
    "from_dict",
    "to_dict",
]


class ModuleState(StrEnum):
    """Operational state of a CPU or I/O module (vendor MIB names)."""

    UNKNOWN = "UNKNOWN"
    EMPTY = "EMPTY"
    REMOVED = "REMOVED"
    SHOT = "SHOT"
    BROKEN = "BROKEN"
    DUMPING = "DUMPING"
    DIAGNOSTICS = "DIAGNOSTICS"
    DIAGNOSTICS_PASSED = "DIAGNOSTICS_PASSED"
    INITIALIZING = "INITIALIZING"
    FIRMWARE_UPDATE = "FIRMWARE_UPDATE"
    FIRMWARE_UPDATE_COMPLETE = "FIRMWARE_UPDATE_COMPLETE"
    OFFLINE = "OFFLINE"
    STOPPED = "STOPPED"
    ONLINE = "ONLINE"


class MtbfPolicy(StrEnum):
    USE_THRESHOLD = "use-threshold"
    NEVER_RESTART = "never-restart"
    ALWAYS_RESTART = "always-restart"


class MirrorState(StrEnum):
    """State of one RDR mirror across the two enclosures."""

    MIRRORED = "mirrored"
    RESYNCING = "resyncing"
    DISABLED = "disabled"  # split: each member runs on its own
    BROKEN = "broken"


class DiskRole(StrEnum):
    SYSTEM = "system"
    DATA = "data"


class StartupType(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"
    DISABLED = "disabled"


class UpgradeState(StrEnum):
    """Upgrade states as the vendor's console and custom actions name them."""

    IDLE = "Idle"
    PREPARE_SPLIT = "PrepareSplit"
    SPLIT = "Split"
    PREPARE_MERGE = "PrepareMerge"
    MERGE = "Merge"
    COMMIT = "Commit"
    ABORT = "Abort"


class OperationalState(StrEnum):
    READY = "Ready"
    BUSY = "Busy"
    BROKEN = "Broken"


class PartnerState(StrEnum):
    """Health of a side as its partner sees it."""

    DC_ON = "DC On"
    DC_OFF = "DC Off"
    BIOS_POST = "BIOS POST"
    OS_BOOTING = "OS Booting"
    OS_UP = "OS Up"
    OS_REBOOTING = "OS Rebooting"
    OS_SHUTTING_DOWN = "OS Shutting Down"
    OS_SHUT_DOWN = "OS Shut Down"
    OS_CRASHED = "OS Crashed"
    HUNG_BIOS_POST = "Hung: BIOS POST"
    HUNG_OS_BOOTING = "Hung: OS Booting"
    HUNG_OS_REBOOTING = "Hung: OS Rebooting"
    HUNG_OS_SHUTTING_DOWN = "Hung: OS Shutting Down"

    @property
    def hung(self) -> bool:
        return self.value.startswith("Hung: ")


class Request(StrEnum):
    """Every request of the Active Upgrade process (``ftkit.flow.REQUESTS`` is keyed by
    them), and the further moments a custom action can be run for: the vendor's
    ``ACTIVE_UPGRADE_REQUEST`` values are those of ``ftkit.flow.ACTION_REQUESTS``."""

    CHECK_READINESS = "CheckReadiness"
    PREPARE_SPLIT = "PrepareSplit"
    EXECUTE_SPLIT = "ExecuteSplit"
    INSTALL = "Install"
    PREPARE_MERGE = "PrepareMerge"
    EXECUTE_MERGE = "ExecuteMerge"
    COMMIT = "Commit"
    ABORT = "Abort"
    FINISH = "Finish"
    START = "Start"
    STOP = "Stop"
    BACKUP = "Backup"


class SideRole(StrEnum):
    """Role of an enclosure's side while the system is split."""

    DUPLEX = "Duplex"  # not split: both enclosures run one system in lockstep
    PRODUCTION = "Production"
    UPGRADE = "Upgrade"


@dataclass
class Module:
    """A CPU module (0, 1) or I/O module (10, 11)."""

    id: int
    kind: str  # "cpu" | "io"
    enclosure: int
    state: ModuleState = ModuleState.ONLINE
    reason: str = ""
    fault_count: int = 0
    mtbf_policy: MtbfPolicy = MtbfPolicy.USE_THRESHOLD
    mtbf_threshold_h: float = 500.0
    mtbf_h: float = 100000.0  # current measured MTBF
    primary: bool = False  # the I/O module that drives console, USB, video

    @property
    def below_mtbf(self) -> bool:
        return self.mtbf_policy is MtbfPolicy.USE_THRESHOLD and self.mtbf_h < self.mtbf_threshold_h


@dataclass
class DiskMember:
    """One enclosure's half of an RDR mirror.

    System disks carry software, service startup types and event logs; data disks
    carry the ranges of acknowledged transactions they hold.
    """

    enclosure: int
    healthy: bool = True
    software: dict[str, str] = field(default_factory=dict)
    startup: dict[str, StartupType] = field(default_factory=dict)
    event_logs: dict[str, list[str]] = field(default_factory=dict)
    txs: list[list[int]] = field(default_factory=list)  # [[first, last], ...] held


@dataclass
class Mirror:
    """An internal disk mirrored across the enclosures by Rapid Disk Resync."""

    name: str
    role: DiskRole
    size_gb: float
    physical: str  # physical disk slot; system and data volumes must not share one
    state: MirrorState = MirrorState.MIRRORED
    progress: float = 1.0  # resync progress 0..1
    source: int | None = None  # enclosure resyncing from, while resyncing
    members: dict[int, DiskMember] = field(default_factory=dict)


@dataclass
class ExternalDisk:
    """An external data disk reached through one HBA per enclosure."""

    name: str
    size_gb: float
    hbas: dict[int, bool] = field(default_factory=lambda: {0: True, 1: True})  # reachable
    healthy: bool = True
    txs: list[list[int]] = field(default_factory=list)


@dataclass
class Adapter:
    name: str
    enclosure: int
    link: bool = True


@dataclass
class Team:
    """An Ethernet team; it needs an adapter in each enclosure."""

    name: str
    network: str  # CIDR
    address: str
    addressing: str = "static"  # "static" | "dhcp"
    lease_renewable: bool = True
    adapters: list[Adapter] = field(default_factory=list)
    in_use: list[str] = field(default_factory=list)  # other addresses seen on the network


@dataclass
class Service:
    """A service; its startup type lives on the system disk (see DiskMember.startup)."""

    name: str
    exists: bool = True
    stoppable: bool = True
    start_s: float = 20.0  # how long it takes to start
    stop_s: float = 10.0


@dataclass
class SideState:
    """What runs on one enclosure."""

    enclosure: int
    role: SideRole = SideRole.DUPLEX
    os: PartnerState = PartnerState.OS_UP
    running: list[str] = field(default_factory=list)  # running services
    isolated: bool = False  # cut from production network, data disks, external PCI
    address: str = ""  # the upgrade-side IP while split
    reboot_pending: bool = False


@dataclass
class SystemState:
    """Everything a driver reports about one ft server (read-only snapshot)."""

    name: str
    model: str
    now: float  # simulated seconds since ``epoch``
    epoch: str  # ISO time of now == 0
    modules: dict[int, Module]
    mirrors: dict[str, Mirror]
    external: dict[str, ExternalDisk]
    teams: dict[str, Team]
    services: dict[str, Service]
    sides: dict[int, SideState]
    split: bool = False
    merged: bool = False  # applications run on the upgraded side, mirrors still split
    production: int | None = None  # enclosure that kept the resources while split
    apps_on: int | None = None  # enclosure running the critical applications (None = down)
    apps_duplex: bool = True  # applications running on the duplexed system
    critical: list[str] = field(default_factory=list)  # services that carry the workload
    staged: dict[str, str] = field(default_factory=dict)  # package label -> digest
    saved_startup: dict[str, StartupType] = field(default_factory=dict)  # kept at split
    # the system's own identity, made once when it was set up and read from it (the
    # twin's file, a real driver's site): the same whatever target spelling reached it
    system_id: str = ""
    # the Active Upgrade request the system is part-way through (a multi-part one:
    # ExecuteMerge until it completes; Commit and Abort until Finish); None when none is
    unfinished: Request | None = None

    @property
    def duplex(self) -> bool:
        return not self.split and all(
            m.state is ModuleState.ONLINE for m in self.modules.values()
        )

    def enclosure_up(self, enclosure: int) -> bool:
        return all(
            m.state is ModuleState.ONLINE for m in self.modules.values() if m.enclosure == enclosure
        )

    def boot_disk(self) -> Mirror:
        """The first system-role mirror: OS, software, services' startup types."""
        for mirror in self.mirrors.values():
            if mirror.role is DiskRole.SYSTEM:
                return mirror
        raise LookupError("no system disk")


def to_dict(obj: Any) -> Any:
    """JSON-safe copy of a model dataclass (enums as values, int keys as strings)."""
    cls: type = type(obj)
    names = _names(cls)
    if names is not None:
        return {name: to_dict(getattr(obj, name)) for name in names}
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, StrEnum):
        return obj.value
    return obj


@functools.cache
def _names(cls: type) -> tuple[str, ...] | None:
    """The field names of a dataclass type, else None (computed once per type)."""
    if not dataclasses.is_dataclass(cls):
        return None
    return tuple(f.name for f in dataclasses.fields(cls))


def _same(value: Any) -> Any:
    return value


@functools.cache
def _converter(tp: Any) -> Callable[[Any], Any]:
    """A function turning stored JSON into a value of type TP (built once per type)."""
    import types
    import typing

    origin = typing.get_origin(tp)
    convert: Callable[[Any], Any] = _same
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        convert = _converter(args[0]) if len(args) == 1 else _same
    elif origin is dict:
        kt, vt = typing.get_args(tp)
        inner = _converter(vt)
        if kt is int:
            def convert(value: Any) -> Any:
                return {int(k): inner(v) for k, v in value.items()}
        else:
            def convert(value: Any) -> Any:
                return {k: inner(v) for k, v in value.items()}
    elif origin is list:
        (vt,) = typing.get_args(tp)
        item = _converter(vt)

        def convert(value: Any) -> Any:
            return [item(v) for v in value]
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        def convert(value: Any) -> Any:
            return from_dict(tp, value)
    elif isinstance(tp, type) and issubclass(tp, StrEnum):
        convert = tp
    if convert is _same:
        return _same
    final = convert

    def or_none(value: Any) -> Any:
        return None if value is None else final(value)

    return or_none


@functools.cache
def _plan(cls: type) -> dict[str, Callable[[Any], Any]]:
    import typing

    hints = typing.get_type_hints(cls)
    return {f.name: _converter(hints[f.name]) for f in dataclasses.fields(cls)}


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Inverse of :func:`to_dict` for the model dataclasses."""
    plan = _plan(cls)
    return cls(**{k: plan[k](v) for k, v in data.items() if k in plan})
