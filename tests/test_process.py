"""The Active Upgrade process against the simulator: transitions, the fault matrix, resume.

Every test checks the invariants (docs/DOMAIN.md#invariants) through public interfaces
(Session, driver status, journal). The fault matrix is a table: each row names a fault,
where it fires, the step that goes Broken, how the operator recovers, and what the end
must look like.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import CONFIG, ORIGINAL, PACKAGES, UPGRADED
from conftest import DECISIONS as COMMIT
from drive import finish, request, retry

from ftkit.decisions import ParameterDecisions
from ftkit.errors import PackageError, SessionBusyError, StepFailedError, TransitionError
from ftkit.model import MirrorState, UpgradeState
from ftkit.process import open_session
from ftkit.sim.driver import create_system

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FTKIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def new_session(home: Path, **kw: object):
    target = f"sim://p-{uuid.uuid4().hex[:8]}"
    driver = create_system(target, **kw)  # type: ignore[arg-type]
    session = open_session(driver, CONFIG, PACKAGES, change_id="CHG-T", operator="tester",
                           reason="test")
    return driver, session


def software(driver) -> list[dict[str, str]]:
    boot = driver.status().boot_disk()
    return [{k: boot.members[e].software[k] for k in ORIGINAL} for e in (0, 1)]


def assert_end(driver, session, *, outcome: str, outages: int, fault_outage: bool = False) -> None:
    """Invariants 1-3 (docs/DOMAIN.md#invariants) at the end of a session."""
    st = driver.status()
    assert session.record.outcome == outcome
    assert session.upgrade_state is UpgradeState.IDLE
    assert driver.lost_transactions() == 0  # invariant 1
    want = UPGRADED if outcome == "committed" else ORIGINAL
    assert software(driver) == [want, want]  # invariant 2
    assert not st.split and st.duplex
    assert all(m.state is MirrorState.MIRRORED for m in st.mirrors.values())
    measured = session.outages()
    assert len(measured) == outages, measured  # invariant 3
    for outage in measured:
        assert outage.seconds is not None, measured
        # the merge outage is brief (< 1 min); an abort after merge costs one restart
        limit = 60 if outage.after is not None and outage.after != outage.before else 360
        if fault_outage:  # a failed Production side is down until it is repaired
            limit = 3600
        assert outage.seconds < limit, measured


# --- the happy paths and the transitions ---------------------------------------------


def test_commit_end_to_end_one_brief_outage(home: Path) -> None:
    driver, session = new_session(home)
    acked_before = driver.acknowledged()
    assert session.run(ParameterDecisions(COMMIT), soak_minutes=30) == "committed"
    assert driver.acknowledged() > acked_before
    assert_end(driver, session, outcome="committed", outages=1)
    assert session.journal.verify() > 20


@pytest.mark.parametrize(
    ("answers", "outcome", "outages"),
    [
        ({"split": "stop"}, "stopped", 0),
        ({"split": "proceed", "merge": "abort"}, "aborted", 0),
        ({"split": "proceed", "merge": "proceed", "commit": "abort"}, "aborted", 2),
    ],
    ids=["stop-before-split", "abort-before-merge", "abort-after-merge"],
)
def test_abort_paths(home: Path, answers: dict[str, str], outcome: str, outages: int) -> None:
    driver, session = new_session(home)
    assert session.run(ParameterDecisions(answers), soak_minutes=5) == outcome
    assert_end(driver, session, outcome=outcome, outages=outages)


def test_requests_out_of_order_are_refused_and_change_nothing(home: Path) -> None:
    driver, session = new_session(home)
    with pytest.raises(TransitionError, match="needs a session"):
        request(session, "ExecuteSplit")
    request(session, "PrepareSplit")
    version = driver.store.version()
    for name in ("PrepareMerge", "ExecuteMerge", "Commit", "Finish", "Install"):
        with pytest.raises(TransitionError, match="not allowed in PrepareSplit"):
            request(session, name)
    assert driver.store.version() == version
    assert session.upgrade_state is UpgradeState.PREPARE_SPLIT


def test_abort_is_refused_once_commit_started(home: Path) -> None:
    driver, session = new_session(home)
    driver.inject("resync-fail", point="commit")
    with pytest.raises(StepFailedError):
        session.run(ParameterDecisions(COMMIT))
    assert session.upgrade_state is UpgradeState.COMMIT
    with pytest.raises(TransitionError, match="refused once Commit"):
        request(session, "Abort")
    retry(session)
    assert finish(session) == "committed"
    assert_end(driver, session, outcome="committed", outages=1)


def test_one_session_per_system(home: Path) -> None:
    driver, session = new_session(home)
    request(session, "PrepareSplit")
    again = open_session(driver.target, CONFIG, PACKAGES, operator="other",
                         handover=True)  # another operator takes it over, explicitly
    assert again.resumed and again.record.id == session.record.id
    with pytest.raises(SessionBusyError):
        again.journal.begin_session(change_id="x", operator="y", reason="z")


def test_unsupported_package_refused_before_split(home: Path) -> None:
    target = f"sim://p-{uuid.uuid4().hex[:8]}"
    driver = create_system(target)
    bad = ROOT / "examples" / "packages" / "unsupported" / "bios-update.toml"
    session = open_session(driver, CONFIG, [*PACKAGES, bad])
    version = driver.store.version()
    with pytest.raises(PackageError, match="firmware"):
        session.run(ParameterDecisions(COMMIT))
    assert driver.store.version() == version and not driver.status().split
    assert session.record is None  # no session was started


# --- the fault matrix -------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    fault: str
    point: str
    side: str
    broken_at: str  # the request that goes Broken
    recover: str  # "retry" | "repair+retry" | "abort" | "repair+abort"
    outcome: str
    outages: int  # outages measured over the whole session
    target: str = ""


MATRIX = [
    Row("module-fail", "split", "upgrade", "ExecuteSplit", "repair+retry", "committed", 1),
    Row("module-fail", "split", "production", "ExecuteSplit", "repair+retry", "committed", 1),
    Row("module-fail", "install", "upgrade", "Install", "repair+retry", "committed", 1),
    Row("module-fail", "install", "upgrade", "Install", "repair+abort", "aborted", 0),
    Row("module-fail", "install", "production", "Install", "repair+retry", "committed", 2),
    Row("module-fail", "merge", "production", "ExecuteMerge", "repair+retry", "committed", 2),
    Row("module-fail", "merge", "upgrade", "ExecuteMerge", "repair+abort", "aborted", 0),
    # after the merge the Upgrade side serves; the Production side (shut down) is spare
    Row("module-fail", "commit", "upgrade", "Commit", "repair+retry", "committed", 2),
    Row("module-fail", "commit", "production", "Commit", "repair+retry", "committed", 1),
    Row("installer-fail", "install", "upgrade", "Install", "retry", "committed", 1),
    Row("installer-fail", "install", "upgrade", "Install", "abort", "aborted", 0),
    Row("installer-hang", "install", "upgrade", "Install", "retry", "committed", 1),
    Row("hang-shutdown", "reboot", "upgrade", "Install", "retry", "committed", 1),
    Row("hang-post", "reboot", "upgrade", "Install", "retry", "committed", 1),
    Row("hang-boot", "reboot", "upgrade", "Install", "abort", "aborted", 0),
    Row("service-stop-refused", "split", "upgrade", "ExecuteSplit", "retry", "committed", 1),
    Row("service-stop-refused", "merge", "production", "ExecuteMerge", "retry", "committed", 1),
    Row("service-stop-refused", "merge", "production", "ExecuteMerge", "abort", "aborted", 0),
    Row("service-start-refused", "merge", "upgrade", "ExecuteMerge", "retry", "committed", 1),
    Row("service-start-refused", "merge", "upgrade", "ExecuteMerge", "abort", "aborted", 1),
    Row("action-fail", "action", "production", "ExecuteMerge", "retry", "committed", 1),
    Row("action-timeout", "action", "production", "ExecuteMerge", "abort", "aborted", 0),
    Row("resync-fail", "commit", "upgrade", "Commit", "retry", "committed", 1),
    Row("disk-fail", "install", "upgrade", "Install", "repair+retry", "committed", 1, "data0"),
]


@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.fault}@{r.point}:{r.side}->{r.recover}")
def test_fault_matrix(home: Path, row: Row) -> None:
    driver, session = new_session(home)
    driver.inject(row.fault, point=row.point, side=row.side, target=row.target)
    with pytest.raises(StepFailedError) as caught:
        session.run(ParameterDecisions(COMMIT), soak_minutes=5)
    assert caught.value.step == row.broken_at
    assert session.broken is not None and session.broken[0] == row.broken_at
    assert driver.lost_transactions() == 0  # nothing lost, even mid-fault
    with pytest.raises(TransitionError):  # nothing advances while Broken
        request(session, _next_after(row.broken_at))
    if row.recover.startswith("repair"):
        driver.repair()
    if row.recover.endswith("retry"):
        retry(session)
        assert session.run(ParameterDecisions(COMMIT), soak_minutes=5) == row.outcome
    else:
        request(session, "Abort")
        assert finish(session) == row.outcome
    assert_end(driver, session, outcome=row.outcome, outages=row.outages,
               # the failed module took down the side that served: down until repaired
               fault_outage=row.fault == "module-fail" and row.outages == 2)


