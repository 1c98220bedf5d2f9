"""The simulator through its public interface: scenarios, workload and ledger, every fault
of the catalogue, repair, whole upgrades and aborts, time scale, progress, persistence."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from typing import Any

import pytest

from ftkit.drivers import Driver, connect
from ftkit.errors import (
    ActionTimeoutError,
    FaultError,
    ParameterError,
    StepFailedError,
    TargetError,
    TransitionError,
)
from ftkit.model import (
    DiskRole,
    MirrorState,
    ModuleState,
    PartnerState,
    Request,
    SideRole,
    StartupType,
    SystemState,
    to_dict,
)
from ftkit.sim.driver import SimDriver, create_system, list_systems
from ftkit.sim.faults import FAULTS
from ftkit.sim.parts import CommitPart, Marker
from ftkit.sim.twin import load_scenario, scenario_names

CRITICAL = ["OrderDB", "WebFront"]
UPGRADE_IP = "192.0.2.50"
ORIGINAL = "12.4.1"
PACKAGE: dict[str, Any] = {
    "name": "OrderDB", "version": "12.5.0", "duration_min": 12.0, "needs_reboot": True,
}
MakeSim = Callable[..., SimDriver]


# --- helpers ------------------------------------------------------------------------


def software(driver: Driver, name: str = "OrderDB") -> dict[int, str | None]:
    """The version of NAME on each member of the system disk."""
    boot = driver.status().boot_disk()
    return {enc: member.software.get(name) for enc, member in boot.members.items()}


def split(driver: Driver) -> None:
    driver.split(critical=CRITICAL, upgrade_ip=UPGRADE_IP)


def to_split_upgraded(driver: Driver) -> None:
    split(driver)
    driver.install(PACKAGE)
    driver.reboot_upgrade_side()


def to_merge(driver: Driver) -> None:
    to_split_upgraded(driver)
    driver.merge(critical=CRITICAL)


def version(driver: SimDriver) -> int:
    return driver.store.version()


def assert_ledger_contiguous(driver: SimDriver) -> None:
    runs = driver.store.ledger()
    for before, after in itertools.pairwise(runs):
        assert after[0] == before[1] + 1, runs
    if runs:
        assert runs[0][0] == 1
        assert runs[-1][1] == driver.acknowledged()


def assert_duplex_and_whole(driver: SimDriver) -> None:
    st = driver.status()
    assert st.duplex and not st.split
    assert all(m.state is MirrorState.MIRRORED for m in st.mirrors.values())
    assert driver.lost_transactions() == 0
    for mirror in st.mirrors.values():
        if mirror.role is DiskRole.DATA:
            assert mirror.members[0].txs == mirror.members[1].txs == [[1, driver.acknowledged()]]


# --- scenarios ------------------------------------------------------------------------


def _demo(st: SystemState, d: SimDriver) -> None:
    assert st.duplex and st.apps_on == 0 and st.apps_duplex
    assert all(m.state is MirrorState.MIRRORED for m in st.mirrors.values())
    assert all(t.addressing == "static" for t in st.teams.values())
    assert st.boot_disk().name == "system0"
    assert software(d) == {0: ORIGINAL, 1: ORIGINAL}
    assert set(st.sides[0].running) == set(st.sides[1].running) >= set(CRITICAL)


def _dhcp_lease(st: SystemState, d: SimDriver) -> None:
    team = st.teams["team0"]
    assert team.addressing == "dhcp" and not team.lease_renewable
    assert st.teams["team1"].addressing == "static" and st.duplex


def _mirror_resyncing(st: SystemState, d: SimDriver) -> None:
    data0 = st.mirrors["data0"]
    assert (data0.state, data0.progress, data0.source) == (MirrorState.RESYNCING, 0.4, 0)
    assert st.mirrors["data1"].state is MirrorState.MIRRORED
    d.wait(600)  # the resync goes on as time passes, at the scenario's rate
    assert 0.4 < d.status().mirrors["data0"].progress < 1.0
    d.wait(3 * 3600)
    assert d.status().mirrors["data0"].state is MirrorState.MIRRORED
    assert d.lost_transactions() == 0


def _missing_service(st: SystemState, d: SimDriver) -> None:
    assert not st.services["WebFront"].exists
    assert all("WebFront" not in side.running for side in st.sides.values())
    assert st.services["OrderDB"].exists and "OrderDB" in st.sides[0].running


def _module_broken(st: SystemState, d: SimDriver) -> None:
    io11 = st.modules[11]
    assert io11.state is ModuleState.BROKEN and "PCI bus error" in io11.reason
    assert io11.fault_count == 3
    assert not st.duplex and st.sides[1].os is PartnerState.DC_OFF and not st.sides[1].running
    assert st.apps_on == 0 and not st.apps_duplex  # simplex on enclosure 0
    # the absent enclosure's disk members fall behind: the mirrors say so
    assert all(m.state is MirrorState.BROKEN for m in st.mirrors.values())
    d.wait(60)
    assert d.repair("11") == ["module 11"]
    assert_duplex_and_whole(d)


def _mtbf_low(st: SystemState, d: SimDriver) -> None:
    cpu1 = st.modules[1]
    assert cpu1.state is ModuleState.ONLINE and cpu1.below_mtbf and cpu1.fault_count == 4
    assert not any(m.below_mtbf for m in st.modules.values() if m.id != 1)
    assert st.duplex


def _shared_physical_disk(st: SystemState, d: SimDriver) -> None:
    assert st.mirrors["data1"].physical == st.mirrors["system0"].physical == "disk0"
    assert st.mirrors["data0"].physical != "disk0"


def _team_one_enclosure(st: SystemState, d: SimDriver) -> None:
    assert {a.enclosure for a in st.teams["team1"].adapters} == {0}
    assert {a.enclosure for a in st.teams["team0"].adapters} == {0, 1}


SCENARIOS: dict[str, Callable[[SystemState, SimDriver], None]] = {
    "demo": _demo,
    "dhcp-lease": _dhcp_lease,
    "mirror-resyncing": _mirror_resyncing,
    "missing-service": _missing_service,
    "module-broken": _module_broken,
    "mtbf-low": _mtbf_low,
    "shared-physical-disk": _shared_physical_disk,
    "team-one-enclosure": _team_one_enclosure,
}


def test_every_shipped_scenario_is_described_here() -> None:
    assert sorted(SCENARIOS) == scenario_names()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario_loads_and_differs_as_described(make_sim: MakeSim, scenario: str) -> None:
    driver = make_sim(scenario)
    st = driver.status()
    assert load_scenario(scenario)["description"]
    if scenario != "demo":
        demo = make_sim("demo").status()
        mine = {k: v for k, v in to_dict(st).items() if k not in ("name", "epoch")}
        theirs = {k: v for k, v in to_dict(demo).items() if k not in ("name", "epoch")}
        assert mine != theirs
    SCENARIOS[scenario](st, driver)


def test_unknown_scenario_is_refused_and_creates_nothing() -> None:
    with pytest.raises(TargetError, match="unknown scenario"):
        create_system("sim://x", scenario="no-such")
    assert list_systems() == []


def test_create_refuses_to_overwrite_and_bad_names(sim: SimDriver) -> None:
    with pytest.raises(TargetError, match="already exists"):
        create_system(sim.target)
    with pytest.raises(TargetError, match="malformed"):
        create_system("sim://../escape")
    with pytest.raises(ParameterError, match="not between 0 and 1000"):
        create_system("sim://neg", time_scale=-1)
    with pytest.raises(ParameterError, match="finite"):
        create_system("sim://nan", time_scale=float("nan"))
    with pytest.raises(TargetError, match="no simulated system"):
        connect("sim://never-made")


def test_absolute_path_target(tmp_path: Any) -> None:
    path = tmp_path / "elsewhere" / "twin.db"
    driver = create_system(f"sim://{path}")
    try:
        assert path.is_file()
        assert driver.status().name == "twin"
    finally:
        driver.close()
    again = connect(f"sim://{path}")
    assert again.status().name == "twin"
    again.close()


# --- workload, ledger, outages ------------------------------------------------------


def test_workload_acknowledges_at_the_scenario_rate(sim: SimDriver) -> None:
    rate = load_scenario("demo")["rate_tps"]
    assert sim.acknowledged() == 0
    sim.wait(100)
    assert sim.acknowledged() == pytest.approx(rate * 100, abs=1)
    sim.wait(3600)
    assert sim.acknowledged() == pytest.approx(rate * 3700, abs=1)
    assert sim.status().now == pytest.approx(3700)
    assert sim.outages() == [] and sim.lost_transactions() == 0
    assert_ledger_contiguous(sim)
    assert len(sim.store.ledger()) == 1  # one uninterrupted run


def test_no_workload_without_every_critical_service(make_sim: MakeSim) -> None:
    driver = make_sim("missing-service")
    driver.wait(600)
    assert driver.acknowledged() == 0 and driver.status().apps_on is None


def test_waiting_zero_or_negative_changes_nothing(sim: SimDriver) -> None:
    before = version(sim)
    sim.wait(0)
    assert version(sim) == before
    sim.wait(-5)
    assert version(sim) == before


def test_every_acknowledged_transaction_is_on_every_data_copy(sim: SimDriver) -> None:
    sim.wait(120)
    st = sim.status()
    n = sim.acknowledged()
    for mirror in st.mirrors.values():
        if mirror.role is DiskRole.DATA:
            assert all(m.txs == [[1, n]] for m in mirror.members.values())
    assert all(d.txs == [[1, n]] for d in st.external.values())


# --- faults: the catalogue ----------------------------------------------------------


def test_catalogue_is_what_the_spec_lists() -> None:
    assert set(FAULTS) == {
        "module-fail", "installer-fail", "installer-hang", "hang-post", "hang-boot",
        "hang-shutdown", "service-stop-refused", "service-start-refused", "action-fail",
        "action-timeout", "resync-fail", "dhcp-lease-fail", "disk-fail",
    }


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_every_fault_arms_at_each_of_its_points(sim: SimDriver, name: str) -> None:
    spec = FAULTS[name]
    for point in spec.points:
        if point == "now":
            continue
        record = sim.inject(name, point=point)
        assert record == {"name": name, "point": point, "side": spec.default_side,
                          "target": "", "times": 1}
    armed = [f for f in sim.settings().faults if f["name"] == name]
    assert [f["point"] for f in armed] == [p for p in spec.points if p != "now"]
    assert sim.disarm(name) == armed
    assert sim.settings().faults == []


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("no-such-fault",), "unknown fault"),
        (("installer-fail",), "cannot fire at 'merge'"),
        (("module-fail",), "unknown side"),
        (("module-fail",), "--times must be at least 1"),
    ],
)
def test_bad_fault_requests_change_nothing(sim: SimDriver, args: tuple[str], match: str) -> None:
    kwargs: dict[str, Any] = {}
    if "merge" in match:
        kwargs["point"] = "merge"
    if "side" in match:
        kwargs["side"] = "left"
    if "times" in match:
        kwargs["times"] = 0
    before, state = version(sim), to_dict(sim.status())
    with pytest.raises(FaultError, match=match):
        sim.inject(*args, **kwargs)
    assert version(sim) == before and to_dict(sim.status()) == state
    assert sim.settings().faults == []


def test_module_fail_while_duplex_is_no_outage(sim: SimDriver) -> None:
    sim.wait(60)
    sim.inject("module-fail", side="1")  # now
    st = sim.status()
    assert st.modules[1].state is ModuleState.BROKEN and st.modules[1].fault_count == 1
    assert not st.duplex and st.apps_on == 0 and st.sides[1].os is PartnerState.DC_OFF
    assert all(m.state is MirrorState.BROKEN for m in st.mirrors.values())
    acked = sim.acknowledged()
    sim.wait(60)
    assert sim.acknowledged() == acked + 300  # the partner carries on
    assert sim.outages() == [] and sim.lost_transactions() == 0
    assert_ledger_contiguous(sim)
    assert sim.repair() == ["module 1"]
    assert_duplex_and_whole(sim)
    assert sim.outages() == []


def test_module_fail_on_the_primary_enclosure_while_duplex(sim: SimDriver) -> None:
    sim.wait(10)
    sim.inject("module-fail", side="production", target="io")  # enclosure 0's I/O module
    st = sim.status()
    assert st.modules[10].state is ModuleState.BROKEN and st.apps_on == 1
    sim.wait(10)
    assert sim.outages() == [] and sim.lost_transactions() == 0
    sim.repair("10")
    assert_duplex_and_whole(sim)


def test_module_fail_on_production_side_while_split_is_an_outage(sim: SimDriver) -> None:
    split(sim)
    sim.wait(30)
    sim.inject("module-fail", side="production")
    st = sim.status()
    assert st.apps_on is None and st.sides[0].os is PartnerState.OS_CRASHED
    [outage] = sim.outages()
    assert outage.end is None and outage.before == 0 and outage.seconds is None
    acked = sim.acknowledged()
    sim.wait(120)
    assert sim.acknowledged() == acked  # nobody is served
    assert sim.lost_transactions() == 0  # but nothing acknowledged is lost
    sim.repair()  # the Production side boots and its applications start again
    [outage] = sim.outages()
    assert outage.end is not None and outage.after == 0
    assert outage.seconds == pytest.approx(120 + 120 + 90, abs=1)  # wait + POST + boot
    assert sim.status().apps_on == 0 and sim.lost_transactions() == 0
    to_split_upgraded(sim)
    sim.merge(critical=CRITICAL)
    sim.commit()
    sim.finish()
    assert_duplex_and_whole(sim)
    assert len(sim.outages()) == 2  # the fault's and the merge's


def test_module_fail_on_upgrade_side_while_split_leaves_the_apps_alone(sim: SimDriver) -> None:
    split(sim)
    sim.inject("module-fail", point="install", side="upgrade")
    with pytest.raises(StepFailedError, match="module 1") as info:
        sim.install(PACKAGE)
    assert info.value.step == "install"
    st = sim.status()
    assert st.modules[1].state is ModuleState.BROKEN and st.sides[1].os is PartnerState.OS_CRASHED
    assert st.apps_on == 0 and sim.outages() == []
    assert sim.settings().faults == []  # used up: it fired once
    with pytest.raises(StepFailedError, match="OS Crashed"):
        sim.install(PACKAGE)  # Retry before the repair fails again, with the reason
    sim.repair("1")
    st = sim.status()
    assert st.sides[1].os is PartnerState.OS_UP
    assert not set(CRITICAL) & set(st.sides[1].running)  # still disabled there
    sim.install(PACKAGE)  # Retry after repair succeeds
    assert software(sim) == {0: ORIGINAL, 1: PACKAGE["version"]}
    assert sim.outages() == [] and sim.lost_transactions() == 0


@pytest.mark.parametrize("point", ["split", "merge", "commit", "abort", "finish"])
def test_module_fail_armed_at_a_step_fires_in_it(sim: SimDriver, point: str) -> None:
    steps: dict[str, Callable[[], None]] = {
        "split": lambda: split(sim),
        "merge": lambda: sim.merge(critical=CRITICAL),
        "commit": sim.commit,
        "abort": sim.abort,
        "finish": sim.finish,
    }
    if point in ("merge", "commit", "abort"):
        to_split_upgraded(sim)
    if point == "commit":
        sim.merge(critical=CRITICAL)
    if point == "finish":
        to_merge(sim)
        sim.commit()
    sim.inject("module-fail", point=point, side="upgrade")
    with pytest.raises(StepFailedError) as info:
        steps[point]()
    assert info.value.step == point
    assert any(m.state is ModuleState.BROKEN for m in sim.status().modules.values())
    assert sim.lost_transactions() == 0


def test_installer_fail_then_retry_succeeds(sim: SimDriver) -> None:
    split(sim)
    sim.inject("installer-fail")
    t0 = sim.status().now
    with pytest.raises(StepFailedError, match="1603") as info:
        sim.install(PACKAGE)
    assert info.value.reason == "installer exit code 1603"
    assert software(sim) == {0: ORIGINAL, 1: ORIGINAL}
    assert sim.status().now > t0
    sim.install(PACKAGE)
    assert software(sim)[1] == PACKAGE["version"]
    assert sim.status().sides[1].reboot_pending


def test_installer_hang_times_out_then_retry_succeeds(sim: SimDriver) -> None:
    split(sim)
    sim.inject("installer-hang")
    t0 = sim.status().now
    with pytest.raises(ActionTimeoutError, match="hung past") as info:
        sim.install({**PACKAGE, "timeout_min": 40})
    assert isinstance(info.value, TimeoutError)
    assert sim.status().now - t0 == pytest.approx(40 * 60)
    assert software(sim)[1] == ORIGINAL
    sim.install(PACKAGE)
    assert software(sim)[1] == PACKAGE["version"]


@pytest.mark.parametrize(
    ("fault", "hung"),
    [
        ("hang-post", PartnerState.HUNG_BIOS_POST),
        ("hang-boot", PartnerState.HUNG_OS_BOOTING),
        ("hang-shutdown", PartnerState.HUNG_OS_REBOOTING),
    ],
)
def test_hangs_at_reboot_leave_the_partner_hung(sim: SimDriver, fault: str,
                                                hung: PartnerState) -> None:
    split(sim)
    sim.install(PACKAGE)
    sim.inject(fault, point="reboot")
    with pytest.raises(ActionTimeoutError) as info:
        sim.reboot_upgrade_side()
    st = sim.status()
    assert st.sides[1].os is hung and st.sides[1].os.hung
    assert st.sides[1].os.value.startswith("Hung: ")
    assert info.value.reason == hung.value
    assert st.apps_on == 0 and sim.outages() == []
    sim.reboot_upgrade_side()  # Retry power-cycles it
    assert sim.status().sides[1].os is PartnerState.OS_UP
    assert not sim.status().sides[1].reboot_pending


def test_hang_shutdown_at_merge_then_retry(sim: SimDriver) -> None:
    to_split_upgraded(sim)
    sim.inject("hang-shutdown", point="merge")
    with pytest.raises(ActionTimeoutError):
        sim.merge(critical=CRITICAL)
    st = sim.status()
    assert st.merged and st.apps_on == 1  # the applications already run upgraded
    assert st.sides[0].os is PartnerState.HUNG_OS_SHUTTING_DOWN
    sim.merge(critical=CRITICAL)
    st = sim.status()
    assert st.sides[0].os is PartnerState.OS_SHUT_DOWN and st.unfinished is None
    assert sim.settings().marker is None
    assert len(sim.outages()) == 1


@pytest.mark.parametrize("fault", ["hang-post", "hang-boot", "hang-shutdown"])
def test_hangs_during_abort_after_merge_then_retry(sim: SimDriver, fault: str) -> None:
    to_merge(sim)
    sim.inject(fault, point="abort")
    with pytest.raises(ActionTimeoutError):
        sim.abort()
    assert any(s.os.hung for s in sim.status().sides.values())
    sim.abort()  # Retry carries on from where the abort stopped
    sim.finish()
    assert software(sim) == {0: ORIGINAL, 1: ORIGINAL}
    assert_duplex_and_whole(sim)
    assert len(sim.outages()) == 2


def test_service_stop_refused_at_split_then_retry(sim: SimDriver) -> None:
    sim.inject("service-stop-refused", point="split", target="OrderDB")
    with pytest.raises(StepFailedError, match="OrderDB refused to stop"):
        split(sim)
    assert not sim.status().split
    split(sim)
    assert sim.status().split and sim.outages() == []


def test_service_stop_refused_at_merge_is_no_outage(sim: SimDriver) -> None:
    to_split_upgraded(sim)
    sim.inject("service-stop-refused")  # default: at merge, Production side
    with pytest.raises(StepFailedError, match="refused to stop"):
        sim.merge(critical=CRITICAL)
    assert sim.status().apps_on == 0 and sim.outages() == []
    sim.merge(critical=CRITICAL)
    assert sim.status().merged and len(sim.outages()) == 1


def test_service_start_refused_at_merge_then_retry(sim: SimDriver) -> None:
    to_split_upgraded(sim)
    sim.inject("service-start-refused", target="WebFront")
    with pytest.raises(StepFailedError, match="WebFront refused to start"):
        sim.merge(critical=CRITICAL)
    assert sim.status().apps_on is None  # the outage goes on until the Retry
    assert sim.outages()[-1].end is None
    sim.wait(30)
    sim.merge(critical=CRITICAL)
    [outage] = sim.outages()
    assert outage.end is not None and outage.after == 1
    assert sim.lost_transactions() == 0


def test_service_start_refused_during_abort_then_retry(sim: SimDriver) -> None:
    to_merge(sim)
    sim.inject("service-start-refused", point="abort")
    with pytest.raises(StepFailedError, match="refused to start"):
        sim.abort()
    sim.abort()
    sim.finish()
    assert software(sim) == {0: ORIGINAL, 1: ORIGINAL}
    assert_duplex_and_whole(sim)


def _action(*code: str) -> tuple[str, list[str]]:
    return sys.executable, ["-c", "; ".join(code)]


def test_custom_action_runs_for_real_with_its_environment(sim: SimDriver) -> None:
    path, args = _action("import os, sys",
                         "print(os.environ['ACTIVE_UPGRADE_SIDE'])",
                         "print('oops', file=sys.stderr)", "sys.exit(3)")
    result = sim.run_custom_action(path, args=args, env={"ACTIVE_UPGRADE_SIDE": "Production"},
                                   timeout_s=30, request="PrepareSplit", side="Production")
    assert (result.exit_code, result.stdout.strip(), result.stderr.strip()) == (
        3, "Production", "oops")
    assert not result.timed_out


def test_custom_action_that_runs_too_long_times_out(sim: SimDriver) -> None:
    path, args = _action("import time", "time.sleep(10)")
    result = sim.run_custom_action(path, args=args, env={}, timeout_s=0.3,
                                   request="Commit", side="Production")
    assert result.timed_out and result.exit_code != 0


def test_custom_action_missing_is_exit_127(sim: SimDriver, tmp_path: Any) -> None:
    result = sim.run_custom_action(str(tmp_path / "nope.sh"), args=[], env={}, timeout_s=5,
                                   request="Commit", side="Production")
    assert result.exit_code == 127 and "cannot run" in result.stderr


def test_action_fail_makes_a_good_action_exit_non_zero(sim: SimDriver) -> None:
    path, args = _action("print('fine')")
    sim.inject("action-fail")
    result = sim.run_custom_action(path, args=args, env={}, timeout_s=30,
                                   request="ExecuteMerge", side="Production")
    assert result.exit_code == 1 and "injected failure" in result.stderr
    again = sim.run_custom_action(path, args=args, env={}, timeout_s=30,
                                  request="ExecuteMerge", side="Production")
    assert again.exit_code == 0 and again.stdout.strip() == "fine"


def test_action_timeout_is_reported_as_timed_out(sim: SimDriver) -> None:
    path, args = _action("print('fine')")
    sim.inject("action-timeout")
    result = sim.run_custom_action(path, args=args, env={}, timeout_s=45,
                                   request="ExecuteMerge", side="Production")
    assert result.timed_out and result.exit_code == -9 and result.duration_s == 45


def test_resync_fail_at_commit_then_retry(sim: SimDriver) -> None:
    to_merge(sim)
    sim.inject("resync-fail")  # default: at commit
    with pytest.raises(StepFailedError, match="resync failed") as info:
        sim.commit()
    assert info.value.step == "commit"
    st = sim.status()
    assert st.unfinished is Request.COMMIT and not st.split
    assert sim.settings().marker == Marker(Request.COMMIT, CommitPart.RESYNC)
    assert any(m.state is MirrorState.RESYNCING for m in st.mirrors.values())
    with pytest.raises(TransitionError, match="abort is refused"):
        sim.abort()
    with pytest.raises(TransitionError, match="resync still running"):
        sim.finish()
    sim.commit()  # Retry
    sim.finish()
    assert software(sim) == {0: PACKAGE["version"], 1: PACKAGE["version"]}
    assert_duplex_and_whole(sim)
    assert len(sim.outages()) == 1


def test_resync_fail_at_abort_then_retry(sim: SimDriver) -> None:
    to_split_upgraded(sim)
    sim.inject("resync-fail", point="abort")
    with pytest.raises(StepFailedError, match="resync failed"):
        sim.abort()
    with pytest.raises(TransitionError):
        sim.finish()
    sim.abort()
    sim.finish()
    assert software(sim) == {0: ORIGINAL, 1: ORIGINAL}
    assert_duplex_and_whole(sim)
    assert sim.outages() == []


def test_dhcp_lease_fail(make_sim: MakeSim) -> None:
    static = make_sim("demo")
    before = version(static)
    with pytest.raises(FaultError, match="no DHCP team"):
        static.inject("dhcp-lease-fail")
    assert version(static) == before  # refused: nothing changed

    dhcp = make_sim("dhcp-lease")
    with dhcp.store.transaction() as txn:  # a DHCP team whose lease renews, to begin with
        txn.state.teams["team0"].lease_renewable = True
    dhcp.inject("dhcp-lease-fail")
    assert not dhcp.status().teams["team0"].lease_renewable
    with pytest.raises(FaultError, match="cannot fire"):
        dhcp.inject("dhcp-lease-fail", point="split")


def test_disk_fail_while_duplex_loses_nothing(sim: SimDriver) -> None:
    sim.wait(60)
    sim.inject("disk-fail", side="upgrade", target="data0")
    st = sim.status()
    assert not st.mirrors["data0"].members[1].healthy
    assert st.mirrors["data0"].state is MirrorState.BROKEN
    sim.wait(60)
    assert sim.lost_transactions() == 0 and sim.outages() == []
    assert sim.repair("data0") == ["disk data0/1"]
    assert_duplex_and_whole(sim)


def test_disk_fail_is_refused_on_the_lone_current_copy(sim: SimDriver) -> None:
    split(sim)
    sim.wait(60)
    before, state = version(sim), to_dict(sim.status())
    with pytest.raises(FaultError, match="only up-to-date copy"):
        sim.inject("disk-fail", side="production", target="data0")
    assert version(sim) == before and to_dict(sim.status()) == state
    sim.inject("disk-fail", side="upgrade", target="data0")  # the stale copy may fail
    assert not sim.status().mirrors["data0"].members[1].healthy
    assert sim.lost_transactions() == 0


def test_disk_fail_armed_at_a_step_fires_there_and_retry_goes_on(sim: SimDriver) -> None:
    split(sim)
    sim.inject("disk-fail", point="install", side="upgrade", target="data1")
    with pytest.raises(StepFailedError, match="data1"):
        sim.install(PACKAGE)
    assert not sim.status().mirrors["data1"].members[1].healthy
    sim.install(PACKAGE)
    sim.reboot_upgrade_side()
    sim.merge(critical=CRITICAL)
    sim.repair("data1")
    sim.commit()
    sim.finish()
    assert_duplex_and_whole(sim)


def test_disk_fail_armed_on_the_lone_copy_is_used_up_without_effect(sim: SimDriver) -> None:
    split(sim)
    sim.inject("disk-fail", point="install", side="production", target="data0")
    sim.install(PACKAGE)  # the fault cannot happen there: the step goes on
    assert sim.settings().faults == []
    assert all(m.healthy for m in sim.status().mirrors["data0"].members.values())
    assert any("not applied" in message for _t, _s, message in sim.events())


# --- repair ---------------------------------------------------------------------------


def test_repair_with_nothing_broken_is_refused(sim: SimDriver) -> None:
    before = version(sim)
    with pytest.raises(FaultError, match="nothing to repair"):
        sim.repair()
    assert version(sim) == before


def test_repair_boots_the_enclosure_through_post(sim: SimDriver) -> None:
    sim.inject("module-fail", side="1")
    seen: list[str] = []
    sim.repair("1", progress=lambda label, done, total: seen.append(label))
    assert any("BIOS POST" in s for s in seen) and any("OS booting" in s for s in seen)
    st = sim.status()
    assert st.modules[1].state is ModuleState.ONLINE and st.sides[1].os is PartnerState.OS_UP


# --- whole upgrades and aborts ---------------------------------------------------------


def test_full_upgrade(sim: SimDriver) -> None:
    sim.wait(600)
    sim.stage("OrderDB 12.5.0", "f" * 64)
    split(sim)
    st = sim.status()
    assert st.split and st.production == 0
    assert st.sides[0].role is SideRole.PRODUCTION and st.sides[1].role is SideRole.UPGRADE
    assert st.sides[1].isolated and st.sides[1].address == UPGRADE_IP
    assert all(m.state is MirrorState.DISABLED for m in st.mirrors.values())
    assert st.boot_disk().members[1].startup["OrderDB"] is StartupType.DISABLED
    assert st.boot_disk().members[0].startup["OrderDB"] is StartupType.AUTOMATIC
    assert not set(CRITICAL) & set(st.sides[1].running)
    assert set(CRITICAL) <= set(st.sides[0].running)
    assert st.external["ext0"].hbas == {0: True, 1: False}
    assert sim.outages() == []  # the split costs nothing

    sim.install(PACKAGE)
    sim.reboot_upgrade_side()
    assert software(sim) == {0: ORIGINAL, 1: PACKAGE["version"]}
    sim.merge(critical=CRITICAL)
    st = sim.status()
    assert st.merged and st.apps_on == 1 and st.sides[0].os is PartnerState.OS_SHUT_DOWN
    assert st.boot_disk().members[1].startup["OrderDB"] is StartupType.AUTOMATIC
    [outage] = sim.outages()
    assert (outage.before, outage.after) == (0, 1)
    assert outage.seconds is not None and 0 < outage.seconds < 60  # docs/DOMAIN.md#outages: brief
    sim.wait(600)  # soak in production
    sim.commit()
    sim.finish()

    st = sim.status()
    assert software(sim) == {0: PACKAGE["version"], 1: PACKAGE["version"]}
    assert st.boot_disk().members[0].startup == st.boot_disk().members[1].startup
    assert st.unfinished is None and st.staged == {}
    assert sorted(st.critical) == sorted(CRITICAL)  # the applications stay critical
    assert_duplex_and_whole(sim)
    assert [o.seconds for o in sim.outages()] == [outage.seconds]  # commit added none
    assert_ledger_contiguous(sim)
    assert st.now < 8 * 3600


def test_merge_outage_is_stop_flush_handover_start(sim: SimDriver) -> None:
    """What the sim gives for the demo: the outage runs from the applications stopping
    to OrderDB (the slowest critical service, 35 s) starting on the Upgrade side."""
    to_merge(sim)
    [outage] = sim.outages()
    assert outage.seconds == pytest.approx(4 + 6 + 35, abs=0.5)


def test_abort_before_merge_is_no_outage(sim: SimDriver) -> None:
    to_split_upgraded(sim)
    sim.wait(300)
    sim.abort()
    sim.finish()
    assert software(sim) == {0: ORIGINAL, 1: ORIGINAL}
    assert sim.outages() == []
    assert_duplex_and_whole(sim)
    st = sim.status()
    assert st.boot_disk().members[1].startup["OrderDB"] is StartupType.AUTOMATIC
    assert set(CRITICAL) <= set(st.sides[1].running)


def test_abort_after_merge_is_one_more_outage(sim: SimDriver) -> None:
    to_merge(sim)
    sim.wait(300)
    sim.abort()
    sim.finish()
    assert software(sim) == {0: ORIGINAL, 1: ORIGINAL}
    _merge_outage, abort_outage = sim.outages()
    assert abort_outage.before == 1 and abort_outage.after in (0, None)  # None: duplex again
    # what the sim gives: Upgrade side shut down (60 s), original side POST and boot
    # (120 + 90 s), OrderDB starts (35 s): a restart-length outage, not a brief one
    assert abort_outage.seconds == pytest.approx(60 + 120 + 90 + 35, abs=1)
    assert_duplex_and_whole(sim)


def test_abort_with_nothing_to_abort_does_nothing(sim: SimDriver) -> None:
    before = version(sim)
    sim.abort()
    assert version(sim) == before


def test_install_and_merge_need_a_split(sim: SimDriver) -> None:
    with pytest.raises(TransitionError, match="not split"):
        sim.install(PACKAGE)
    with pytest.raises(TransitionError, match="not split"):
        sim.merge(critical=CRITICAL)
    with pytest.raises(TransitionError, match="not split"):
        sim.reboot_upgrade_side()


def test_stage_is_refused_while_split_and_idempotent(sim: SimDriver) -> None:
    sim.stage("OrderDB 12.5.0", "a" * 64)
    before = version(sim)
    sim.stage("OrderDB 12.5.0", "a" * 64)
    assert version(sim) == before
    split(sim)
    with pytest.raises(TransitionError, match="no network"):
        sim.stage("WebFront 3.3.0", "b" * 64)


def test_split_needs_a_duplex_system(make_sim: MakeSim) -> None:
    broken = make_sim("module-broken")
    with pytest.raises(StepFailedError, match="not duplex"):
        split(broken)
    assert not broken.status().split


def test_backup_event_logs(sim: SimDriver) -> None:
    logs = sim.backup_event_logs(["System", "Application"])
    assert set(logs) == {"System", "Application"}
    with pytest.raises(StepFailedError, match="no event log"):
        sim.backup_event_logs(["Nope"])


# --- time, progress, persistence ---------------------------------------------------------


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The wall-clock sleeps the simulator asks for (recorded, not slept: no timing)."""
    asked: list[float] = []
    monkeypatch.setattr("ftkit.sim.twin.time.sleep", asked.append)
    return asked


