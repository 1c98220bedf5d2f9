"""The host driver (``host://``) on this Linux host: a real service, a real outage.

Every test that touches the host runs as root with ``ip netns`` (CI does) and skips with the
missing piece named otherwise. Each site is fresh (its own ports, Upgrade-side network and
namespace) and torn down whatever happens. What is asserted is measured: the load client's
failed requests and acknowledged transactions, the service's database, the versions the
trees hold and what answers on the network.
"""

from __future__ import annotations

import getpass
import importlib.metadata
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from host_rig import (
    CONFIG,
    PACKAGE,
    Load,
    host_site,
    host_skip_reason,
    kill_tree,
    make_site,
    package,
    write_site,
)

from ftkit.drivers import connect
from ftkit.errors import ConfigError, StepFailedError, TargetError
from ftkit.host.driver import HostDriver
from ftkit.host.site import load_site
from ftkit.model import MirrorState, PartnerState, SideRole

REASON = host_skip_reason()
on_host = pytest.mark.skipif(REASON is not None, reason=REASON or "")
RUNBOOKS = Path(__file__).resolve().parents[1] / "runbooks"
ALL = {"split": "proceed", "merge": "proceed", "commit": "commit"}


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[Path, HostDriver]]:
    with host_site(tmp_path / "site", start_timeout_s=5, stop_timeout_s=3) as (site, driver):
        yield site, driver  # type: ignore[misc]


def health(driver: HostDriver) -> dict[str, Any]:
    site = driver.site
    with urllib.request.urlopen(
            f"http://{site.production_host}:{site.production_port}/health", timeout=30) as r:
        answer: dict[str, Any] = json.loads(r.read())
        return answer


def versions(driver: HostDriver) -> list[str | None]:
    return [m.software.get("orderdesk") for m in driver.status().mirrors["tree"].members.values()]


def orders_by_version(driver: HostDriver) -> dict[str, int]:
    with sqlite3.connect(driver.site.data / "orders.db") as db:
        return dict(db.execute("SELECT version, count(*) FROM orders GROUP BY version"))


def upgrade_side(driver: HostDriver) -> None:
    driver.split(critical=["orderdesk"], upgrade_ip=str(driver.site.upgrade_ip))
    driver.install(package())
    driver.reboot_upgrade_side()


# --- refusals, registry, site file: no root needed ------------------------------------------


def test_refuses_without_root_in_one_line(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    site = write_site(tmp_path)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(TargetError) as info:
        connect(f"host://{site}")
    assert "root" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "run").exists()  # refused before anything changed


def test_refuses_without_iproute2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = write_site(tmp_path)
    which = shutil.which
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "ip" else which(name))
    with pytest.raises(TargetError, match=r"'ip' command \(Debian package iproute2\)"):
        connect(f"host://{site}")


@on_host
def test_a_site_must_be_brought_up_first(tmp_path: Path) -> None:
    from ftkit.host.__main__ import main

    site = write_site(tmp_path)
    with pytest.raises(TargetError, match=r"not up .* python -m ftkit.host up"):
        connect(f"host://{site}")
    assert not (tmp_path / "run").exists()  # connecting changed nothing
    assert main(["up", str(site)]) == 1  # no system tree yet: refused, named
    assert not (tmp_path / "run" / "state" / "state.json").exists()
    ready = make_site(tmp_path / "ready")  # orderdesk 1.0.0 installed
    try:
        assert main(["up", str(ready)]) == 0
        driver = connect(f"host://{ready}")
        assert isinstance(driver, HostDriver) and health(driver)["version"] == "1.0.0"
        assert main(["up", str(ready)]) == 0  # up again: nothing to do
    finally:
        assert main(["down", str(ready)]) == 0
    with pytest.raises(OSError):  # nothing listens at the production address any more
        socket.create_connection((driver.site.production_host,
                                  driver.site.production_port), timeout=2).close()


