"""A lost journal recovered in every upgrade state: drive a simulated system there, delete
its journal, ``ftkit recover``, then the documented way on (the upgrade runbook's path or
the abort runbook's) ends right: one outcome, no transaction lost, the right software on
both system disks, duplex, the outages the path costs."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

import pytest
from conftest import CONFIG, DECISIONS, ORIGINAL, PACKAGES, UPGRADED

from ftkit.cli import main
from ftkit.decisions import ParameterDecisions
from ftkit.errors import TransitionError
from ftkit.flow import check_path
from ftkit.journal import Journal
from ftkit.model import MirrorState, Request, UpgradeState
from ftkit.process import Session, open_session, standing
from ftkit.recovery import adopt, seen
from ftkit.sim.driver import SimDriver

ABORT_AFTER = {**DECISIONS, "commit": "abort"}


class Killed(BaseException):  # as a kill: no step sees it as its own failure
    """Raised from a progress callback: the request stops part way, as a killed process."""


def kill_when(test: Callable[[SimDriver], bool], driver: SimDriver
              ) -> Callable[[str, float, float], None]:
    def progress(label: str, done: float, total: float) -> None:
        if test(driver):
            raise Killed(label)
    return progress


def resync_at(share: float) -> Callable[[SimDriver], bool]:
    """True once some mirror is resyncing and SHARE of the way there."""
    def test(driver: SimDriver) -> bool:
        return any(m.state is MirrorState.RESYNCING and m.progress >= share
                   for m in driver.status().mirrors.values())
    return test


def drive(sim: SimDriver, to: str) -> None:
    """Take a new session of SIM to TO through the public API, then lose its journal."""
    session = open_session(sim, CONFIG, PACKAGES, change_id="CHG-LOST", operator="alice",
                           reason="monthly patches")
    done = to.endswith("Done")  # the request's resync completes, Finish is not run
    to = to.removesuffix("Done")
    early = to == "AbortBeforeMerge"  # merge: abort, the Abort killed part way
    to = "Abort" if early else to
    answers = ParameterDecisions({"split": "proceed", "merge": "abort"} if early
                                 else ABORT_AFTER if to == "Abort" else DECISIONS)
    # a decision's step runs the request its answer leads to (the engine's one call)
    steps: list[tuple[str, str]] = [
        ("request", "PrepareSplit"), ("decide", "split"), ("request", "Install"),
        ("decide", "merge"), ("request", "ExecuteMerge"), ("decide", "commit")]
    if early:
        steps = [*steps[:3], ("request", "Abort")]
    stop = {"PrepareSplit": 1, "Split": 3, "PrepareMerge": 4, "ExecuteMerge": 5, "Merge": 5,
            "Commit": 6, "Abort": 6 if not early else 4}[to]
    for kind, name in steps[:stop]:
        if (to, name) == ("ExecuteMerge", "ExecuteMerge"):  # applications stopped, no more
            session.progress = kill_when(lambda d: d.status().apps_on is None, sim)
        elif to in ("Commit", "Abort") and name in (to, "commit"):  # the red team's 47 %
            session.progress = kill_when(resync_at(0.47), sim)
        with contextlib.suppress(Killed):
            if kind == "decide":
                session.advance(answers)
            else:
                session.advance(request=name)
    if done:
        (sim.commit if to == "Commit" else sim.abort)()
    lose_journal(session)


def lose_journal(session: Session) -> None:
    path = session.journal.path
    session.journal.close()
    for file in path.parent.glob(f"{path.name}*"):
        file.unlink()


def assert_ended_right(sim: SimDriver, outcome: str, outages: int) -> None:
    st = sim.status()
    with Journal.open(sim.target) as journal:
        journal.verify()
        sessions = journal.sessions()
    assert [s.outcome for s in sessions] == [outcome]  # one session, one outcome
    assert sim.lost_transactions() == 0
    assert st.duplex and not st.merged and st.unfinished is None
    assert all(m.state is MirrorState.MIRRORED for m in st.mirrors.values())
    expected = UPGRADED if outcome == "committed" else ORIGINAL
    for member in st.boot_disk().members.values():
        assert {k: member.software[k] for k in expected} == expected
    found = sim.outages()
    assert len(found) == outages and all(o.end is not None for o in found), found


def recover(sim: SimDriver) -> Session:
    return adopt(sim, operator="bob", reason="journal lost")


def test_a_healthy_idle_system_has_nothing_to_recover(sim: SimDriver) -> None:
    """PrepareSplit staged the packages and changed nothing else: recover refuses (one
    line, nothing written); a new upgrade is the way on, and stages nothing twice."""
    drive(sim, "PrepareSplit")
    before = sim.store.version()
    with pytest.raises(TransitionError, match="nothing to recover") as refused:
        recover(sim)
    assert "a healthy duplex Idle system" in refused.value.message
    assert sim.store.version() == before
    with Journal.open(sim.target) as journal:
        assert journal.sessions() == []
    session = open_session(sim, CONFIG, PACKAGES, change_id="CHG-NEW", operator="bob",
                           reason="again")
    assert session.run(ParameterDecisions(DECISIONS)) == "committed"
    assert_ended_right(sim, "committed", outages=1)


@pytest.mark.parametrize(("to", "state", "broken", "answers", "outcome", "outages"), [
    pytest.param("Split", "Split", None, {"merge": "proceed", "commit": "commit"},
                 "committed", 1, id="Split-commit"),
    pytest.param("PrepareMerge", "Split", None, {"merge": "abort"}, "aborted", 0,
                 id="PrepareMerge-abort"),
    pytest.param("ExecuteMerge", "PrepareMerge", "ExecuteMerge",
                 {"broken": "retry", "commit": "commit"}, "committed", 1,
                 id="ExecuteMerge-part-way-retry"),
    pytest.param("Merge", "Merge", None, {"commit": "commit"}, "committed", 1,
                 id="Merge-commit"),
    pytest.param("Commit", "Commit", "Commit", {"broken": "retry"}, "committed", 1,
                 id="Commit-part-way-retry"),
    pytest.param("CommitDone", "Commit", None, {}, "committed", 1,
                 id="Commit-resynced-finish"),
])
def test_recovered_then_the_upgrade_runbooks_path_ends_right(
        sim: SimDriver, to: str, state: str, broken: str | None, answers: dict[str, str],
        outcome: str, outages: int) -> None:
    drive(sim, to)
    rescued = recover(sim)
    assert rescued.upgrade_state.value == state
    assert (rescued.broken or (None,))[0] == broken
    rescued.close()
    # the auto run's first check: the decisions the state implies stand, only the open
    # ones are needed (and, for a request part way, broken: retry or abort)
    check_path(answers, **standing(sim.target))
    session = open_session(sim, CONFIG, PACKAGES, change_id="CHG-FIX", operator="bob",
                           reason="journal lost")
    assert session.resumed and session.run(ParameterDecisions(answers)) == outcome
    assert_ended_right(sim, outcome, outages)


@pytest.mark.parametrize(("to", "state", "outages"), [
    pytest.param("Split", "Split", 0, id="Split"),
    pytest.param("ExecuteMerge", "PrepareMerge", 1, id="ExecuteMerge-part-way"),
    pytest.param("Merge", "Merge", 2, id="Merge"),
    pytest.param("Abort", "Abort", 2, id="Abort-part-way"),
    pytest.param("AbortDone", "Abort", 2, id="Abort-resynced-finish"),
    pytest.param("AbortBeforeMerge", "Abort", 0, id="Abort-before-merge-part-way"),
])
def test_recovered_then_the_abort_runbooks_path_ends_right(
        sim: SimDriver, to: str, state: str, outages: int) -> None:
    drive(sim, to)
    rescued = recover(sim)
    assert rescued.upgrade_state.value == state
    rescued.close()
    session = open_session(sim, CONFIG, change_id="", operator="carol", reason="give up",
                           handover=True)
    assert session.abort_and_finish(who="carol", why="give up") == "aborted"
    assert_ended_right(sim, "aborted", outages)


def test_a_recovered_commit_refuses_abort_and_carries_on(sim: SimDriver) -> None:
    """The red team's case: the journal deleted during Commit, the resync part way."""
    drive(sim, "Commit")
    st = sim.status()
    assert st.unfinished is Request.COMMIT and not st.split
    found = seen(st)
    assert (found.state, found.interrupted) == (UpgradeState.COMMIT, "Commit")
    assert "the commit is part way: RDR resync at system0 " in found.what
    rescued = recover(sim)
    rescued.close()
    session = open_session(sim, CONFIG, operator="carol", reason="abort?", handover=True)
    before = sim.store.version()
    with pytest.raises(TransitionError, match="Abort is refused once Commit has started"):
        session.abort_and_finish(who="carol", why="abort?")
    assert sim.store.version() == before  # refused: nothing changed
    assert session.broken is not None and session.broken[0] == "Commit"
    session.close()
    session = open_session(sim, CONFIG, PACKAGES, change_id="CHG-FIX", operator="bob",
                           reason="finish the commit", handover=True)
    assert session.run(ParameterDecisions({"broken": "retry"})) == "committed"
    assert_ended_right(sim, "committed", outages=1)


