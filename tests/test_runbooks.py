"""The runbooks, executed by papermill in a real kernel against fresh simulated systems.

Each test sets ``$FTKIT_HOME`` (conftest ``ftkit_dirs``) before the kernel starts; the
kernel inherits it, so the notebook and the test see the same twins and journals. What
a run reports is read from its RunResult (``metadata``-free: the displayed result), and
checked against the twin and the journal, not against the notebook's claims.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFIG, ORIGINAL, PACKAGES, UPGRADED
from conftest import DECISIONS as ALL
from conftest import UNSUPPORTED_PACKAGE as UNSUPPORTED
from drive import request

from ftkit.archive import result_from_notebook
from ftkit.drivers import connect
from ftkit.journal import Journal
from ftkit.model import MirrorState
from ftkit.process import open_session
from ftkit.sim.driver import SimDriver, create_system

pytestmark = pytest.mark.notebook

REPO = Path(__file__).resolve().parents[1]
RUNBOOKS = REPO / "runbooks"


def run(runbook: str, tmp_path: Path, **parameters: Any) -> dict[str, Any]:
    """Execute RUNBOOK with PARAMETERS; the RunResult it displayed (raises on failure)."""
    import papermill

    out = tmp_path / f"{runbook}-{uuid.uuid4().hex[:6]}.ipynb"
    nb = papermill.execute_notebook(
        str(RUNBOOKS / f"{runbook}.ipynb"), str(out), parameters=parameters,
        kernel_name="python3", cwd=str(RUNBOOKS), progress_bar=False, log_output=False)
    result = result_from_notebook(nb)
    assert result is not None, "the runbook displayed no RunResult"
    return result


def fails(runbook: str, tmp_path: Path, **parameters: Any) -> Any:
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(PapermillExecutionError) as info:
        run(runbook, tmp_path, **parameters)
    return info.value


def target() -> str:
    return f"sim://nb-{uuid.uuid4().hex[:8]}"


def upgrade(system: str, mode: str = "auto", **more: Any) -> dict[str, Any]:
    return {"system": system, "mode": mode, "operator": "nb-test", "reason": "notebook test",
            "change_id": "CHG-NB", **more}


def software(driver: SimDriver) -> list[dict[str, str]]:
    boot = driver.status().boot_disk()
    return [{k: boot.members[e].software[k] for k in ORIGINAL} for e in (0, 1)]


def sessions(system: str) -> list[Any]:
    with Journal.open(system) as journal:
        return journal.sessions()


# --- active-upgrade.ipynb ----------------------------------------------------------------


def test_auto_commit(tmp_path: Path) -> None:
    system = target()
    result = run("active-upgrade", tmp_path, **upgrade(system, decisions=ALL))
    assert result["outcome"] == "committed" and result["lost_transactions"] == 0
    assert result["change_id"] == "CHG-NB" and result["operator"] == "nb-test"
    (outage,) = result["outages"]
    assert 0 < outage < 60 and result["outage_s"] == pytest.approx(outage)
    driver = connect(system)
    assert software(driver) == [UPGRADED, UPGRADED]
    assert driver.status().duplex and driver.lost_transactions() == 0
    (record,) = sessions(system)
    assert record.outcome == "committed" and record.operator == "nb-test"


def test_auto_abort_after_merge(tmp_path: Path) -> None:
    system = target()
    result = run("active-upgrade", tmp_path,
                 **upgrade(system, decisions={**ALL, "commit": "abort"}, soak_minutes=5))
    assert result["outcome"] == "aborted" and result["lost_transactions"] == 0
    merge, restart = result["outages"]  # the merge; the restart on the original side
    assert 0 < merge < 60
    assert 0 < restart < 10 * 60  # shut the Upgrade side down, boot the original, start
    assert result["outage_s"] == pytest.approx(merge + restart)
    driver = connect(system)
    assert software(driver) == [ORIGINAL, ORIGINAL] and driver.status().duplex


def test_abort_before_merge_has_no_outage(tmp_path: Path) -> None:
    system = target()
    result = run("active-upgrade", tmp_path,
                 **upgrade(system, decisions={"split": "proceed", "merge": "abort"}))
    assert result["outcome"] == "aborted"
    assert result["outages"] == [] and result["outage_s"] == 0
    driver = connect(system)
    assert software(driver) == [ORIGINAL, ORIGINAL] and driver.lost_transactions() == 0
    assert all(m.state is MirrorState.MIRRORED for m in driver.status().mirrors.values())


def test_stop_before_the_split(tmp_path: Path) -> None:
    system = target()
    result = run("active-upgrade", tmp_path, **upgrade(system, decisions={"split": "stop"}))
    assert result["outcome"] == "stopped" and result["outages"] == []
    assert not connect(system).status().split


def test_plan_mode_changes_nothing(tmp_path: Path) -> None:
    system = target()
    driver = create_system(system)
    version = driver.store.version()
    result = run("active-upgrade", tmp_path, **upgrade(system, mode="plan"))
    assert result["outcome"] == "planned"
    assert driver.store.version() == version
    assert sessions(system) == []


def test_a_run_without_operator_or_change_id_is_refused_before_anything_changes(
        tmp_path: Path) -> None:
    from ftkit.sim.driver import system_path

    system = target()
    for missing in ("operator", "change_id"):
        params = {**upgrade(system, decisions=ALL), missing: ""}
        error = fails("active-upgrade", tmp_path, **params)
        assert error.ename == "DecisionError" and f"no {missing} was given" in error.evalue
    assert not system_path(system.removeprefix("sim://")).exists()  # nothing at all


def test_missing_decision_is_refused_before_anything_changes(tmp_path: Path) -> None:
    from ftkit.sim.driver import system_path

    system = target()
    error = fails("active-upgrade", tmp_path, **upgrade(system, decisions={}))
    assert error.ename == "DecisionError" and "no 'split' answer" in error.evalue
    assert not system_path(system.removeprefix("sim://")).exists()  # nothing at all
    error = fails("active-upgrade", tmp_path, **upgrade(system, decisions={"split": "proceed"}))
    assert "stop at Split with no 'merge' answer" in error.evalue  # would leave it split
    assert not system_path(system.removeprefix("sim://")).exists()


def test_interactive_mode_under_papermill_is_refused_before_anything_changes(
        tmp_path: Path) -> None:
    from ftkit.sim.driver import system_path

    system = target()
    # mode defaults to interactive: refused at once, not after the panel's one-hour timeout
    error = fails("active-upgrade", tmp_path, system=system, change_id="CHG-I", operator="o")
    assert error.ename == "DecisionError" and "no frontend to click in" in error.evalue
    assert not system_path(system.removeprefix("sim://")).exists()  # nothing was created


def test_merge_later_pauses_at_split_and_the_next_run_finishes_the_same_session(
        tmp_path: Path) -> None:
    system = target()
    paused = run("active-upgrade", tmp_path,
                 **upgrade(system, decisions={"split": "proceed", "merge": "later"}))
    assert paused["outcome"] == "paused" and "run again with merge: proceed" in paused["message"]
    driver = connect(system)
    assert driver.status().split and driver.lost_transactions() == 0  # split on purpose
    (first,) = sessions(system)
    assert first.upgrade_state == "Split" and first.ended is None

    result = run("active-upgrade", tmp_path, **upgrade(system, decisions=ALL))
    assert result["outcome"] == "committed" and result["session"] == first.id
    (record,) = sessions(system)  # one session, resumed, not a second one
    assert record.outcome == "committed"
    with Journal.open(system) as journal:
        intents = [e.step for e in journal.entries(record.id, kinds=["intent"])]
        decisions = [e.detail["name"] for e in journal.entries(record.id, kinds=["decision"])]
    assert intents.count("ExecuteSplit") == 1 and intents.count("Install") == 1
    assert decisions == ["split", "merge", "commit"]
    # the second record shows the steps the first run did, from the journal, not blanks
    rerun = max(tmp_path.glob("active-upgrade-*.ipynb"), key=lambda p: p.stat().st_mtime)
    shown = rerun.read_text()
    for step in ("PrepareSplit", "ExecuteSplit", "Install"):
        assert f"{step}: done earlier in session {first.id}" in shown, step
    assert "Upgrade side verified" in shown  # the install's evidence


def _descendants(pid: int) -> list[int]:
    """Every process below PID (the papermill kernel among them), from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the kernel")