def test_site_file_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="not absolute"):
        connect("host://relative/site.toml")
    with pytest.raises(TargetError, match="no site file"):
        connect(f"host://{tmp_path}/missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text(write_site(tmp_path).read_text().replace('"{port}", ', ""))
    with pytest.raises(ConfigError, match=r"never names \{port\}"):
        load_site(bad)


def acme_factory(target: str, rest: str) -> Any:
    """A third-party driver's factory, found through its entry point."""
    from ftkit.sim.driver import create_system

    return create_system(f"sim://acme-{rest}")


def test_builtin_schemes_never_scan_entry_points(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    from ftkit import drivers
    from ftkit.sim.driver import create_system

    monkeypatch.setenv("FTKIT_HOME", str(tmp_path))
    create_system("sim://lazy").close()

    def scanned(**_: Any) -> Any:
        raise AssertionError("entry points scanned for a built-in scheme")

    monkeypatch.setattr(importlib.metadata, "entry_points", scanned)
    monkeypatch.setattr(drivers, "_REGISTRY", {})
    connect("sim://lazy").close()


def test_third_party_driver_found_by_entry_point(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    from ftkit import drivers

    monkeypatch.setenv("FTKIT_HOME", str(tmp_path))
    found = [importlib.metadata.EntryPoint("acme", f"{__name__}:acme_factory", "ftkit.drivers"),
             importlib.metadata.EntryPoint("broken", "no_such_module:x", "ftkit.drivers")]
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: found if group == "ftkit.drivers" else [])
    monkeypatch.setattr(drivers, "_REGISTRY", {})
    assert {"acme", "broken", "host", "sim"} <= set(drivers.schemes())
    driver = connect("acme://one")
    assert driver.status().name == "acme-one"
    driver.close()
    with pytest.raises(TargetError, match="cannot be loaded"):
        connect("broken://x")
    with pytest.raises(TargetError, match="no driver for scheme 'nope'"):
        connect("nope://x")


# --- on the host ---------------------------------------------------------------------------


@on_host
def test_split_isolates_the_upgrade_side(rig: tuple[Path, HostDriver]) -> None:
    _site, driver = rig
    driver.split(critical=["orderdesk"], upgrade_ip=str(driver.site.upgrade_ip))
    st = driver.status()
    up = 1 - st.production  # type: ignore[operator]
    assert st.sides[up].role is SideRole.UPGRADE and st.sides[up].isolated
    assert st.sides[up].running == [] and st.sides[1 - up].running == ["orderdesk"]
    assert st.boot_disk().members[up].startup["orderdesk"].value == "disabled"
    agent = driver.agent()  # the Upgrade side answers at the upgrade-side address ...
    assert agent is not None and agent["prefix"] == str(driver.site.tree_of(up))
    assert agent["data_visible"] is False  # ... and cannot see the data directory
    state = json.loads((driver.site.state_dir / "state.json").read_text())
    probe = subprocess.run(  # nor reach the production address from inside
        ["ip", "netns", "exec", state["ns"], sys.executable, "-c",
         "import socket,sys; socket.create_connection(sys.argv[1:3], timeout=1)",
         driver.site.production_host, str(driver.site.production_port)],
        capture_output=True, text=True, check=False)
    assert probe.returncode != 0 and "refused" in probe.stderr.lower()
    assert health(driver)["version"] == "1.0.0"  # production kept serving


@on_host
def test_faults_are_armed_and_disarmed_from_the_command_line(
        rig: tuple[Path, HostDriver], capsys: pytest.CaptureFixture[str]) -> None:
    from ftkit.host.__main__ import main

    site, driver = rig
    assert main(["fault", str(site), "installer-fail"]) == 0
    assert main(["fault", str(site), "installer-fail", "--at", "merge"]) == 1
    assert "cannot fire at 'merge'" in capsys.readouterr().err
    state = json.loads((driver.site.state_dir / "state.json").read_text())
    assert state["faults"] == [{"name": "installer-fail", "point": "install", "times": 1}]
    assert main(["disarm", str(site)]) == 0
    assert json.loads((driver.site.state_dir / "state.json").read_text())["faults"] == []


@on_host
def test_upgrade_under_load_commits_with_nothing_lost(rig: tuple[Path, HostDriver]) -> None:
    site, driver = rig
    load = Load(site, rate=25)
    try:
        load.wait_for_acks(driver)
        upgrade_side(driver)
        assert driver.agent()["versions"]["orderdesk"] == "2.0.0"  # type: ignore[index]
        assert health(driver)["version"] == "1.0.0"
        driver.merge(critical=["orderdesk"])
        assert health(driver)["version"] == "2.0.0"
        driver.wait(2)
        driver.commit()
        driver.finish()
    finally:
        summary = load.stop()
    assert summary["failed"] == 0 and summary["acknowledged"] > 50
    assert driver.lost_transactions() == 0
    assert driver.acknowledged() == summary["acknowledged"]
    (outage,) = driver.outages()
    assert outage.seconds is not None and 0 < outage.seconds < 5
    assert (outage.before, outage.after) == (0, 1)
    st = driver.status()
    assert st.duplex and st.apps_on == 1 and versions(driver) == ["2.0.0", "2.0.0"]
    assert all(m.state is MirrorState.MIRRORED for m in st.mirrors.values())
    assert set(orders_by_version(driver)) == {"1.0.0", "2.0.0"}


@on_host
def test_abort_after_merge_brings_v1_back_with_v2_data(rig: tuple[Path, HostDriver]) -> None:
    site, driver = rig
    load = Load(site, rate=25)
    try:
        load.wait_for_acks(driver)
        upgrade_side(driver)
        driver.merge(critical=["orderdesk"])
        driver.wait(2)
        written_by_v2 = orders_by_version(driver).get("2.0.0", 0)
        driver.abort()
        driver.finish()
        assert health(driver)["version"] == "1.0.0"
        driver.wait(1)
    finally:
        summary = load.stop()
    assert written_by_v2 > 0 and orders_by_version(driver)["2.0.0"] >= written_by_v2
    assert summary["failed"] == 0 and driver.lost_transactions() == 0
    assert [(o.before, o.after) for o in driver.outages()] == [(0, 1), (1, 0)]
    assert driver.status().duplex and versions(driver) == ["1.0.0", "1.0.0"]


@on_host
def test_abort_before_merge_has_no_outage(rig: tuple[Path, HostDriver]) -> None:
    site, driver = rig
    load = Load(site, rate=25)
    try:
        load.wait_for_acks(driver)
        upgrade_side(driver)
        driver.abort()
        driver.finish()
    finally:
        summary = load.stop()
    assert summary["failed"] == 0 and driver.outages() == []
    assert versions(driver) == ["1.0.0", "1.0.0"] and driver.lost_transactions() == 0
    state = json.loads((driver.site.state_dir / "state.json").read_text())
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                check=True).stdout
    assert state["ns"] not in namespaces  # the Upgrade side is gone


FAULT_CASES = {
    "installer-fail": "install",
    "upgrade-side-dies": "install",
    "service-stop-refused": "merge",
    "service-start-refused": "merge",
    "health-check-fail": "merge",
}


@on_host
@pytest.mark.parametrize("fault", sorted(FAULT_CASES))
def test_fault_breaks_the_step_and_retry_recovers(rig: tuple[Path, HostDriver],
                                                  fault: str) -> None:
    """Each fault fails its step with a StepFailedError (the session goes Broken); the
    service keeps serving the original software; Retry (the same request again, after a
    reboot for a dead Upgrade side) carries on to a commit with nothing lost."""
    site, driver = rig
    point = FAULT_CASES[fault]
    load = Load(site, rate=20)
    try:
        load.wait_for_acks(driver)
        driver.split(critical=["orderdesk"], upgrade_ip=str(driver.site.upgrade_ip))
        driver.inject(fault, point=point)
        if point == "install":
            with pytest.raises(StepFailedError) as info:
                driver.install(package())
            if fault == "upgrade-side-dies":
                up = 1 - driver.status().production  # type: ignore[operator]
                assert driver.status().sides[up].os is PartnerState.OS_CRASHED
                driver.reboot_upgrade_side()
            driver.install(package())
            driver.reboot_upgrade_side()
            driver.merge(critical=["orderdesk"])
        else:
            driver.install(package())
            driver.reboot_upgrade_side()
            with pytest.raises(StepFailedError) as info:
                driver.merge(critical=["orderdesk"])
            st = driver.status()
            assert not st.merged and st.split and st.apps_on == st.production
            assert health(driver)["version"] == "1.0.0"
            assert driver.agent() is not None  # the Upgrade side is back in isolation
            driver.merge(critical=["orderdesk"])
        assert info.value.step == point and "\n" not in str(info.value)
        assert health(driver)["version"] == "2.0.0"
        driver.commit()
        driver.finish()
    finally:
        summary = load.stop()
    assert summary["failed"] == 0 and driver.lost_transactions() == 0
    assert versions(driver) == ["2.0.0", "2.0.0"]


@on_host
def test_abort_after_merge_retried_when_the_original_will_not_start(
        rig: tuple[Path, HostDriver]) -> None:
    site, driver = rig
    load = Load(site, rate=20)
    try:
        load.wait_for_acks(driver)
        upgrade_side(driver)
        driver.merge(critical=["orderdesk"])
        driver.inject("service-start-refused", point="abort")
        with pytest.raises(StepFailedError, match="refused to start") as info:
            driver.abort()
        assert info.value.step == "abort" and driver.status().apps_on is None
        driver.abort()  # Retry
        driver.finish()
        assert health(driver)["version"] == "1.0.0"
    finally:
        summary = load.stop()
    assert summary["failed"] == 0 and driver.lost_transactions() == 0
    assert len(driver.outages()) == 2 and versions(driver) == ["1.0.0", "1.0.0"]


# --- the runbook ------------------------------------------------------------------------------


def host_config(tmp_path: Path, driver: HostDriver, *, approvals: int = 0) -> Path:
    """The example configuration with this site's upgrade-side address and front (what
    ``probe_url`` probes), and APPROVALS at Commit (0: the run goes alone)."""
    site = driver.site
    config = tmp_path / "config.toml"
    config.write_text(f'include = ["{CONFIG}"]\n'
                      f'probe_url = "http://{site.production_host}:{site.production_port}'
                      '/health"\n\n[network]\n'
                      f'upgrade_ip = "{site.upgrade_ip}"\n\n[approvals]\ncommit = {approvals}\n')
    return config


def approve(site: Path, account: str) -> subprocess.CompletedProcess[str]:
    """``ftkit approve`` of change CHG-H1 run by ACCOUNT (``$JUPYTERHUB_USER``) in a
    process of its own, as README's host block does."""
    return subprocess.run([sys.executable, "-m", "ftkit", "approve", f"host://{site}",
                           "--change", "CHG-H1", "--by", "Bob Ops", "--reason", "probes green"],
                          env={**os.environ, "JUPYTERHUB_USER": account}, capture_output=True,
                          text=True, timeout=120, check=False)


def runbook_parameters(site: Path, config: Path, **more: Any) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)  # a real host needs a change window (ftkit/window.py)
    return {"system": f"host://{site}", "config": str(config), "packages": [str(PACKAGE)],
            "mode": "auto", "decisions": ALL, "soak_minutes": 0.05, "change_id": "CHG-H1",
            "operator": "host-test", "reason": "host driver test",
            "window_start": (now - timedelta(minutes=5)).isoformat(timespec="seconds"),
            "window_end": (now + timedelta(hours=4)).isoformat(timespec="seconds"), **more}


