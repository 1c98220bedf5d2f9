"""Update package manifests and the rules for what Active Upgrade may install
(docs/DOMAIN.md#what-may-be-upgraded).

A manifest is a TOML file::

    name = "OrderDB"
    version = "12.5.0"
    kind = "application"          # one of KINDS; firmware, bios and bmc are refused
    description = "OrderDB 12.5 maintenance release"
    needs_reboot = false
    duration_min = 8              # how long the installer runs, in minutes: (0, 1440]

    [installer]
    command = "msiexec /i OrderDB-12.5.0.msi /qn"
    needs_network = false         # the Upgrade side has no network while split
    writes_data_disks = false     # the Upgrade side cannot see the data disks while split
    creates_databases = false     # nor create or convert databases on them
    touches = ["system"]          # disk roles the installer writes: "system", "data"
    timeout_min = 30              # optional: duration_min .. 4320 (three days)

A manifest is a regular file of at most 1 MiB (:mod:`ftkit.tomlreader`). Loading checks
only the manifest; :func:`support_problems` applies the support rules,
and :func:`ensure_supported` refuses unsupported packages before any split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftkit.errors import PackageError
from ftkit.tomlreader import Reader, decode, parse_toml, read_file, shown

__all__ = [
    "DISK_ROLES",
    "KINDS",
    "MAX_DURATION_MIN",
    "MAX_TIMEOUT_MIN",
    "SUPPORT_RULES",
    "Installer",
    "Problem",
    "SupportRule",
    "UpdatePackage",
    "ensure_supported",
    "load_package",
    "load_package_text",
    "load_packages",
    "support_problems",
]

#: Package kinds a manifest may declare.
KINDS: tuple[str, ...] = (
    "os-update",
    "hotfix",
    "driver",
    "application",
    "firmware",
    "bios",
    "bmc",
)
#: Disk roles an installer may write to.
DISK_ROLES: tuple[str, ...] = ("system", "data")
#: The longest an installer may be declared to run (one day), in minutes.
MAX_DURATION_MIN = 1440.0
#: The longest an installer may be given before it counts as hung (three days), in
#: minutes: three times the longest duration, the default timeout.
MAX_TIMEOUT_MIN = 3 * MAX_DURATION_MIN

_FIRMWARE_KINDS = frozenset({"firmware", "bios", "bmc"})
_TOP_KEYS = ("name", "version", "kind", "description", "needs_reboot", "duration_min", "installer")
_INSTALLER_KEYS = (
    "command",
    "needs_network",
    "writes_data_disks",
    "creates_databases",
    "touches",
    "timeout_min",
)


@dataclass(frozen=True)
class Installer:
    """What the package's installer runs, needs and writes."""

    command: str
    needs_network: bool = False
    writes_data_disks: bool = False
    creates_databases: bool = False
    touches: tuple[str, ...] = ("system",)
    timeout_min: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "command": self.command,
            "needs_network": self.needs_network,
            "writes_data_disks": self.writes_data_disks,
            "creates_databases": self.creates_databases,
            "touches": list(self.touches),
            "timeout_min": self.timeout_min,
        }


@dataclass(frozen=True)
class UpdatePackage:
    """A loaded update package manifest (read-only).

    ``digest`` is the SHA-256 (hex) of the manifest file's bytes; ``source`` the file
    (``None`` when loaded from text).
    """

    name: str
    version: str
    kind: str
    description: str
    needs_reboot: bool
    duration_min: float
    installer: Installer
    digest: str
    source: Path | None = None

    @property
    def label(self) -> str:
        """``"name version"``, as an operator reads it."""
        return f"{self.name} {self.version}"

    @property
    def timeout_min(self) -> float:
        """How long the installer may run before it counts as hung: ``installer.timeout_min``
        if the manifest says, else three times ``duration_min`` (design choice)."""
        if self.installer.timeout_min is not None:
            return self.installer.timeout_min
        return 3 * self.duration_min

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, with ``digest`` and ``source``."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "description": self.description,
            "needs_reboot": self.needs_reboot,
            "duration_min": self.duration_min,
            "installer": self.installer.to_dict(),
            "digest": self.digest,
            "source": None if self.source is None else str(self.source),
        }


@dataclass(frozen=True)
class SupportRule:
    """One reason a package may not be installed by Active Upgrade.

    ``predicate`` is true when the package breaks the rule.
    """

    rule_id: str
    description: str
    predicate: Callable[[UpdatePackage], bool]
    remedy: str


@dataclass(frozen=True)
class Problem:
    """A package that breaks a support rule."""

    package: str
    rule_id: str
    detail: str
    remedy: str


def _needs_network(pkg: UpdatePackage) -> bool:
    return pkg.installer.needs_network


def _is_firmware(pkg: UpdatePackage) -> bool:
    return pkg.kind in _FIRMWARE_KINDS


def _writes_data(pkg: UpdatePackage) -> bool:
    installer = pkg.installer
    return (
        installer.writes_data_disks or installer.creates_databases or ("data" in installer.touches)
    )


#: The support rules (docs/DOMAIN.md#what-may-be-upgraded), in the order they are reported.
SUPPORT_RULES: tuple[SupportRule, ...] = (
    SupportRule(
        "network-installer",
        "the installer needs the network (installer.needs_network = true), "
        "but the Upgrade side has no network while split",
        _needs_network,
        "use an offline installer and stage everything it needs on the system disk before "
        "the split, or install this package outside Active Upgrade",
    ),
    SupportRule(
        "firmware",
        "BIOS, BMC and other firmware are not upgraded by Active Upgrade",
        _is_firmware,
        "update firmware online while the system is duplex, with the vendor's firmware "
        "update tools, and leave it out of this upgrade",
    ),
    SupportRule(
        "writes-data-disks",
        "the installer writes to data disks or creates or converts databases "
        '(installer.writes_data_disks, creates_databases or touches = ["data"]), '
        "but the Upgrade side cannot see the data disks while split",
        _writes_data,
        "install it outside Active Upgrade in a maintenance window, or install only the "
        "program files here and run the data conversion after commit",
    ),
)