def test_resume_after_the_first_run_was_killed_mid_install(tmp_path: Path) -> None:
    import signal
    import time

    system = target()
    driver = create_system(system, time_scale=0.01)  # 20 installer minutes take 12 s
    run_one = subprocess.Popen(
        [sys.executable, "-m", "papermill", str(RUNBOOKS / "active-upgrade.ipynb"),
         str(tmp_path / "killed.ipynb"), "--cwd", str(RUNBOOKS), "--no-progress-bar",
         "-p", "system", system, "-p", "mode", "auto", "-p", "operator", "nb-test",
         "-p", "change_id", "CHG-NB",
         "-y", "decisions: {split: proceed, merge: proceed, commit: commit}"],
        env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        pending = None
        while pending is None or pending.step != "Install":
            assert time.monotonic() < deadline, "the first run never reached Install"
            assert run_one.poll() is None, "the first run ended before it could be killed"
            time.sleep(0.2)
            with Journal.open(system) as journal:
                current = journal.current_session()
                pending = current and journal.pending_intent(current.id)
        time.sleep(1.0)  # part way through the installers
        for pid in [*_descendants(run_one.pid), run_one.pid]:  # the kernel does the work
            os.kill(pid, signal.SIGKILL)
    finally:
        run_one.kill()
        run_one.wait()

    (first,) = sessions(system)
    assert (first.upgrade_state, first.operational_state, first.ended) == ("Split", "Busy", None)
    assert driver.status().split and driver.lost_transactions() == 0
    driver.set_time_scale(0)  # the rest of the rehearsal need not take real time

    result = run("active-upgrade", tmp_path, **upgrade(system, decisions=ALL))
    assert result["outcome"] == "committed" and result["session"] == first.id
    assert result["lost_transactions"] == 0 and len(result["outages"]) == 1
    (record,) = sessions(system)  # resumed, not a second session
    assert record.outcome == "committed"
    with Journal.open(system) as journal:
        intents = [e.step for e in journal.entries(record.id, kinds=["intent"])]
        decisions = [e.detail["name"] for e in journal.entries(record.id, kinds=["decision"])]
        warnings = [e.message for e in journal.entries(record.id, kinds=["warning"])]
    assert intents.count("ExecuteSplit") == 1 and intents.count("Install") == 2
    assert decisions == ["split", "merge", "commit"]  # none asked twice
    assert any("Install was interrupted" in w for w in warnings)
    assert software(driver) == [UPGRADED, UPGRADED] and driver.status().duplex


def test_broken_session_is_retried_by_a_later_run_told_to(tmp_path: Path) -> None:
    system = target()
    driver = create_system(system)
    driver.inject("installer-fail")
    error = fails("active-upgrade", tmp_path, **upgrade(system, decisions=ALL))
    assert error.ename == "StepFailedError" and "Install" in error.evalue
    error = fails("active-upgrade", tmp_path, **upgrade(system, decisions=ALL))  # not told
    assert "Broken at Install" in error.evalue
    (record,) = sessions(system)
    assert (record.upgrade_state, record.operational_state) == ("Split", "Broken")

    result = run("active-upgrade", tmp_path,
                 **upgrade(system, decisions={**ALL, "broken": "retry"}))
    assert result["outcome"] == "committed" and result["session"] == record.id
    assert result["lost_transactions"] == 0
    assert software(driver) == [UPGRADED, UPGRADED]


def test_unsupported_package_is_refused_before_the_split(tmp_path: Path) -> None:
    system = target()
    error = fails("active-upgrade", tmp_path,
                  **upgrade(system, decisions=ALL, packages=[str(UNSUPPORTED)]))
    assert "packages-supported" in error.evalue
    driver = connect(system)
    assert not driver.status().split and sessions(system) == []


def test_readme_one_liner_from_the_repository_root(tmp_path: Path) -> None:
    out = tmp_path / "out.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "papermill", "runbooks/active-upgrade.ipynb", str(out),
         "-p", "mode", "auto", "-y", "decisions: {split: proceed, merge: proceed, "
         "commit: commit}", "-p", "change_id", "CHG-README", "-p", "operator", "nb-test",
         "--no-progress-bar"],
        cwd=REPO, env=os.environ.copy(), capture_output=True, text=True, timeout=300,
        check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    import nbformat

    result = result_from_notebook(nbformat.read(str(out), as_version=4))
    assert result is not None and result["outcome"] == "committed"
    assert result["system"] == "sim://demo" and result["lost_transactions"] == 0