def _next_after(request: str) -> str:
    order = ["PrepareSplit", "ExecuteSplit", "Install", "PrepareMerge", "ExecuteMerge",
             "Commit", "Finish"]
    return order[order.index(request) + 1]


@pytest.mark.parametrize(("answer", "outcome"), [("retry", "committed"), ("abort", "aborted")])
def test_a_broken_session_is_answered_by_the_broken_decision(home: Path, answer: str,
                                                             outcome: str) -> None:
    driver, session = new_session(home)
    driver.inject("installer-fail")
    with pytest.raises(StepFailedError, match="Install"):
        session.run(ParameterDecisions(COMMIT, operator="tester"))
    assert session.broken is not None and session.broken[0] == "Install"

    # a later automated run must be told what to do: no silent retry, no silent abort
    with pytest.raises(StepFailedError) as info:
        session.run(ParameterDecisions(COMMIT, operator="tester"))
    assert "broken: retry" in info.value.remedy and session.broken is not None

    # the installer fault fired once: its cause is gone, as after the operator's fix
    decisions = ParameterDecisions({**COMMIT, "broken": answer}, operator="night-shift",
                                   reason="installer log read, disk space freed")
    assert session.run(decisions) == outcome
    assert session.decision("broken").answer == answer
    assert session.decision("broken").who == "night-shift"
    assert_end(driver, session, outcome=outcome, outages=1 if answer == "retry" else 0)