def run_upgrade(tmp_path: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    import papermill

    from ftkit.archive import result_from_notebook

    out = tmp_path / f"upgrade-{time.monotonic_ns()}.ipynb"
    nb = papermill.execute_notebook(str(RUNBOOKS / "active-upgrade.ipynb"), str(out),
                                    parameters=parameters, kernel_name="python3",
                                    cwd=str(RUNBOOKS), progress_bar=False, log_output=False)
    result = result_from_notebook(nb)
    assert result is not None
    return result


@on_host
@pytest.mark.notebook
def test_runbook_upgrades_the_real_service(rig: tuple[Path, HostDriver], tmp_path: Path,
                                           ftkit_dirs: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The example as README's host block runs it: a change window, the soak probing the
    service through its front (probe_url), Commit refused until another account approves
    (the system stays merged meanwhile), then the same command again commits."""
    from papermill.exceptions import PapermillExecutionError

    from ftkit.journal import Journal

    site, driver = rig
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)  # the operator: the OS account
    parameters = runbook_parameters(site, host_config(tmp_path, driver, approvals=1))
    load = Load(site, rate=20)
    try:
        load.wait_for_acks(driver)
        with pytest.raises(PapermillExecutionError):
            run_upgrade(tmp_path, parameters)
        with Journal.open(f"host://{site}") as journal:
            (record,) = journal.sessions()
            refused = [e.message for e in journal.entries(record.id, kinds=["warning"])
                       if "not carried out" in e.message]
        assert record.upgrade_state == "Merge" and not record.ended
        assert refused and "Commit needs 1 approval(s)" in refused[-1]
        assert health(driver)["version"] == "2.0.0"  # merged: the new side serves
        own = approve(site, getpass.getuser())  # the operator's own account
        assert own.returncode == 2 and "own account cannot approve" in own.stderr
        given = approve(site, "bob")
        assert given.returncode == 0, given.stderr
        result = run_upgrade(tmp_path, parameters)
    finally:
        summary = load.stop()
    assert result["outcome"] == "committed" and result["lost_transactions"] == 0
    assert result["session"] == record.id and result["approved_by"] == ["Bob Ops (bob)"]
    evidence = result["evidence"]  # the probes ran against the real front, and passed
    assert evidence["probes_passed"] >= 1 and evidence["probes_failed"] == 0
    (outage,) = result["outages"]
    assert 0 < outage < 5
    assert summary["failed"] == 0 and driver.lost_transactions() == 0
    assert health(driver)["version"] == "2.0.0" and versions(driver) == ["2.0.0", "2.0.0"]


@on_host
@pytest.mark.notebook
def test_controller_killed_mid_merge_then_rerun_commits(tmp_path: Path,
                                                        ftkit_dirs: Any) -> None:
    """kill -9 of the kernel running the upgrade while the merge is starting v2 (a start
    made slow on purpose); the front keeps holding, the rerun resumes the same session."""
    slow = ["sh", "-c", 'sleep 2; exec "$0" -m orderdesk --port "$1" --data "$2"',
            "{python}", "{port}", "{data}"]
    with host_site(tmp_path / "site", command=slow, start_timeout_s=15) as (site, driver):
        assert isinstance(driver, HostDriver)
        parameters = runbook_parameters(site, host_config(tmp_path, driver))
        state_file = driver.site.state_dir / "state.json"
        load = Load(site, rate=20)
        try:
            load.wait_for_acks(driver)
            first = subprocess.Popen(
                [sys.executable, "-m", "papermill", str(RUNBOOKS / "active-upgrade.ipynb"),
                 str(tmp_path / "killed.ipynb"), "--cwd", str(RUNBOOKS), "--no-progress-bar",
                 "-y", json.dumps(parameters)],
                env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 300
                while json.loads(state_file.read_text())["step"] != "merge:start":
                    assert time.monotonic() < deadline, "the first run never reached merge"
                    assert first.poll() is None, "the first run ended before the kill"
                    time.sleep(0.02)
                time.sleep(0.5)  # v2 is starting
                kill_tree(first.pid)
            finally:
                first.kill()
                first.wait()
            st = driver.status()
            assert st.split and not st.merged and st.apps_on is None  # killed mid-switch
            result = run_upgrade(tmp_path, parameters)
        finally:
            summary = load.stop()
        assert result["outcome"] == "committed" and result["lost_transactions"] == 0
        from ftkit.journal import Journal

        with Journal.open(f"host://{site}") as journal:
            (session,) = journal.sessions()  # resumed, not a second session
        assert session.outcome == "committed" and result["session"] == session.id
        assert driver.lost_transactions() == 0 and summary["failed"] == 0
        assert health(driver)["version"] == "2.0.0"


@on_host
@pytest.mark.notebook
def test_runbook_broken_by_a_failed_merge_is_retried(rig: tuple[Path, HostDriver],
                                                     tmp_path: Path, ftkit_dirs: Any) -> None:
    """The upgraded service refuses to start: ExecuteMerge goes Broken while the original
    software keeps serving; a later run told `broken: retry` merges and commits."""
    from papermill.exceptions import PapermillExecutionError

    from ftkit.journal import Journal

    site, driver = rig
    driver.inject("service-start-refused", point="merge")
    parameters = runbook_parameters(site, host_config(tmp_path, driver))
    load = Load(site, rate=20)
    try:
        load.wait_for_acks(driver)
        with pytest.raises(PapermillExecutionError) as info:
            run_upgrade(tmp_path, parameters)
        assert info.value.ename == "StepFailedError" and "refused to start" in info.value.evalue
        with Journal.open(f"host://{site}") as journal:
            (record,) = journal.sessions()
        assert record.operational_state == "Broken"
        assert health(driver)["version"] == "1.0.0"  # the Production side serves on
        result = run_upgrade(tmp_path, {**parameters,
                                        "decisions": {**ALL, "broken": "retry"}})
    finally:
        summary = load.stop()
    assert result["outcome"] == "committed" and result["session"] == record.id
    assert summary["failed"] == 0 and driver.lost_transactions() == 0
    assert health(driver)["version"] == "2.0.0"