# --- abort.ipynb ---------------------------------------------------------------------------


def split_session(system: str) -> SimDriver:
    from ftkit.decisions import ParameterDecisions

    driver = create_system(system)
    session = open_session(driver, CONFIG, PACKAGES, operator="ops", reason="monthly")
    request(session, "PrepareSplit")
    session.advance(ParameterDecisions(ALL, operator="ops"))  # split and its request
    request(session, "Install")
    session.close()  # as the process that split it would, ending: the lease is free
    return driver


def test_abort_runbook_aborts_and_finishes(tmp_path: Path) -> None:
    system = target()
    driver = split_session(system)
    with Journal.open(system) as journal:
        before = len(journal.entries())
    error = fails("abort", tmp_path, system=system, reason="window closed")  # who aborts?
    assert error.ename == "DecisionError" and "no operator was given" in error.evalue
    with Journal.open(system) as journal:
        assert len(journal.entries()) == before  # refused before anything changed
    result = run("abort", tmp_path, system=system, operator="erin", reason="window closed")
    assert result["outcome"] == "aborted" and result["lost_transactions"] == 0
    assert result["outages"] == []  # aborted before merge
    assert software(driver) == [ORIGINAL, ORIGINAL] and driver.status().duplex
    (record,) = sessions(system)
    assert record.outcome == "aborted"
    with Journal.open(system) as journal:
        notes = [e.message for e in journal.entries(record.id, kinds=["info"])]
    assert "Abort requested by erin (abort runbook): window closed" in notes

    again = run("abort", tmp_path, system=system, operator="erin")  # nothing left to abort
    assert again["outcome"] == "stopped" and len(sessions(system)) == 1


