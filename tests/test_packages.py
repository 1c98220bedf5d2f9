"""Update package manifests and the support rules (docs/DOMAIN.md#what-may-be-upgraded)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import PACKAGES as SUPPORTED

from ftkit.errors import PackageError
from ftkit.packages import (
    KINDS,
    MAX_DURATION_MIN,
    MAX_TIMEOUT_MIN,
    SUPPORT_RULES,
    Installer,
    UpdatePackage,
    ensure_supported,
    load_package,
    load_package_text,
    load_packages,
    support_problems,
)

REPO = Path(__file__).resolve().parents[1]
PACKAGES = REPO / "examples" / "packages"
UNSUPPORTED = {
    "bios-update.toml": "firmware",
    "cloud-agent.toml": "network-installer",
    "orderdb-schema-migration.toml": "writes-data-disks",
}
DROP = object()


def manifest(top: dict[str, Any] | None = None, installer: dict[str, Any] | None = None) -> str:
    """A valid manifest with some keys replaced (or dropped with DROP); values via JSON,
    which writes strings, numbers, booleans and lists of strings as TOML does."""
    fields: dict[str, Any] = {
        "name": "OrderDB",
        "version": "12.5.0",
        "kind": "application",
        "description": "maintenance release",
        "needs_reboot": False,
        "duration_min": 8,
    }
    inst: dict[str, Any] = {"command": "setup.exe /quiet", "touches": ["system"]}
    fields.update(top or {})
    inst.update(installer or {})
    lines = [f"{key} = {json.dumps(value)}" for key, value in fields.items() if value is not DROP]
    if "installer" not in (top or {}):
        lines.append("[installer]")
        lines += [
            f"{key} = {json.dumps(value)}" for key, value in inst.items() if value is not DROP
        ]
    return "\n".join(lines) + "\n"


def package(**installer: Any) -> UpdatePackage:
    return load_package_text(manifest(installer=installer))


def package_error(tmp_path: Path, text: str) -> PackageError:
    path = tmp_path / "pkg.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PackageError) as info:
        load_package(path)
    err = info.value
    assert "\n" not in str(err), "an error is one line"
    assert err.message.startswith(f"{path}: "), "an error names the file"
    assert err.remedy, "an error says what to do"
    return err


# --- loading --------------------------------------------------------------------------------


def test_manifest_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "orderdb.toml"
    path.write_text(manifest(), encoding="utf-8")
    pkg = load_package(path)
    assert pkg.name == "OrderDB" and pkg.version == "12.5.0" and pkg.kind == "application"
    assert pkg.label == "OrderDB 12.5.0"
    assert pkg.needs_reboot is False
    assert pkg.duration_min == 8
    assert pkg.installer == Installer(command="setup.exe /quiet")
    assert pkg.timeout_min == 24  # three times the installer's duration when not given
    assert pkg.source == path.resolve()
    assert pkg.digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_digest_is_of_the_file_bytes(tmp_path: Path) -> None:
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    one.write_text(manifest(), encoding="utf-8")
    two.write_text("# a comment changes the file\n" + manifest(), encoding="utf-8")
    assert load_package(one).digest != load_package(two).digest
    assert load_package_text(manifest()).digest == hashlib.sha256(manifest().encode()).hexdigest()


def test_installer_fields(tmp_path: Path) -> None:
    pkg = load_package_text(
        manifest(
            installer={"timeout_min": 30, "needs_network": False, "touches": ["system", "system"]}
        )
    )
    assert pkg.installer.timeout_min == 30
    assert pkg.timeout_min == 30
    assert pkg.installer.touches == ("system",)


def test_package_is_frozen_and_json_safe() -> None:
    pkg = load_package_text(manifest())
    with pytest.raises(dataclasses.FrozenInstanceError):
        pkg.version = "13"  # type: ignore[misc]
    data = json.loads(json.dumps(pkg.to_dict()))
    assert data["installer"]["touches"] == ["system"]
    assert data["digest"] == pkg.digest and data["source"] is None


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_loads(kind: str) -> None:
    assert load_package_text(manifest({"kind": kind})).kind == kind


def test_load_packages_keeps_order_and_accepts_one_path() -> None:
    pkgs = load_packages(SUPPORTED)
    assert [p.name for p in pkgs] == ["Windows Server 2022", "OrderDB"]
    assert [p.name for p in load_packages(str(SUPPORTED[1]))] == ["OrderDB"]
    assert load_packages([]) == []


def test_load_packages_refuses_duplicate_names(tmp_path: Path) -> None:
    other = tmp_path / "orderdb-13.toml"
    other.write_text(manifest({"version": "13.0.0"}), encoding="utf-8")
    with pytest.raises(PackageError) as info:
        load_packages([SUPPORTED[1], other])
    message = info.value.message
    assert "\n" not in str(info.value)
    assert message.startswith(f"{other}: name: package 'OrderDB'")
    assert str(SUPPORTED[1]) in message


# --- malformed manifests ----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(PackageError, match="file not found"):
        load_package(path)


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    err = package_error(tmp_path, 'name = "x"\nversion = 1.2.3\n')
    assert "TOML syntax error" in err.message and "line 2" in err.message


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        (manifest({"needs_restart": True}), "needs_restart", "did you mean 'needs_reboot'"),
        (manifest({"duration": 8}), "duration", "duration_min"),
        (manifest(installer={"needs_net": True}), "installer.needs_net", "needs_network"),
        (
            manifest(installer={"writes_data_disk": True}),
            "installer.writes_data_disk",
            "writes_data_disks",
        ),
    ],
)
def test_unknown_key(tmp_path: Path, text: str, key: str, hint: str) -> None:
    err = package_error(tmp_path, text)
    assert f": {key}: unknown key" in err.message
    assert hint in err.remedy and "known keys" in err.remedy


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (manifest({"name": DROP}), "name", "missing"),
        (manifest({"version": DROP}), "version", "missing"),
        (manifest({"kind": DROP}), "kind", "missing"),
        (manifest({"needs_reboot": DROP}), "needs_reboot", "missing"),
        (manifest({"duration_min": DROP}), "duration_min", "missing"),
        (manifest({"installer": DROP}), "installer", "missing"),
        (manifest(installer={"command": DROP}), "installer.command", "missing"),
        (manifest({"name": ""}), "name", "is empty"),
        (manifest({"name": 7}), "name", "expected a string"),
        (manifest({"version": 12.5}), "version", "is a number"),
        (manifest({"version": 13}), "version", "is a number"),
        (manifest({"kind": "patch"}), "kind", "unknown value 'patch'"),
        (manifest({"description": ["x"]}), "description", "expected a string"),
        (manifest({"needs_reboot": "yes"}), "needs_reboot", "expected true or false"),
        (manifest({"duration_min": 0}), "duration_min", "must be greater than 0"),
        (manifest({"duration_min": -3}), "duration_min", "must be greater than 0"),
        (manifest({"duration_min": "8"}), "duration_min", "expected a number"),
        (manifest({"duration_min": True}), "duration_min", "expected a number"),
        (manifest({"installer": "setup.exe"}), "installer", "expected a table"),
        (
            manifest(installer={"needs_network": "false"}),
            "installer.needs_network",
            "expected true or false",
        ),
        (
            manifest(installer={"creates_databases": 0}),
            "installer.creates_databases",
            "expected true or false",
        ),
        (manifest(installer={"touches": "system"}), "installer.touches", "expected a list"),
        (manifest(installer={"touches": []}), "installer.touches", "is empty"),
        (
            manifest(installer={"touches": ["system", "logs"]}),
            "installer.touches[1]",
            "unknown disk role 'logs'",
        ),
        (manifest(installer={"timeout_min": 0}), "installer.timeout_min", "must be greater than 0"),
        (
            manifest(installer={"timeout_min": 5}),
            "installer.timeout_min",
            "5 is shorter than duration_min (8)",
        ),
    ],
)
def test_malformed_manifest(tmp_path: Path, text: str, key: str, problem: str) -> None:
    err = package_error(tmp_path, text)
    assert f": {key}: {problem}" in err.message


def test_version_as_number_suggests_the_quoted_form(tmp_path: Path) -> None:
    err = package_error(tmp_path, manifest({"version": 12.5}))
    assert 'version = "12.5"' in err.remedy


def test_unknown_kind_lists_the_kinds(tmp_path: Path) -> None:
    err = package_error(tmp_path, manifest({"kind": "Hotfix"}))
    assert "did you mean 'hotfix'" in err.remedy
    assert all(kind in err.remedy for kind in KINDS)


# --- support rules ----------------------------------------------------------------------------


def test_rule_table() -> None:
    assert [rule.rule_id for rule in SUPPORT_RULES] == [
        "network-installer",
        "firmware",
        "writes-data-disks",
    ]
    for rule in SUPPORT_RULES:
        assert rule.description and rule.remedy and callable(rule.predicate)


@pytest.mark.parametrize("kind", ["os-update", "hotfix", "driver", "application"])
def test_supported_kinds_pass(kind: str) -> None:
    assert support_problems(load_package_text(manifest({"kind": kind}))) == []


@pytest.mark.parametrize("kind", ["firmware", "bios", "bmc"])
def test_firmware_is_refused(kind: str) -> None:
    (problem,) = support_problems(load_package_text(manifest({"kind": kind})))
    assert problem.rule_id == "firmware"
    assert problem.package == "OrderDB"
    assert "online while the system is duplex" in problem.remedy


def test_network_installer_is_refused() -> None:
    (problem,) = support_problems(package(needs_network=True))
    assert problem.rule_id == "network-installer"
    assert "no network" in problem.detail


@pytest.mark.parametrize(
    "installer",
    [
        {"writes_data_disks": True},
        {"creates_databases": True},
        {"touches": ["system", "data"]},
        {"touches": ["data"]},
    ],
)
def test_writing_data_disks_is_refused(installer: dict[str, Any]) -> None:
    (problem,) = support_problems(package(**installer))
    assert problem.rule_id == "writes-data-disks"
    assert "cannot see the data disks" in problem.detail


def test_every_broken_rule_is_reported() -> None:
    pkg = load_package_text(
        manifest({"kind": "bmc"}, {"needs_network": True, "creates_databases": True})
    )
    assert [p.rule_id for p in support_problems(pkg)] == [
        "network-installer",
        "firmware",
        "writes-data-disks",
    ]


def test_ensure_supported_passes_supported_packages() -> None:
    ensure_supported(load_packages(SUPPORTED))
    ensure_supported([])


def test_ensure_supported_names_the_package_and_the_rule() -> None:
    good = load_package(SUPPORTED[0])
    bad = load_package(PACKAGES / "unsupported" / "cloud-agent.toml")
    with pytest.raises(PackageError) as info:
        ensure_supported([good, bad])
    err = info.value
    assert "\n" not in str(err)
    assert err.message.startswith("1 package may not be upgraded by Active Upgrade: ")
    assert "CloudAgent 3.2.0" in err.message and "network-installer" in err.message
    assert good.name not in err.message
    assert err.remedy.startswith("CloudAgent: ")


def test_ensure_supported_lists_every_unsupported_package() -> None:
    pkgs = load_packages(sorted((PACKAGES / "unsupported").glob("*.toml")))
    with pytest.raises(PackageError) as info:
        ensure_supported(pkgs)
    message = info.value.message
    assert message.startswith("3 packages may not be upgraded")
    for pkg in pkgs:
        assert pkg.name in message
    for rule_id in UNSUPPORTED.values():
        assert f"(rule {rule_id})" in message


# --- the shipped examples ---------------------------------------------------------------------


def test_example_packages_upgrade_the_demo_scenario_software() -> None:
    hotfix, orderdb = load_packages(SUPPORTED)
    assert (hotfix.kind, hotfix.needs_reboot, hotfix.duration_min) == ("hotfix", True, 12)
    assert "KB5044281" in hotfix.description
    # the demo scenario has Windows Server 2022 10.0.20348.2700 and OrderDB 12.4.1
    assert hotfix.name == "Windows Server 2022"
    assert _version(hotfix.version) > _version("10.0.20348.2700")
    assert (orderdb.kind, orderdb.needs_reboot, orderdb.duration_min) == ("application", False, 8)
    assert orderdb.name == "OrderDB"
    assert _version(orderdb.version) > _version("12.4.1")
    for pkg in (hotfix, orderdb):
        assert support_problems(pkg) == []


@pytest.mark.parametrize(("file", "rule_id"), sorted(UNSUPPORTED.items()))
def test_example_unsupported_packages_are_refused_by_the_right_rule(
    file: str, rule_id: str
) -> None:
    pkg = load_package(PACKAGES / "unsupported" / file)
    assert [problem.rule_id for problem in support_problems(pkg)] == [rule_id]
    with pytest.raises(PackageError, match=rf"\(rule {rule_id}\)"):
        ensure_supported([pkg])


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


# --- bounded input (issue 8: a duration that crashed mid-upgrade, hostile files) --------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (manifest({"duration_min": 1e308}), "duration_min"),
        (manifest({"duration_min": 1441}), "duration_min"),
        (manifest(installer={"timeout_min": 1e308}), "installer.timeout_min"),
        (manifest(installer={"timeout_min": MAX_TIMEOUT_MIN + 1}), "installer.timeout_min"),
    ],
)
def test_durations_beyond_their_bounds_are_refused(tmp_path: Path, text: str, key: str) -> None:
    err = package_error(tmp_path, text)
    assert f": {key}: must be greater than 0 and at most " in err.message
    assert "minutes, got " in err.message


@pytest.mark.parametrize(("field", "value"), [("duration_min", "nan"), ("duration_min", "inf")])
def test_non_finite_durations_are_refused(tmp_path: Path, field: str, value: str) -> None:
    text = manifest().replace(f"{field} = 8", f"{field} = {value}")
    err = package_error(tmp_path, text)
    assert f": {field}: must be a finite number" in err.message


def test_the_longest_durations_are_accepted() -> None:
    pkg = load_package_text(
        manifest({"duration_min": MAX_DURATION_MIN}, installer={"timeout_min": MAX_TIMEOUT_MIN})
    )
    assert (pkg.duration_min, pkg.timeout_min) == (1440, 4320)
    assert load_package_text(manifest({"duration_min": MAX_DURATION_MIN})).timeout_min == 4320


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_manifest_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "pkg.toml"
    os.mkfifo(fifo)
    done: list[BaseException] = []

    def load() -> None:
        try:
            load_package(fifo)
        except PackageError as err:
            done.append(err)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(10)
    assert done, "load_package(FIFO) still waiting after 10 s"
    assert "is not a regular file" in str(done[0])


def test_a_manifest_over_one_mebibyte_is_refused(tmp_path: Path) -> None:
    err = package_error(tmp_path, manifest() + "# " + "x" * (1 << 20) + "\n")
    assert "is larger than 1024 KiB" in err.message
