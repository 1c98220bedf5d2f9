"""Campaigns (docs/CAMPAIGNS.md): a canary, then waves, each system's run a Dask task that
executes the runbook by papermill, as users run it (``ftkit campaign run`` and the campaign
runbook). The systems are simulated, created by their own runbook at time scale 0."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
from conftest import CONFIG, PACKAGES
from test_change_controls import Receiver

import ftkit
from ftkit.archive import read_ledger
from ftkit.campaign import (
    CampaignError,
    approve_wave,
    campaign_journal,
    campaign_status,
    load_campaign,
    pending_approval,
    run_campaign,
)
from ftkit.cli import main
from ftkit.drivers import connect
from ftkit.errors import TargetError
from ftkit.journal import Journal, lock_path_of
from ftkit.lock import probe
from ftkit.sim import admin

pytest.importorskip("distributed")

AUTO = '{ split = "proceed", merge = "proceed", commit = "commit" }'


def campaign_file(folder: Path, systems: list[str], *, waves: str = "[1, 5]",
                  extra: str = "", site: dict[str, str] | None = None) -> Path:
    """A campaign of new simulated systems (named SYSTEMS, unique per test) to TOML."""
    tag = uuid.uuid4().hex[:6]
    lines = [f'name = "c-{tag}"', f'change_id = "CHG-{tag}"', f"waves = {waves}", extra,
             "[parameters]", f'config = "{CONFIG}"',
             f"packages = {json.dumps([str(p) for p in PACKAGES])}",
             'mode = "auto"', f"decisions = {AUTO}", "soak_minutes = 1",
             'operator = "fleet-op"', 'reason = "monthly patches"']
    for name in systems:
        lines += ["[[systems]]", f'name = "{name}"', f'target = "sim://{name}-{tag}"']
        if site and name in site:
            lines.append(f'site = "{site[name]}"')
    path = folder / f"campaign-{tag}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sessions_of(target: str) -> list[str]:
    """The outcomes of TARGET's sessions ([] when it never ran: no system, no journal)."""
    try:
        driver = connect(target)
    except TargetError:
        return []
    try:
        journal = Journal.find(driver)
        if journal is None:
            return []
        with journal:
            return [str(s.outcome) for s in journal.sessions()]
    finally:
        driver.close()


def create(*targets: str) -> None:
    for target in targets:
        admin.create_system(target, scenario="demo").close()


# --- the campaign file --------------------------------------------------------------------


@pytest.mark.parametrize(("text", "says"), [
    ('name = "x"\nchange_id = "C"\n', "systems: no systems"),
    ('name = "x y"\nchange_id = "C"\n[[systems]]\nname = "a"\ntarget = "sim://a"\n',
     "is not a campaign name"),
    ('name = "x"\nchange_id = "C"\nwaves = [["a"], ["zz"]]\n[[systems]]\nname = "a"\n'
     'target = "sim://a"\n', "no system named 'zz'"),
    ('name = "x"\nchange_id = "C"\nwaves = [["a"]]\n[[systems]]\nname = "a"\n'
     'target = "sim://a"\n[[systems]]\nname = "b"\ntarget = "sim://b"\n', "b in no wave"),
    ('name = "x"\nchange_id = "C"\nmax_failures = "0%"\n[[systems]]\nname = "a"\n'
     'target = "sim://a"\n', "is not a share"),
    ('name = "x"\nchange_id = "C"\nconcurrency = 1e308\n[[systems]]\nname = "a"\n'
     'target = "sim://a"\n', "concurrency: must be"),
    ('name = "x"\nchange_id = "C"\nwave = [1]\n[[systems]]\nname = "a"\ntarget = "sim://a"\n',
     "did you mean 'waves'"),
])
def test_a_bad_campaign_file_is_one_line_naming_the_key(tmp_path: Path, text: str,
                                                         says: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CampaignError, match=says) as err:
        load_campaign(path)
    assert "\n" not in str(err.value)


def test_a_fifo_is_refused_without_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "c.toml"
    os.mkfifo(fifo)
    with pytest.raises(CampaignError, match="not a regular file"):
        load_campaign(fifo)


def test_waves_of_sizes_put_a_canary_first_then_waves(tmp_path: Path) -> None:
    spec = load_campaign(campaign_file(tmp_path, [f"s{i}" for i in range(8)], waves="[1, 3]"))
    assert [[m.name for m in w] for w in spec.waves] == [
        ["s0"], ["s1", "s2", "s3"], ["s4", "s5", "s6"], ["s7"]]
    assert spec.members[0].parameters["change_id"] == f"{spec.change_id}-s0"
    assert spec.members[0].parameters["system"] == spec.members[0].target


def test_a_member_whose_run_would_be_refused_stops_the_campaign_before_anything_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = campaign_file(tmp_path, ["a", "b"])
    path.write_text(path.read_text().replace('mode = "auto"', 'mode = "interactive"'))
    assert main(["campaign", "run", str(path)]) == 2
    assert "system a: runbook active-upgrade in interactive mode" in capsys.readouterr().err
    spec = load_campaign(path)
    assert all(sessions_of(m.target) == [] for m in spec.members)
    assert read_ledger(Path(os.environ["FTKIT_REPORTS"])) == []