# --- status.ipynb and readiness-check.ipynb ---------------------------------------------


def test_status_runbook_shows_everything_and_changes_nothing(tmp_path: Path) -> None:
    import papermill

    system = target()
    driver = split_session(system)
    version = driver.store.version()
    with Journal.open(system) as journal:
        head = journal.head()
    out = tmp_path / "status.ipynb"
    nb = papermill.execute_notebook(str(RUNBOOKS / "status.ipynb"), str(out),
                                    parameters={"system": system}, kernel_name="python3",
                                    cwd=str(RUNBOOKS), progress_bar=False)
    shown = "\n".join(str(o.get("data", {}).get("text/html", ""))
                      for c in nb.cells for o in c.get("outputs", []))
    for words in ("Split", "OS Up", "Enclosure 1: Upgrade side", "Modules", "Disks",
                  "Software", "10.0.20348.2762", "installing OrderDB 12.5.0"):
        assert words in shown, words
    result = result_from_notebook(nb)
    assert result is not None and result["outcome"] == "checked"
    assert driver.store.version() == version
    with Journal.open(system) as journal:
        assert journal.head() == head


def test_readiness_check_passes_on_a_healthy_system(tmp_path: Path) -> None:
    system = target()
    result = run("readiness-check", tmp_path, system=system)
    assert result["outcome"] == "checked" and "0 failed" in result["message"]


def test_readiness_check_fails_on_a_bad_scenario(tmp_path: Path) -> None:
    system = target()
    error = fails("readiness-check", tmp_path, system=system, scenario="module-broken")
    assert "readiness check" in error.evalue and "module-health" in error.evalue


def test_a_failed_run_leaves_a_complete_record_without_machine_paths(tmp_path: Path,
                                                                     ftkit_dirs: Any) -> None:
    """The run fails (exit non-zero, outcome failed) and its HTML still has the failing step
    with its way on, the timeline, the activity log and the facts; no traceback, no path
    of this machine, nothing loaded from the network."""
    import re

    from ftkit.archive import read_ledger
    from ftkit.errors import FtkitError
    from ftkit.runner import run_runbook

    system = target()
    driver = create_system(system)
    driver.inject("installer-fail")
    with pytest.raises(FtkitError, match="the run stopped: Broken at Install"):
        run_runbook("active-upgrade", upgrade(system, decisions=ALL),
                    reports=ftkit_dirs.reports)
    [entry] = read_ledger(ftkit_dirs.reports)
    assert entry.outcome == "failed" and entry.change_id == "CHG-NB"
    page = (ftkit_dirs.reports / str(entry.html)).read_text()
    text = re.sub(r"<[^>]+>", " ", page)
    for shown in ("Broken at Install", "exited with code 1603", "Retry",
                  "Timeline and activity log", "Install failed", "lost transactions"):
        assert shown in text, shown
    assert "Traceback" not in text and "site-packages" not in text
    for path in (str(REPO), str(Path.home()), str(tmp_path), "/tmp/"):
        assert path not in page, path
    assert not re.search(r"""(src|href)=["']https?://""", page)


def test_the_app_archives_a_record_only_once_its_change_ended(
        tmp_path: Path, sim: SimDriver, monkeypatch: pytest.MonkeyPatch) -> None:
    """``record_app_run`` (what an ``ftkit app`` page calls when its session ends): nothing
    outside an app; refused, nothing archived, while the change has no ended session (its
    record would run the upgrade)."""
    import json

    from ftkit.errors import FtkitError
    from ftkit.runner import APP_PARAMETERS, APP_RUNBOOK, record_app_run, resolve_runbook

    monkeypatch.delenv(APP_RUNBOOK, raising=False)
    assert record_app_run(reports=tmp_path / "reports") is None
    monkeypatch.setenv(APP_RUNBOOK, str(resolve_runbook("active-upgrade")))
    monkeypatch.setenv(APP_PARAMETERS, json.dumps({
        "system": sim.target, "change_id": "CHG-APP-1", "operator": "alice"}))
    with pytest.raises(FtkitError, match="change CHG-APP-1 has no ended session"):
        record_app_run(reports=tmp_path / "reports")
    assert not (tmp_path / "reports").exists()