def support_problems(pkg: UpdatePackage) -> list[Problem]:
    """Every support rule ``pkg`` breaks (empty when it may be installed). Read-only."""
    return [
        Problem(
            pkg.name, rule.rule_id, f"{pkg.label} ({pkg.kind}): {rule.description}", rule.remedy
        )
        for rule in SUPPORT_RULES
        if rule.predicate(pkg)
    ]


def ensure_supported(pkgs: Iterable[UpdatePackage]) -> None:
    """Raise :class:`PackageError` naming each unsupported package and the rule it breaks.

    Call before any split: an unsupported package is refused with its reason.
    """
    problems = [problem for pkg in pkgs for problem in support_problems(pkg)]
    if not problems:
        return
    what = "; ".join(f"{problem.detail} (rule {problem.rule_id})" for problem in problems)
    remedies = "; ".join(
        dict.fromkeys(f"{problem.package}: {problem.remedy}" for problem in problems)
    )
    count = len({problem.package for problem in problems})
    noun = "package" if count == 1 else "packages"
    raise PackageError(f"{count} {noun} may not be upgraded by Active Upgrade: {what}", remedies)


def load_package(path: str | Path) -> UpdatePackage:
    """Load and validate the update package manifest at ``path``. Read-only.

    Raises :class:`PackageError` naming the file, key and fix.
    """
    label = shown(str(path))
    file = Path(path)
    data = read_file(file, label, PackageError)
    return _build(decode(data, label, PackageError), data, label, file.resolve())


def load_package_text(text: str, *, name: str = "<package text>") -> UpdatePackage:
    """Like :func:`load_package` for TOML text (``digest`` of its UTF-8 bytes; no source)."""
    return _build(text, text.encode("utf-8"), name, None)


def load_packages(paths: Iterable[str | Path] | str | Path) -> list[UpdatePackage]:
    """Load several manifests, in order; two packages with the same name are an error.

    A single path is accepted as a list of one (a runbook parameter is often a string).
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    loaded: list[UpdatePackage] = []
    by_name: dict[str, str] = {}
    for path in paths:
        pkg = load_package(path)
        if pkg.name in by_name:
            raise PackageError(
                f"{path}: name: package {pkg.name!r} is also defined by {by_name[pkg.name]}",
                "install one version of a package per upgrade; drop one of the two manifests",
            )
        by_name[pkg.name] = str(path)
        loaded.append(pkg)
    return loaded


def _build(text: str, data: bytes, label: str, source: Path | None) -> UpdatePackage:
    raw = parse_toml(text, label, PackageError)
    r = Reader(label, PackageError, _TOP_KEYS)
    r.known(raw, _TOP_KEYS)

    name = r.text(raw, "name", "", 'name = "OrderDB"', required=True)
    if (
        "version" in raw
        and isinstance(raw["version"], int | float)
        and not isinstance(raw["version"], bool)
    ):
        r.fail(
            "version",
            "is a number, not a string",
            f'write the version in quotes: version = "{raw["version"]}"',
        )
    version = r.text(raw, "version", "", 'version = "12.5.0"', required=True)
    kind = r.choice(raw, "kind", "", KINDS, required=True)
    description = r.text(raw, "description", "", 'description = "what this update does"')
    needs_reboot = r.flag(raw, "needs_reboot", "", required=True)
    duration = r.number(raw, "duration_min", "", "duration_min = 8", low=0,
                        high=MAX_DURATION_MIN, unit="minutes", required=True)

    table = r.table(
        raw,
        "installer",
        "",
        _INSTALLER_KEYS,
        '[installer] command = "setup.exe /quiet"',
        required=True,
    )
    assert table is not None
    command = r.text(table, "command", "installer", 'command = "setup.exe /quiet"', required=True)
    touches = r.names(table, "touches", "installer", 'touches = ["system"]')
    if touches is not None:
        if not touches:
            r.fail(
                "installer.touches",
                "is empty",
                'name the disk roles the installer writes: touches = ["system"]',
            )
        for index, role in enumerate(touches):
            if role not in DISK_ROLES:
                r.fail(
                    f"installer.touches[{index}]",
                    f"unknown disk role {role!r}",
                    "write one or more of: " + ", ".join(DISK_ROLES),
                )
    timeout = r.number(table, "timeout_min", "installer", "timeout_min = 30", low=0,
                       high=MAX_TIMEOUT_MIN, unit="minutes")
    assert name is not None and version is not None and kind is not None
    assert needs_reboot is not None and duration is not None and command is not None
    if timeout is not None and timeout < duration:
        r.fail(
            "installer.timeout_min",
            f"{timeout:g} is shorter than duration_min ({duration:g}): the installer "
            "would always time out",
            f"write timeout_min = {max(2 * duration, duration + 10):g} or more",
        )

    installer = Installer(
        command=command,
        needs_network=bool(r.flag(table, "needs_network", "installer")),
        writes_data_disks=bool(r.flag(table, "writes_data_disks", "installer")),
        creates_databases=bool(r.flag(table, "creates_databases", "installer")),
        touches=("system",) if touches is None else touches,
        timeout_min=timeout,
    )
    return UpdatePackage(
        name=name.strip(),
        version=version.strip(),
        kind=kind,
        description=description or "",
        needs_reboot=needs_reboot,
        duration_min=duration,
        installer=installer,
        digest=hashlib.sha256(data).hexdigest(),
        source=source,
    )