def test_an_approval_is_journaled_with_the_account_and_given_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = campaign_file(tmp_path, ["a", "b"], waves="[1, 1]",
                         extra="approve_between_waves = true")
    spec = load_campaign(path)
    assert pending_approval(spec) is None  # the canary runs first: nothing waits yet
    with pytest.raises(CampaignError, match="no wave 0 to approve"):
        approve_wave(spec, wave=0, by="carol")
    assert main(["campaign", "approve", str(path), "--wave", "1", "--by", "carol",
                 "--reason", "canary fine"]) == 0
    assert capsys.readouterr().out.startswith("wave 1 approved by carol (account ")
    assert main(["campaign", "approve", str(path), "--wave", "1", "--by", "dave"]) == 2
    assert "approved already by carol" in capsys.readouterr().err
    assert main(["campaign", "approve", str(path), "--wave", "1", "--by", "x\x1b[2J"]) == 2
    assert campaign_status(spec)["approvals"]["1"]["by"] == "carol"
    assert pending_approval(spec) is None


# --- running ---------------------------------------------------------------------------------


def test_a_campaign_upgrades_every_system_and_leaves_a_record_of_each_and_of_itself(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's command: one canary, then a wave of 2 (approved between), all
    committed; each system's record and the campaign's in the one ledger, which verifies."""
    with Receiver() as hook:  # a pending approval is told (apprise's json://)
        path = campaign_file(tmp_path, ["a", "b", "c"], waves="[1, 2]",
                             extra="approve_between_waves = true\nconcurrency = 2\n"
                                   f'notify = ["json://127.0.0.1:{hook.port}/hook"]')
        spec = load_campaign(path)
        assert main(["campaign", "run", str(path)]) == 3  # the canary ran; wave 1 waits
    out = capsys.readouterr().out
    assert "wave 1 waits for an approval: ftkit campaign approve" in out
    (told,) = hook.received
    assert "waits for the approval of wave 1" in told["title"]
    assert f"ftkit campaign approve {spec.path} --wave 1" in told["message"]
    assert [sessions_of(m.target) for m in spec.members] == [["committed"], [], []]
    # at a terminal, the run asks for the approval it waits for, journals it and goes on
    answers = iter(["carol", "canary fine"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda _prompt: next(answers))
    assert main(["campaign", "run", str(path)]) == 0
    assert [sessions_of(m.target) for m in spec.members] == [["committed"]] * 3
    reports = Path(os.environ["FTKIT_REPORTS"])
    ledger = read_ledger(reports)
    assert sorted(e.outcome for e in ledger if e.runbook == "active-upgrade") == [
        "committed"] * 3
    assert [e.outcome for e in ledger if e.runbook == "campaign"] == ["paused", "completed"]
    record = (reports / ledger[-1].html).read_text(encoding="utf-8")
    assert all(m.parameters["change_id"] in record for m in spec.members)
    # the local cluster's dashboard, on a port of its own
    assert re.search(r"Dask dashboard: http://127\.0\.0\.1:\d+/status", record)
    # a link to each system's record (the sanitizer keeps links to the archive's own files)
    assert all(f'href="{e.html}"' in record for e in ledger if e.runbook == "active-upgrade")
    status = campaign_status(spec)
    assert status["totals"] == {**status["totals"], "ended": 3, "failed": 0, "outage_s": 135}
    assert main(["reports", "verify"]) == 0
    capsys.readouterr()
    assert main(["campaign", "status", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    schema = Path(ftkit.__file__).with_name("schemas") / "campaign-status.schema.json"
    jsonschema.validate(shown, json.loads(schema.read_text(encoding="utf-8")))
    assert shown["approvals"]["1"] == {"by": "carol", "account": shown["approvals"]["1"][
        "account"], "why": "canary fine"}


@pytest.mark.slow
def test_a_failed_canary_stops_the_campaign_before_wave_1(tmp_path: Path) -> None:
    spec = load_campaign(campaign_file(tmp_path, ["a", "b", "c"], waves="[1, 2]"))
    create(spec.members[0].target)
    admin.arm_fault(spec.members[0].target.removeprefix("sim://"), "installer-fail")
    result = run_campaign(spec, say=lambda _: None)
    assert result.outcome == "stopped" and "the canary a ended failed" in result.reason
    assert sessions_of(spec.members[0].target) == ["None"]  # Broken at Install, left open
    assert [sessions_of(m.target) for m in spec.members[1:]] == [[], []]  # untouched


@pytest.mark.slow
def test_two_failures_stop_the_campaign_and_no_new_system_starts(tmp_path: Path) -> None:
    names = ["ok", "bad1", "bad2", "later"]
    spec = load_campaign(campaign_file(tmp_path, names, waves="[1, 3]",
                                       extra="max_failures = 2\nconcurrency = 1"))
    for member in spec.members[1:3]:
        create(member.target)
        admin.arm_fault(member.target.removeprefix("sim://"), "installer-fail")
    result = run_campaign(spec, say=lambda _: None)
    assert result.outcome == "stopped" and "2 systems failed (bad1, bad2)" in result.reason
    assert [m.name for m in result.failed] == ["bad1", "bad2"]
    assert sessions_of(spec.members[0].target) == ["committed"]
    assert sessions_of(spec.members[3].target) == []  # never started
    assert campaign_status(spec)["systems"][3]["state"] == "waiting"


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """A real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, the
    workers tagged site_a and site_b (the README's commands for an existing cluster)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    bin_ = Path(sys.executable).parent
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    procs = [subprocess.Popen([str(bin_ / "dask"), "scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    workers = {}
    for site in ("site_a", "site_b"):
        workers[site] = subprocess.Popen(
            [str(bin_ / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1",
             "--resources", f"{site}=1", "--name", site, "--no-dashboard"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(workers[site])
    try:
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield SimpleNamespace(address=address, workers=workers)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.slow
def test_on_an_existing_cluster_each_system_runs_on_a_worker_of_its_site(
        tmp_path: Path, dask_cluster: SimpleNamespace) -> None:
    path = campaign_file(tmp_path, ["a1", "b1", "a2", "b2"], waves="[1, 3]",
                         site={"a1": "site_a", "a2": "site_a", "b1": "site_b",
                               "b2": "site_b"}, extra="concurrency = 2")
    assert main(["campaign", "run", str(path), "--scheduler", dask_cluster.address]) == 0
    from distributed import Client

    with Client(dask_cluster.address) as client:
        names = {w["name"]: addr for addr, w in client.scheduler_info()["workers"].items()}
    status = campaign_status(load_campaign(path))
    placed = {s["name"]: s["worker"] for s in status["systems"]}
    assert placed == {"a1": names["site_a"], "a2": names["site_a"],
                      "b1": names["site_b"], "b2": names["site_b"]}
    assert {s["outcome"] for s in status["systems"]} == {"committed"}


def _wait_for(predicate: object, *, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


@pytest.mark.slow
def test_a_controller_killed_mid_wave_is_resumed_by_the_same_command(tmp_path: Path) -> None:
    """kill -9 of ``ftkit campaign run`` while wave 1 runs, then the same command again:
    every system ends committed, each through one session (nothing run twice)."""
    path = campaign_file(tmp_path, ["a", "b", "c"], waves="[1, 2]", extra="concurrency = 2")
    spec = load_campaign(path)
    proc = subprocess.Popen([sys.executable, "-m", "ftkit", "campaign", "run", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    _wait_for(lambda: any(s["wave"] == 1 and s["state"] == "running"
                          for s in campaign_status(spec)["systems"]))
    os.killpg(proc.pid, signal.SIGKILL)  # the command; its kernel (a session of its own)
    proc.wait()  # notices within a second or so, and its cluster and their kernels with it
    locks = [campaign_journal(spec).lock_path, *(lock_path_of(m.target) for m in spec.members)]
    _wait_for(lambda: not any(p is not None and probe(p) for p in locks))
    assert main(["campaign", "run", str(path)]) == 0
    assert [sessions_of(m.target) for m in spec.members] == [["committed"]] * 3
    status = campaign_status(spec)
    assert {s["outcome"] for s in status["systems"]} == {"committed"}


@pytest.mark.slow
def test_a_worker_killed_mid_run_never_makes_a_second_run_of_its_system(
        tmp_path: Path, dask_cluster: SimpleNamespace) -> None:
    """kill -9 of the worker running a system's upgrade: Dask does not run it again
    elsewhere (the campaign records it interrupted, never cancelled or failed over); the
    campaign run again resumes that system's own session: one session, committed."""
    path = campaign_file(tmp_path, ["x", "y"], waves="[2]", extra="concurrency = 2")
    spec = load_campaign(path)

    def kill_a_worker() -> None:
        _wait_for(lambda: all(s["state"] == "running" for s in campaign_status(spec)["systems"])
                  and all(sessions_of(m.target) for m in spec.members))
        os.killpg(dask_cluster.workers["site_a"].pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    assert main(["campaign", "run", str(path), "--scheduler", dask_cluster.address]) == 1
    killer.join()
    status = campaign_status(spec)
    cut = [s for s in status["systems"] if s["state"] == "interrupted"]
    assert len(cut) == 1 and "KilledWorker" in str(cut[0]["error"]), status
    cut_target = next(m.target for m in spec.members if m.name == cut[0]["name"])
    assert sessions_of(cut_target) == ["None"]  # left open, never begun a second time
    _wait_for(lambda: probe(lock_path_of(cut_target)) is None)  # its kernel saw its worker go
    assert main(["campaign", "run", str(path), "--scheduler", dask_cluster.address]) == 0
    assert [sessions_of(m.target) for m in spec.members] == [["committed"]] * 2