def test_recover_is_refused_beside_an_unfinished_session(sim: SimDriver) -> None:
    drive(sim, "Split")
    recover(sim).close()
    with pytest.raises(TransitionError, match="has an unfinished session"):
        recover(sim)


def test_idle_with_leftovers_needs_finish(sim: SimDriver) -> None:
    """A duplex system the upgrade left unfinished with nothing the driver names as
    unfinished (a resync still running, the split's saved startup types): recovered in
    Commit or Abort as the serving side's software says, Broken while the resync runs."""
    drive(sim, "Commit")
    with sim.store.transaction() as txn:  # as a driver that keeps no marker would show it
        txn.sim.marker = None
    found = seen(sim.status())
    assert (found.state, found.interrupted) == (UpgradeState.COMMIT, "Commit")
    recover(sim).close()
    session = open_session(sim, CONFIG, PACKAGES, change_id="CHG-FIX", operator="bob",
                           reason="finish")
    assert session.run(ParameterDecisions({"broken": "retry"})) == "committed"
    assert_ended_right(sim, "committed", outages=1)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_recover_then_abort_runbook_mid_abort(
        sim: SimDriver, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the command line: ``ftkit recover`` of an abort part way, then ``ftkit run
    abort`` (papermill) carries the abort on and finishes it."""
    drive(sim, "Abort")
    code, out, err = cli(capsys, "recover", sim.target, "--operator", "bob", "--reason",
                         "journal lost")
    assert code == 0, err
    assert "in Abort / Broken at Abort" in out and "ftkit run abort" in out
    code, out, err = cli(capsys, "run", "abort", "-p", "system", sim.target, "-p",
                         "operator", "bob", "-p", "reason", "journal lost")
    assert code == 0, out + err
    assert_ended_right(sim, "aborted", outages=2)
    code, out, err = cli(capsys, "status", sim.target, "--json")
    assert json.loads(out)["upgrade_state"] == "Idle"


def test_cli_recover_refuses_then_adopts_a_commit(
        sim: SimDriver, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "recover", sim.target, "--operator", "bob", "--reason", "r")
    assert code == 2 and "there is nothing to recover" in err and len(err.splitlines()) == 1
    drive(sim, "Commit")
    code, out, err = cli(capsys, "recover", sim.target, "--operator", "bob", "--reason",
                         "journal lost")
    assert code == 0, err
    assert "in Commit / Broken at Commit" in out and "RDR resync at system0" in out
    assert "Abort is refused once Commit has started" in out
    with Journal.open(sim.target) as journal:
        record = journal.current_session()
        assert record is not None and record.data["recovered"]["unfinished"] == "Commit"
        decided = {e.detail["name"]: (e.detail["answer"], e.detail["source"])
                   for e in journal.entries(record.id, kinds=["decision"])}
    assert decided == {"split": ("proceed", "recovered"), "merge": ("proceed", "recovered"),
                       "commit": ("commit", "recovered")}


@pytest.mark.slow
def test_cli_recover_then_upgrade_runbook_finishes_the_commit(
        sim: SimDriver, capsys: pytest.CaptureFixture[str]) -> None:
    """The red team's case end to end: the journal deleted during Commit; ``ftkit
    recover``; the abort runbook is refused (nothing changes); ``ftkit run active-upgrade``
    with ``broken: retry`` carries the resync on and finishes: committed."""
    drive(sim, "Commit")
    code, out, err = cli(capsys, "recover", sim.target, "--operator", "bob", "--reason",
                         "journal lost")
    assert code == 0, err
    before = sim.store.version()
    code, out, err = cli(capsys, "run", "abort", "-p", "system", sim.target, "-p",
                         "operator", "bob", "-p", "reason", "abort?")
    assert code == 1 and "Abort is refused once Commit has started" in out + err
    assert sim.store.version() == before
    code, out, err = cli(capsys, "run", "active-upgrade", "-p", "system", sim.target,
                         "-p", "mode", "auto", "-p", "decisions", "{broken: retry}",
                         "-p", "change_id", "CHG-FIX", "-p", "operator", "bob",
                         "-p", "soak_minutes", "0")
    assert code == 0, out + err
    with Journal.open(sim.target) as journal:
        outcomes = [s.outcome for s in journal.sessions()]
    assert outcomes == ["committed"]
    assert_ended_right(sim, "committed", outages=1)


def test_before_recover_the_runbooks_name_it(sim: SimDriver) -> None:
    """A system split with its journal lost: the abort runbook's step fails naming ``ftkit
    recover`` (never "nothing to abort"), and the readiness check's remedy names it; neither
    changes anything."""
    from ftkit.checks import run_checks
    from ftkit.config import load_config
    from ftkit_widgets.runbook import abort_session

    drive(sim, "Merge")
    before = sim.store.version()
    session = open_session(sim, CONFIG, operator="carol", reason="give up", handover=True)
    with pytest.raises(TransitionError, match="journal was lost") as failed:
        abort_session(session, operator="carol", reason="give up")
    assert "ftkit recover" in failed.value.remedy
    assert session.record is None
    session.close()
    no_session = [r for r in run_checks(sim, load_config(CONFIG), [])
                  if r.check == "no-session"]
    assert no_session[0].status == "fail" and "ftkit recover" in no_session[0].remedy
    assert sim.store.version() == before
