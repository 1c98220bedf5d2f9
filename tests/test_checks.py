"""The readiness check and the PrepareMerge checks (docs/DOMAIN.md#readiness-checks), on
real twins."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import PACKAGES as SUPPORTED

from ftkit import checks
from ftkit.checks import (
    COLUMNS,
    CheckContext,
    CheckResult,
    CheckStatus,
    Findings,
    checks_frame,
    failed,
    merge_checks,
    readiness,
    registry,
    run_checks,
    summary,
)
from ftkit.config import UpgradeConfig, load_config, load_config_text
from ftkit.errors import ActionTimeoutError
from ftkit.model import Request
from ftkit.packages import UpdatePackage, load_package_text, load_packages
from ftkit.sim.driver import SimDriver, create_system
from ftkit.sim.parts import Marker, MergePart

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
UNSUPPORTED = EXAMPLES / "packages" / "unsupported"

PASS, WARN, FAIL = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL

READINESS_IDS = [
    "system-duplex",
    "system-disks",
    "data-disks",
    "ethernet-teams",
    "upgrade-ip",
    "dhcp-leases",
    "critical-services",
    "custom-actions",
    "module-health",
    "rdr-resync",
    "no-session",
    "packages-staged",
    "packages-supported",
    "packages-new",
    "change-window",
    "commit-approvals",
    "soak-probes",
]
MERGE_IDS = ["upgrade-side", "packages-installed", "reboot-pending", "custom-actions"]

MakeSystem = Callable[..., SimDriver]


@pytest.fixture
def config() -> UpgradeConfig:
    return load_config(EXAMPLES / "demo-config.toml")


@pytest.fixture
def packages() -> list[UpdatePackage]:
    return load_packages(SUPPORTED)


@pytest.fixture
def make_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, packages: list[UpdatePackage]
) -> Iterator[MakeSystem]:
    """``make_system(scenario, staged=True)``: a fresh twin, the example packages staged."""
    monkeypatch.setenv("FTKIT_HOME", str(tmp_path / "home"))
    opened: list[SimDriver] = []

    def make(scenario: str = "demo", *, staged: bool = True) -> SimDriver:
        driver = create_system(f"sim://{scenario}-{len(opened)}", scenario=scenario)
        opened.append(driver)
        if staged:
            for pkg in packages:
                driver.stage(pkg.label, pkg.digest)
        return driver

    yield make
    for driver in opened:
        driver.close()


def by_id(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.check: r for r in results}


def not_passed(results: list[CheckResult]) -> dict[str, CheckStatus]:
    return {r.check: r.status for r in results if r.status is not PASS}


def demo_config(tmp_path: Path, extra: str = "", network: str | None = None) -> UpgradeConfig:
    """The demo configuration written inline, with its [network] table replaced."""
    network = network if network is not None else 'upgrade_ip = "192.0.2.50"\nteam = "team0"'
    text = (
        'description = "inline demo"\n'
        'critical_services = ["OrderDB", "WebFront"]\n'
        "[disks]\n"
        'system = ["system0"]\n'
        'data = ["data0", "ext0"]\n'
        f"[network]\n{network}\n{extra}"
    )
    return load_config_text(text, base_dir=tmp_path)


# --- the demo system is ready ------------------------------------------------------------


def test_demo_passes_every_check(
    make_system: MakeSystem, config: UpgradeConfig, packages: list[UpdatePackage]
) -> None:
    frame = readiness(make_system("demo"), config, packages)

    assert list(frame.columns) == list(COLUMNS)
    assert list(frame["check"]) == READINESS_IDS
    assert set(frame["status"]) == {"pass"}, frame.to_string()
    assert (frame["remedy"] == "").all()
    assert frame["detail"].str.len().min() > 0


def test_registry_declares_stable_ids_in_order() -> None:
    assert [c.id for c in registry()] == READINESS_IDS
    assert [c.id for c in registry("merge")] == MERGE_IDS
    assert all(c.title for c in registry()) and registry("no-such-stage") == []


def test_pass_details_name_what_was_checked(
    make_system: MakeSystem, config: UpgradeConfig, packages: list[UpdatePackage]
) -> None:
    results = by_id(run_checks(make_system("demo"), config, packages))

    assert "system0" in results["system-disks"].detail
    assert "192.0.2.50" in results["upgrade-ip"].detail
    assert "team0" in results["upgrade-ip"].detail
    assert "quiesce-orderdb" in results["custom-actions"].detail
    assert "12.4.1 → 12.5.0" in results["packages-new"].detail


# --- each bad scenario fails exactly its check ---------------------------------------------

BAD_SCENARIOS = [
    # scenario,             checks that do not pass,                        in the detail
    ("team-one-enclosure", {"ethernet-teams": FAIL}, ["team1", "enclosure 1"]),
    ("mirror-resyncing", {"rdr-resync": FAIL}, ["data0", "resyncing from enclosure 0", "% done"]),
    # a BROKEN I/O module takes its enclosure down: the mirrors run on one member
    (
        "module-broken",
        {"system-duplex": FAIL, "system-disks": FAIL, "data-disks": FAIL, "module-health": FAIL},
        ["I/O module 11", "BROKEN", "PCI bus error"],
    ),
    ("mtbf-low", {"module-health": FAIL}, ["CPU module 1", "4 faults", "120 h", "500 h"]),
    ("dhcp-lease", {"dhcp-leases": FAIL}, ["team0", "cannot be renewed"]),
    ("missing-service", {"critical-services": FAIL}, ["WebFront", "not installed"]),
    ("shared-physical-disk", {"data-disks": FAIL}, ["data1", "disk0", "system0"]),
]


@pytest.mark.parametrize(
    ("scenario", "expected", "words"), BAD_SCENARIOS, ids=[row[0] for row in BAD_SCENARIOS]
)
def test_bad_scenario_fails_exactly_its_check(
    make_system: MakeSystem,
    config: UpgradeConfig,
    packages: list[UpdatePackage],
    scenario: str,
    expected: dict[str, CheckStatus],
    words: list[str],
) -> None:
    results = run_checks(make_system(scenario), config, packages)

    assert not_passed(results) == expected
    last = by_id(results)[list(expected)[-1]]
    for word in words:
        assert word in last.detail
    assert last.remedy
    assert [r.check for r in failed(results)] == list(expected)


def test_a_down_enclosure_is_named_by_the_disk_checks(
    make_system: MakeSystem, config: UpgradeConfig, packages: list[UpdatePackage]
) -> None:
    results = by_id(run_checks(make_system("module-broken"), config, packages))

    assert "system disk system0 is broken (enclosure 1 down)" in results["system-disks"].detail
    assert "data disk data0 is broken (enclosure 1 down)" in results["data-disks"].detail
    assert "enclosure 1 is DC Off" in results["system-duplex"].detail


def test_renewable_dhcp_lease_warns_then_fails_when_it_cannot_be_renewed(
    make_system: MakeSystem, config: UpgradeConfig, packages: list[UpdatePackage]
) -> None:
    driver = make_system("demo")
    with driver.store.transaction() as txn:  # the twin's own test hook: team0 on DHCP
        txn.state.teams["team0"].addressing = "dhcp"

    results = run_checks(driver, config, packages)
    assert not_passed(results) == {"dhcp-leases": WARN}
    assert "prefer a static address" in by_id(results)["dhcp-leases"].remedy
    assert failed(results) == []

    driver.inject("dhcp-lease-fail", point="now")
    assert not_passed(run_checks(driver, config, packages)) == {"dhcp-leases": FAIL}


# --- packages ------------------------------------------------------------------------------

UNSUPPORTED_RULES = [
    ("bios-update.toml", "firmware"),
    ("cloud-agent.toml", "network-installer"),
    ("orderdb-schema-migration.toml", "writes-data-disks"),
]


@pytest.mark.parametrize(("manifest", "rule"), UNSUPPORTED_RULES)
def test_unsupported_package_fails_naming_the_rule(
    make_system: MakeSystem, config: UpgradeConfig, manifest: str, rule: str
) -> None:
    pkgs = load_packages([UNSUPPORTED / manifest])
    driver = make_system("demo", staged=False)
    for pkg in pkgs:
        driver.stage(pkg.label, pkg.digest)

    result = by_id(run_checks(driver, config, pkgs))["packages-supported"]

    assert result.status is FAIL
    assert f"(rule {rule})" in result.detail
    assert pkgs[0].label in result.detail
    assert result.remedy.startswith(pkgs[0].name)


def test_unstaged_packages_fail_unless_prepare_split_stages_them(
    make_system: MakeSystem, config: UpgradeConfig, packages: list[UpdatePackage]
) -> None:
    driver = make_system("demo", staged=False)

    result = by_id(run_checks(driver, config, packages))["packages-staged"]
    assert result.status is FAIL
    assert "OrderDB 12.5.0 is not staged" in result.detail
    assert "no network" in result.remedy

    pending = run_checks(driver, config, packages, stage_pending=True)
    assert not_passed(pending) == {"packages-staged": WARN}
    assert "will be staged at PrepareSplit" in by_id(pending)["packages-staged"].detail


def test_a_staged_copy_that_differs_from_the_manifest_fails(
    make_system: MakeSystem, config: UpgradeConfig, packages: list[UpdatePackage]
) -> None:
    driver = make_system("demo")
    changed = dataclasses.replace(packages[1], digest="f" * 64)

    result = by_id(run_checks(driver, config, [packages[0], changed]))["packages-staged"]

    assert result.status is FAIL
    assert "OrderDB 12.5.0 staged copy differs" in result.detail


def test_a_package_already_installed_warns_nothing_to_do(
    make_system: MakeSystem, config: UpgradeConfig
) -> None:
    same = load_package_text(
        'name = "OrderDB"\nversion = "12.4.1"\nkind = "application"\nneeds_reboot = false\n'
        'duration_min = 8\n[installer]\ncommand = "setup.exe /quiet"\n'
    )
    driver = make_system("demo", staged=False)
    driver.stage(same.label, same.digest)

    results = run_checks(driver, config, [same])

    assert not_passed(results) == {"packages-new": WARN}
    assert "OrderDB 12.4.1 is already installed on system0: nothing to do" in (
        by_id(results)["packages-new"].detail
    )


# --- network and custom actions -------------------------------------------------------------

UPGRADE_IPS = [
    ('upgrade_ip = "192.0.2.11"\nteam = "team0"', "192.0.2.11 is already in use"),
    ('upgrade_ip = "192.0.2.10"\nteam = "team0"', "already the address of team team0"),
    ('upgrade_ip = "10.9.9.9"\nteam = "team0"', "not on team team0's network 192.0.2.0/24"),
    ('upgrade_ip = "198.51.100.1"\nteam = "team1"', "in use on the network of team team1"),
    ('upgrade_ip = "192.0.2.255"\nteam = "team0"', "broadcast"),
    ('upgrade_ip = "192.0.2.50"\nteam = "team9"', "team team9 not found"),
    ('team = "team0"', "no upgrade-side IP is configured"),
]


@pytest.mark.parametrize(("network", "words"), UPGRADE_IPS)
def test_a_bad_upgrade_ip_fails(
    make_system: MakeSystem,
    tmp_path: Path,
    packages: list[UpdatePackage],
    network: str,
    words: str,
) -> None:
    results = run_checks(make_system("demo"), demo_config(tmp_path, network=network), packages)

    assert not_passed(results) == {"upgrade-ip": FAIL}
    assert words in by_id(results)["upgrade-ip"].detail


def test_upgrade_ip_defaults_to_the_first_team(
    make_system: MakeSystem, tmp_path: Path, packages: list[UpdatePackage]
) -> None:
    cfg = demo_config(tmp_path, network='upgrade_ip = "192.0.2.77"')
    result = by_id(run_checks(make_system("demo"), cfg, packages))["upgrade-ip"]
    assert result.status is PASS
    assert "team0" in result.detail


def test_a_custom_action_that_is_missing_or_not_executable_fails(
    make_system: MakeSystem, tmp_path: Path, packages: list[UpdatePackage]
) -> None:
    script = tmp_path / "drain.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    actions = (
        '[[custom_actions]]\nname = "drain"\npath = "drain.sh"\nwhen = "before"\n'
        'request = "ExecuteMerge"\n'
        '[[custom_actions]]\nname = "ghost"\npath = "ghost.sh"\nwhen = "after"\n'
        'request = "ExecuteMerge"\n'
    )
    cfg = demo_config(tmp_path, extra=actions)

    results = run_checks(make_system("demo"), cfg, packages)

    assert not_passed(results) == {"custom-actions": FAIL}
    detail = by_id(results)["custom-actions"].detail
    assert f"custom action drain ({script}) is not executable" in detail
    assert "custom action ghost" in detail and "does not exist" in detail
    assert f"chmod +x {script}" in by_id(results)["custom-actions"].remedy

    script.chmod(0o755)
    (tmp_path / "ghost.sh").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "ghost.sh").chmod(0o755)
    assert not_passed(run_checks(make_system("demo"), cfg, packages)) == {}


# --- sessions and the twin ----------------------------------------------------------------


def test_checks_change_nothing_on_the_twin(
    make_system: MakeSystem, config: UpgradeConfig, packages: list[UpdatePackage]
) -> None:
    driver = make_system("module-broken")
    before = (driver.store.version(), driver.status())

    readiness(driver, config, packages)
    run_checks(driver, config, packages, in_session=True, stage_pending=True)
    merge_checks(driver, config, packages)

    assert (driver.store.version(), driver.status()) == before


def test_a_session_in_progress_fails_unless_the_session_owns_the_check(
    make_system: MakeSystem, config: UpgradeConfig, packages: list[UpdatePackage]
) -> None:
    driver = make_system("demo")
    with driver.store.transaction() as txn:  # a request part-way through
        txn.sim.marker = Marker(Request.EXECUTE_MERGE, MergePart.HAND_OVER)

    results = run_checks(driver, config, packages)
    assert not_passed(results) == {"no-session": FAIL}
    assert "a session is in progress" in by_id(results)["no-session"].detail

    owned = run_checks(driver, config, packages, in_session=True)
    assert not_passed(owned) == {}


def test_a_split_system_is_neither_duplex_nor_idle(
    make_system: MakeSystem, config: UpgradeConfig, packages: list[UpdatePackage]
) -> None:
    driver = make_system("demo")
    driver.split(critical=config.critical_services, upgrade_ip=str(config.upgrade_ip))

    failing = not_passed(run_checks(driver, config, packages))

    assert failing["no-session"] is FAIL
    assert failing["system-duplex"] is FAIL
    assert failing["system-disks"] is FAIL


def test_a_check_that_raises_is_reported_not_raised(
    make_system: MakeSystem,
    config: UpgradeConfig,
    packages: list[UpdatePackage],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> list[CheckResult]:
        raise KeyError("enclosure 7")

    entry = checks._REGISTRY["rdr-resync"]
    monkeypatch.setitem(checks._REGISTRY, "rdr-resync", dataclasses.replace(entry, function=broken))

    result = by_id(run_checks(make_system("demo"), config, packages))["rdr-resync"]

    assert result.status is FAIL
    assert "could not run: KeyError" in result.detail


def test_summary_counts_each_status() -> None:
    results = [
        CheckResult("a", "A", PASS, "fine"),
        CheckResult("b", "B", WARN, "hmm", "look"),
        CheckResult("c", "C", FAIL, "bad", "fix"),
    ]
    assert summary(results) == "3 checks: 1 passed, 1 warning, 1 failed"
    assert [r.check for r in failed(results)] == ["c"]
    assert [r.ok for r in results] == [True, True, False]


# --- PrepareMerge --------------------------------------------------------------------------


def test_merge_checks_follow_the_upgrade_side(
    make_system: MakeSystem, config: UpgradeConfig, packages: list[UpdatePackage]
) -> None:
    driver = make_system("demo")
    idle = merge_checks(driver, config, packages)
    assert [r.check for r in idle] == MERGE_IDS
    assert not_passed(idle) == {
        "upgrade-side": FAIL,
        "packages-installed": FAIL,
        "reboot-pending": FAIL,
    }
    assert "not split" in idle[0].detail

    driver.split(critical=config.critical_services, upgrade_ip=str(config.upgrade_ip))
    split = by_id(merge_checks(driver, config, packages))
    assert split["upgrade-side"].status is PASS
    assert split["packages-installed"].status is FAIL
    assert "OrderDB is 12.4.1 on system0 of the Upgrade side (enclosure 1), expected 12.5.0" in (
        split["packages-installed"].detail
    )

    for pkg in packages:
        driver.install(pkg.to_dict())
    installed = merge_checks(driver, config, packages)
    assert not_passed(installed) == {"reboot-pending": FAIL}
    assert "Windows Server 2022" in by_id(installed)["reboot-pending"].detail

    driver.reboot_upgrade_side()
    assert not_passed(merge_checks(driver, config, packages)) == {}


def test_merge_checks_fail_when_the_upgrade_side_hangs(
    make_system: MakeSystem, config: UpgradeConfig, packages: list[UpdatePackage]
) -> None:
    driver = make_system("demo")
    driver.split(critical=config.critical_services, upgrade_ip=str(config.upgrade_ip))
    for pkg in packages:
        driver.install(pkg.to_dict())
    driver.inject("hang-boot", point="reboot")
    with pytest.raises(ActionTimeoutError):
        driver.reboot_upgrade_side()

    result = by_id(merge_checks(driver, config, packages))["upgrade-side"]

    assert result.status is FAIL
    assert "Hung: OS Booting" in result.detail


# --- one context, the id given once, one way to a table ----------------------------------------


def test_a_check_reads_one_context_and_names_its_id_once(
    make_system: MakeSystem,
    config: UpgradeConfig,
    packages: list[UpdatePackage],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(checks, "_REGISTRY", dict(checks._REGISTRY))
    monkeypatch.setattr(checks, "_STAGES", {k: list(v) for k, v in checks._STAGES.items()})
    seen: list[CheckContext] = []

    @checks.check("probe", "Probe", stages=("probe",))
    def probe(ctx: CheckContext, found: Findings) -> str:
        seen.append(ctx)
        if ctx.stage_pending:
            found.warn("staging pending", "nothing to do")
        return f"{len(ctx.state.modules)} modules, {len(ctx.packages)} packages"

    driver = make_system("demo")
    entry = registry("probe")[0]
    ctx = CheckContext(driver.status(), config, packages)
    expected = f"{len(ctx.state.modules)} modules, 2 packages"
    assert entry.run(ctx) == CheckResult("probe", "Probe", PASS, expected)
    warned = entry.run(dataclasses.replace(ctx, stage_pending=True))
    assert (warned.status, warned.detail) == (WARN, "staging pending")
    assert warned.remedy == "nothing to do"
    assert seen[0].config is config and seen[0].in_session is False


def test_checks_frame_is_the_one_table_of_results() -> None:
    results = [CheckResult("a", "A", PASS, "fine"), CheckResult("c", "C", FAIL, "bad", "fix")]
    frame = checks_frame(results)
    assert list(frame.columns) == list(COLUMNS)
    assert frame.to_dict("records") == [
        {"check": "a", "title": "A", "status": "pass", "detail": "fine", "remedy": ""},
        {"check": "c", "title": "C", "status": "fail", "detail": "bad", "remedy": "fix"},
    ]
    assert checks_frame(frame) is frame
    assert list(checks_frame([]).columns) == list(COLUMNS)