def test_time_scale_zero_is_instant(sim: SimDriver, slept: list[float]) -> None:
    sim.wait(8 * 3600)
    assert slept == []  # eight simulated hours, no sleeping
    assert sim.status().now == pytest.approx(8 * 3600)


def test_time_scale_sleeps_in_proportion(make_sim: MakeSim, slept: list[float]) -> None:
    driver = make_sim(time_scale=0.0005)
    driver.wait(1000)  # 1000 s × 0.0005 = 0.5 s of wall time, in chunks
    assert len(slept) > 1 and sum(slept) == pytest.approx(0.5)
    assert driver.status().now == pytest.approx(1000)
    driver.set_time_scale(0)
    driver.wait(1000)
    assert sum(slept) == pytest.approx(0.5)  # nothing more once the scale is 0


def test_progress_is_called_with_increasing_done(sim: SimDriver) -> None:
    calls: list[tuple[str, float, float]] = []
    sim.wait(600, progress=lambda label, done, total: calls.append((label, done, total)))
    assert len(calls) > 1
    dones = [c[1] for c in calls]
    assert dones == sorted(dones) and len(set(dones)) == len(dones)
    assert calls[-1][1] == pytest.approx(600) and all(c[2] == 600 for c in calls)

    by_label: dict[str, list[float]] = {}

    def record(label: str, done: float, total: float) -> None:
        assert 0 < done <= total * (1 + 1e-9)
        by_label.setdefault(label, []).append(done)

    split(sim)
    sim.install(PACKAGE, progress=record)
    sim.reboot_upgrade_side(progress=record)
    sim.merge(critical=CRITICAL, progress=record)
    sim.commit(progress=record)
    assert len(by_label) >= 5
    for dones in by_label.values():
        assert all(b > a for a, b in itertools.pairwise(dones))


def test_two_drivers_on_one_file_see_each_others_changes(sim: SimDriver) -> None:
    other = connect(sim.target)
    assert isinstance(other, SimDriver)
    try:
        other.wait(60)
        assert sim.status().now == 60 and sim.acknowledged() == other.acknowledged() == 301
        sim.inject("installer-fail")
        assert other.settings().faults[0]["name"] == "installer-fail"
        split(other)
        assert sim.status().split
        with pytest.raises(StepFailedError):
            sim.install(PACKAGE)  # the fault armed through one object fires in the other
        assert other.settings().faults == []
    finally:
        other.close()


def test_list_systems(make_sim: MakeSim) -> None:
    a, b = make_sim(), make_sim("mtbf-low")
    assert list_systems() == sorted([a.status().name, b.status().name])