def test_production_side_down_while_split_refuses_abort_until_repaired(home: Path) -> None:
    """No choice may overwrite the only up-to-date copy of the data
    (docs/DOMAIN.md#faults-while-split)."""
    driver, session = new_session(home)
    driver.inject("module-fail", point="install", side="production")
    with pytest.raises(StepFailedError):
        session.run(ParameterDecisions(COMMIT))
    assert driver.status().apps_on is None  # an outage: recorded, ongoing
    assert session.outages()[-1].end is None
    with pytest.raises(StepFailedError, match="Production side"):
        request(session, "Abort")
    driver.repair()
    request(session, "Abort")
    assert finish(session) == "aborted"
    assert_end(driver, session, outcome="aborted", outages=1, fault_outage=True)


def test_production_side_down_while_split_applications_restart_on_the_upgrade_side(
        home: Path) -> None:
    """The other way out (docs/DOMAIN.md#faults-while-split): the Upgrade side takes the
    Production data at merge."""
    driver, session = new_session(home)
    driver.inject("module-fail", point="install", side="production")
    decisions = ParameterDecisions({**COMMIT, "broken": "retry"}, operator="tester")
    with pytest.raises(StepFailedError):
        session.run(decisions)
    assert driver.status().apps_on is None  # outage: the Production side had no partner

    retry(session)  # the Upgrade side is healthy: Install goes through
    session.advance(decisions)  # merge: proceed, and the PrepareMerge it leads to
    request(session, "ExecuteMerge")
    st = driver.status()
    assert st.apps_on == 1 and st.merged and driver.lost_transactions() == 0
    (outage,) = session.outages()
    assert outage.end is not None  # over once the applications ran on the Upgrade side

    # Commit would resync onto the failed enclosure and could not be aborted: refused,
    # and nothing changes
    version = driver.store.version()
    with pytest.raises(TransitionError, match="Commit refused while an enclosure is down"):
        request(session, "Commit")
    assert session.upgrade_state is UpgradeState.MERGE and session.broken is None
    assert driver.store.version() == version

    driver.repair()
    session.advance(decisions)  # commit: commit, and the Commit it leads to
    assert finish(session) == "committed"
    assert_end(driver, session, outcome="committed", outages=1, fault_outage=True)


# --- a process killed at any point ------------------------------------------------------


def _upgrade_child(home: str, target: str) -> None:
    os.environ["FTKIT_HOME"] = home
    session = open_session(target, CONFIG, PACKAGES, change_id="CHG-K", operator="child")
    session.run(ParameterDecisions(COMMIT), soak_minutes=10)


@pytest.mark.parametrize("kill_after", [0.3, 0.9, 1.6, 2.4])
def test_killed_process_is_resumed_to_a_correct_end(home: Path, kill_after: float) -> None:
    target = f"sim://k-{uuid.uuid4().hex[:8]}"
    driver = create_system(target, time_scale=0.0015)  # about 12 s of wall time in all
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_upgrade_child, args=(str(home), target))
    child.start()
    time.sleep(kill_after)
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join()
    with driver.store.transaction() as txn:  # finish the rest instantly
        txn.sim.time_scale = 0.0
    session = open_session(target, CONFIG, PACKAGES, operator="resumer", handover=True)
    outcome = session.run(ParameterDecisions(COMMIT), soak_minutes=10)
    assert outcome == "committed"
    assert_end(driver, session, outcome="committed", outages=1)
    merges = [e for e in session.journal.entries(session.record.id, kinds=["action"])
              if e.detail.get("ok") and e.detail.get("action") == "quiesce-orderdb"]
    assert len(merges) == 1  # a custom action that succeeded is never run twice
    assert len(session.journal.sessions()) == 1


def test_a_record_cites_its_own_session_not_a_later_one(home: Path) -> None:
    """The result's journal anchor is its session's last entry, even when another session
    of the same system has written since (its entries may not be on disk yet)."""
    driver, first = new_session(home)
    first.run(ParameterDecisions({"split": "stop"}, operator="tester"))
    mine = first.entries()[-1]
    later = open_session(driver, CONFIG, PACKAGES, change_id="CHG-LATER", operator="other",
                         reason="test")
    request(later, "PrepareSplit")  # a newer session's entries after the first's end
    result = first.result(mode="auto").to_dict()
    assert (result["journal_entry"], result["journal_hash"]) == (mine.id, mine.hash)
    later.close()
