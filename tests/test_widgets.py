"""The widgets (ftkit_widgets) on real simulated sessions, driven the way an operator does:
``.click()`` on buttons, values typed into fields; assertions on the widgets' traits and
on the journal."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFIG, PACKAGES
from conftest import DECISIONS as ALL
from drive import finish, request

import ftkit_widgets as fw
from ftkit.checks import CheckResult, CheckStatus
from ftkit.decisions import ParameterDecisions
from ftkit.errors import DecisionError, FtkitError, StepFailedError
from ftkit.model import UpgradeState
from ftkit.process import Session, open_session
from ftkit.sim.driver import SimDriver
from ftkit_widgets import decide, runbook, views

REPO = Path(__file__).resolve().parents[1]



@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What the runbook helpers display (instead of printing reprs to stdout)."""
    out: list[Any] = []
    for module in (decide, runbook, views):
        monkeypatch.setattr(module, "display", lambda *objs, **_kw: out.extend(objs))
    return out


def text(markup: str) -> str:
    """What a reader sees of some HTML: tags dropped, entities decoded, spaces folded."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup)))


def decisions_in_journal(session: Session) -> list[dict[str, Any]]:
    assert session.record is not None
    return [e.detail for e in session.journal.entries(session.record.id, kinds=["decision"])]


def split_broken(session: Session, sim: SimDriver, *, times: int = 1) -> None:
    """PrepareSplit, decide to split, then ExecuteSplit fails: Broken at ExecuteSplit."""
    request(session, "PrepareSplit")
    sim.inject("service-stop-refused", point="split", times=times)
    with pytest.raises(StepFailedError):  # split: proceed, and the ExecuteSplit it leads to
        session.advance(ParameterDecisions({"split": "proceed"}, operator="tester"))
    assert session.broken is not None


def fill(panel: Any, operator: str = "alice", reason: str = "change window open") -> None:
    panel.operator.value = operator
    panel.reason.value = reason


# --- DecisionPanel -------------------------------------------------------------------


def test_decision_panel_click_journals_who_why_and_source(session: Session) -> None:
    request(session, "PrepareSplit")
    panel = fw.DecisionPanel(session, "split")
    # each answer says what it costs, from the declared estimates
    assert [b.description for b in panel.buttons.values()] == [
        "Proceed — no outage, about 26 min", "Stop — no outage"]
    assert "runs ExecuteSplit, Install" in text(panel.help.value)
    assert "Split the system" in panel.question.value
    # typed per decision: the session's reason is offered, never carried over
    assert panel.reason.value == "" and "(e.g. test)" in panel.reason.placeholder
    assert "upgrade state PrepareSplit" in text(panel.state.value)
    assert not panel.done
    fill(panel)
    panel.buttons["proceed"].click()

    assert panel.decision is not None and panel.decision.answer == "proceed"
    assert panel.done
    assert all(b.disabled for b in panel.buttons.values())
    said = text(panel.message.value)
    assert "Decided proceed by alice (change window open), journaled; ExecuteSplit done" \
        in said  # said once, in one place
    assert text(panel.html()).count("proceed by alice") == 1
    (entry,) = decisions_in_journal(session)
    assert entry["name"] == "split" and entry["answer"] == "proceed"
    assert entry["who"] == "alice" and entry["why"] == "change window open"
    assert entry["source"] == "widget" and entry["where"].startswith("widget on ")
    assert re.search(r"Status at decision, \d\d:\d\d \(UTC[+-]\d\d:\d\d\)",
                     text(panel.state.value))
    assert panel.operator.disabled and panel.reason.disabled
    journaled = session.decision("split")
    assert journaled is not None and journaled.who == "alice" and journaled.source == "widget"
    # the answer ran the request it leads to, in the same engine call
    assert session.due("Install") and not session.needs_decision("split")


@pytest.mark.parametrize(("operator", "reason", "missing"), [
    ("", "window open", "operator"),
    ("alice", "  ", "reason"),
    ("", "", "operator and the reason"),
])
def test_decision_panel_refuses_empty_operator_or_reason(session: Session, operator: str,
                                                         reason: str, missing: str) -> None:
    request(session, "PrepareSplit")
    panel = fw.DecisionPanel(session, "split")
    fill(panel, operator, reason)
    panel.buttons["stop"].click()

    assert panel.decision is None and not panel.done
    assert f"enter the {missing} first" in text(panel.message.value)
    assert "not recorded" in text(panel.message.value)
    assert decisions_in_journal(session) == []
    assert not any(b.disabled for b in panel.buttons.values())


def test_decision_panel_second_click_records_nothing_more(session: Session) -> None:
    request(session, "PrepareSplit")
    panel = fw.DecisionPanel(session, "split")
    fill(panel)
    panel.buttons["proceed"].click()
    panel.buttons["stop"].click()  # disabled in the browser; a programmatic click is refused
    assert panel.decision is not None and panel.decision.answer == "proceed"
    assert "decided already" in text(panel.message.value)
    assert len(decisions_in_journal(session)) == 1


def test_decision_panel_broken_shows_retry_and_abort_and_retry_works(
        session: Session, sim: SimDriver) -> None:
    split_broken(session, sim)
    panel = fw.DecisionPanel(session, "split")
    assert panel.recovery.layout.display == "" and panel.choices.layout.display == "none"
    assert "Broken at ExecuteSplit" in text(panel.message.value)
    assert "Broken" in text(panel.state.value)

    fill(panel, reason="service freed")
    panel.recovery.retry_button.click()

    assert session.broken is None
    assert session.upgrade_state is UpgradeState.SPLIT and sim.status().split
    assert panel.recovery.last == "retry"
    assert "Retry succeeded" in text(panel.recovery.message.value)
    assert panel.done and panel.decision is None  # the split question went away
    assert panel.recovery.layout.display == "none"
    assert asyncio.run(panel.wait(1)) is None
    (_split, broken) = decisions_in_journal(session)  # the click is a journaled decision
    assert (broken["name"], broken["answer"], broken["who"], broken["why"], broken["source"]) \
        == ("broken", "retry", "alice", "service freed", "widget")


def test_decision_panel_broken_abort_button_aborts(session: Session, sim: SimDriver) -> None:
    split_broken(session, sim)
    panel = fw.DecisionPanel(session, "split")
    fill(panel, reason="give up tonight")
    panel.recovery.abort_button.click()

    assert panel.recovery.last == "abort"
    assert session.upgrade_state is UpgradeState.ABORT and session.broken is None
    assert session.due("Finish")
    assert finish(session) == "aborted"
    assert not sim.status().split and sim.lost_transactions() == 0


def test_retry_failure_is_shown_in_the_panel_not_swallowed(session: Session,
                                                          sim: SimDriver) -> None:
    split_broken(session, sim, times=2)  # the service refuses twice
    panel = fw.RecoveryPanel(session)
    panel.operator.value, panel.reason.value = "bob", "try again"
    panel.retry_button.click()
    assert panel.last is None
    assert "refused to stop" in text(panel.message.value)
    assert session.broken is not None and session.broken[0] == "ExecuteSplit"
    assert not panel.retry_button.disabled  # usable again


def test_recovery_panel_needs_operator_and_reason(session: Session, sim: SimDriver) -> None:
    split_broken(session, sim)
    panel = fw.RecoveryPanel(session)
    assert panel.reason.value == ""  # typed per decision, never carried over
    panel.operator.value = ""
    panel.abort_button.click()
    assert "enter the operator and the reason first" in text(panel.message.value)
    assert "not recorded" in text(panel.message.value)
    assert session.upgrade_state is UpgradeState.PREPARE_SPLIT and session.broken
    panel.operator.value, panel.reason.value = "bob", "window closing"
    assert panel.message.value == ""  # typed: the refusal goes


def test_wait_times_out_safely_with_a_way_on(session: Session, sim: SimDriver) -> None:
    request(session, "PrepareSplit")
    version = sim.store.version()
    panel = fw.DecisionPanel(session, "split")
    with pytest.raises(DecisionError) as info:
        asyncio.run(panel.wait(0.2))
    assert "no split decision within 0.2 s" in info.value.message
    assert "re-run this cell" in info.value.remedy and "abort.ipynb" in info.value.remedy
    assert sim.store.version() == version and session.upgrade_state is UpgradeState.PREPARE_SPLIT
    assert decisions_in_journal(session) == []


# --- ask -------------------------------------------------------------------------------


def test_ask_interactive_waits_for_the_click(session: Session, shown: list[Any],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from ftkit_widgets import decide

    monkeypatch.setattr(decide, "ARM_S", 0.05)
    request(session, "PrepareSplit")

    async def operator_clicks() -> Any:
        task = asyncio.create_task(fw.ask(session, "split", mode="interactive",
                                          decisions={}, operator="tester", reason=""))
        while not any(isinstance(o, fw.DecisionPanel) for o in shown):
            await asyncio.sleep(0.01)
        panel = next(o for o in shown if isinstance(o, fw.DecisionPanel))
        await asyncio.sleep(0.1)
        assert not task.done()  # the cell waits for the operator
        fill(panel, "carol", "approved in CAB")
        while not panel.armed:  # the operator reads the panel a moment first
            await asyncio.sleep(0.01)
        panel.buttons["proceed"].click()
        return await asyncio.wait_for(task, 2)

    decision = asyncio.run(operator_clicks())
    assert decision.who == "carol" and decision.source == "widget"
    assert decisions_in_journal(session)[0]["why"] == "approved in CAB"


def test_ask_auto_journals_a_parameter_decision(session: Session, shown: list[Any]) -> None:
    request(session, "PrepareSplit")
    decision = asyncio.run(fw.ask(session, "split", mode="auto", decisions=ALL,
                                  operator="dave", reason="CHG approved"))
    assert decision is not None
    assert (decision.answer, decision.who, decision.source) == ("proceed", "dave", "parameter")
    (entry,) = decisions_in_journal(session)
    assert entry["why"] == "CHG approved"
    # asked again (a re-run): the journaled answer, nothing new
    again = asyncio.run(fw.ask(session, "split", mode="auto", decisions={}, operator="x",
                               reason="y"))
    assert again is not None and (again.answer, again.who) == ("proceed", "dave")
    assert len(decisions_in_journal(session)) == 1


def test_ask_auto_missing_decision_stops_the_run_and_changes_nothing(
        session: Session, sim: SimDriver, shown: list[Any]) -> None:
    request(session, "PrepareSplit")
    version = sim.store.version()
    assert asyncio.run(fw.ask(session, "split", mode="auto", decisions={"merge": "proceed"},
                              operator="x", reason="y")) is None
    assert isinstance(session.last_error, DecisionError)
    assert "no decision for 'split'" in session.last_error.message
    assert not session.due("ExecuteSplit")  # the later steps skip
    with pytest.raises(FtkitError, match="the run stopped: no decision for 'split'"):
        fw.result(session, mode="auto", system=session.target)
    assert sim.store.version() == version
    assert session.upgrade_state is UpgradeState.PREPARE_SPLIT and not sim.status().split
    assert any("The system is left as it is" in text(str(getattr(o, "data", "")))
               for o in shown)


def test_ask_skips_a_decision_the_session_does_not_stand_at(session: Session,
                                                           shown: list[Any]) -> None:
    request(session, "PrepareSplit")
    # merge is asked only in Split, after Install
    assert asyncio.run(fw.ask(session, "merge", mode="auto", decisions={}, operator="x",
                              reason="y")) is None
    assert decisions_in_journal(session) == []


def test_ask_in_plan_mode_without_session_changes_nothing() -> None:
    decision = asyncio.run(fw.ask(None, "commit", mode="plan", decisions={}, operator="p",
                                  reason=""))
    assert decision is not None and (decision.answer, decision.source) == ("commit", "plan")


# --- views -----------------------------------------------------------------------------


def test_status_bar_and_system_view_follow_the_session(session: Session) -> None:
    bar, view = fw.StatusBar(session), fw.SystemView(session)
    assert "Idle" in text(bar.html())
    assert "applications on both enclosures" in text(bar.html())
    assert "mirrored ★ current" in text(view.html())

    request(session, "PrepareSplit")
    session.advance(ParameterDecisions(ALL, operator="tester"))  # split and its request

    status = text(bar.html())  # refreshed through session.on_change, no refresh() call
    assert "upgrade state Split" in status and "operational state Ready" in status
    assert "partner state OS Up" in status
    assert "applications on Production side (enclosure 0)" in status
    picture = text(view.html())
    assert "Enclosure 0: Production side" in picture
    assert "Enclosure 1: Upgrade side" in picture
    assert "I/O module 10: ONLINE (primary)" in picture
    assert "OS: OS Up (isolated)" in picture
    assert "disabled (split): holds the data ★ current" in picture
    assert "disabled (split): stale copy" in picture
    assert "disabled (split): Upgrade side's copy" in picture
    assert "cut off (isolated)" in picture  # external disk from the Upgrade side
    assert "Upgrade side reachable at 192.0.2.50" in picture
    assert "applications on enclosure 0 (Production side)" in picture
    # the widget offers its rendering as text/html for frontends without widgets
    assert bar.html() in bar._repr_mimebundle_()["text/html"]


def test_status_bar_shows_broken_step_and_reason_in_red(session: Session,
                                                        sim: SimDriver) -> None:
    bar = fw.StatusBar(session)
    split_broken(session, sim)
    html = bar.html()
    assert "Broken" in text(html) and "at ExecuteSplit: OrderDB refused to stop" in text(html)
    assert "#c62828" in html  # red


def test_system_view_shows_resync_progress_and_merge(session: Session) -> None:
    session.run(ParameterDecisions({**ALL, "commit": "abort"}, operator="t"), soak_minutes=1)
    view = fw.SystemView(session.driver)  # a driver, not a session: refresh() by hand
    assert "mirrored ★ current" in text(view.html())
    fresh = open_session(session.driver, CONFIG, PACKAGES, operator="t", reason="again")
    request(fresh, "PrepareSplit")
    fresh.advance(ParameterDecisions(ALL))  # split and its request
    request(fresh, "Install")
    fresh.advance(ParameterDecisions(ALL))  # merge and its request
    request(fresh, "ExecuteMerge")
    view.refresh()
    picture = text(view.html())
    assert "Enclosure 1: new side (serving)" in picture
    assert "Enclosure 0: old side (kept for abort)" in picture
    assert "applications on the new side (serving), enclosure 1" in picture
    assert "original software, kept for abort" in picture
    assert "upgraded software ★ current" in picture
    assert "(Upgrade side (" not in picture and "min —" not in picture


def test_activity_log_lists_the_session_live(session: Session) -> None:
    log = fw.ActivityLog(session)
    assert log.rows == []
    request(session, "PrepareSplit")
    session.advance(ParameterDecisions(ALL, operator="tester"))  # split and its request
    request(session, "Install")
    kinds = [r["kind"] for r in log.rows]
    assert "intent" in kinds and "outcome" in kinds and "decision" in kinds
    remote = [r for r in log.rows if r["side"].startswith("remote")]
    assert any("installing OrderDB 12.5.0" in r["message"] for r in remote)
    assert all(set(r) == {"time", "sim time", "side", "kind", "step", "message"}
               for r in log.rows)
    assert "Install done" in text(log.html())
    count = len(log.rows)
    log.close()  # unsubscribes
    session.advance(ParameterDecisions(ALL, operator="tester"))  # merge and its request
    assert len(log.rows) == count


def test_readiness_table_colours_and_remedies(make_sim: Callable[..., SimDriver]) -> None:
    broken = make_sim("module-broken")
    s = open_session(broken, CONFIG, PACKAGES, operator="t", reason="r")
    frame = s.readiness()
    html = fw.readiness_table(frame).to_html()
    assert "#ffebee" in html and "#e8f5e9" in html  # fail red, pass green
    assert "BROKEN" in html and "Readiness check:" in html
    failing = [r for r in frame if str(r.status) == "fail"]
    assert failing and all(r.remedy in html for r in failing if r.remedy)
    from_results = fw.readiness_table([
        CheckResult("a", "A", CheckStatus.WARN, "careful", "prefer static"),
    ]).to_html()
    assert "#fff8e1" in from_results and "prefer static" in from_results
    assert repr(fw.readiness_table(frame)).startswith("Readiness check: ")  # no address


# --- progress and timeline -------------------------------------------------------------


def test_progress_bar_one_bar_per_label_closed_at_total(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    progress = fw.progress_bar()
    for done in (0, 5, 10):
        progress("install A", done, 10)
    progress("reboot", 1, 4)
    assert progress.finished == ["install A"] and list(progress.bars) == ["reboot"]
    progress("install A", 3, 10)  # the label again: a new bar
    assert set(progress.bars) == {"reboot", "install A"}
    progress.close()
    assert progress.bars == {}

    quiet = fw.progress_bar(live=False)
    quiet("soak", 900, 1800)
    quiet("soak", 1800.0000001, 1800)
    assert capsys.readouterr().out == "soak: 1800 s simulated\n"
    quiet("install A", 216, 216)  # ran its time, then its step failed: never "done" above it
    quiet.fail()
    assert capsys.readouterr().out == "install A: 216 s simulated\ninstall A: failed\n"


def test_timeline_draws_phases_and_the_measured_outage(session: Session) -> None:
    session.run(ParameterDecisions(ALL, operator="t"), soak_minutes=30)
    names = [p[0] for p in fw.timeline.__globals__["phases"](session)]
    assert names[:5] == ["PrepareSplit", "Split", "PrepareMerge", "Merge", "Commit"]
    figure = fw.timeline(session, show=False)
    assert [p[0] for p in figure.phases][:5] == names[:5]
    (outage,) = session.outages()
    assert f"outage {outage.seconds:.0f} s" in figure.labels
    assert "committed" in figure.title and figure.title in figure.labels
    assert "Split" in figure.labels and "simulated minutes since the session started" in \
        figure.labels
    assert figure.svg == fw.timeline(session, show=False).svg  # same data, same bytes
    assert len(figure.svg) < 8_000


def test_timeline_displays_once_as_svg_without_a_plotting_library(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    from xml.dom import minidom

    import IPython.display

    session.run(ParameterDecisions(ALL, operator="t"))
    shown: list[Any] = []
    monkeypatch.setattr(IPython.display, "display",
                        lambda obj, **options: shown.append((obj, options)))
    mpl = {name: sys.modules.pop(name) for name in list(sys.modules)
           if name == "matplotlib" or name.startswith("matplotlib.")}
    try:
        figure = fw.timeline(session)
        assert "matplotlib" not in sys.modules
    finally:
        sys.modules.update(mpl)
    assert shown == [({"image/svg+xml": figure.svg, "text/plain": figure.title}, {"raw": True})]
    (outage,) = session.outages()
    assert f"outage {outage.seconds:.0f} s</text>" in figure.svg
    minidom.parseString(figure.svg)  # well-formed


# --- runbook helpers -------------------------------------------------------------------


def test_resolve_from_the_repo_root_or_the_runbooks_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    want = str(CONFIG.resolve())
    assert fw.resolve("../examples/demo-config.toml") == want  # as written in the runbook
    assert fw.resolve("examples/demo-config.toml") == want  # from the repository root
    assert fw.resolve(str(CONFIG)) == want
    assert fw.resolve(["examples/demo-config.toml"]) == [want]
    with pytest.raises(FtkitError, match=r"no file 'nowhere\.toml'"):
        fw.resolve("nowhere.toml")


def test_ensure_system_creates_a_missing_twin_once(shown: list[Any]) -> None:
    first = fw.ensure_system("sim://fresh", scenario="demo")
    assert any("Created the simulated system sim://fresh" in str(getattr(o, "data", ""))
               for o in shown)
    version = first.store.version()
    second = fw.ensure_system("sim://fresh", scenario="module-broken")  # exists: kept
    assert second.store.version() == version and second.status().duplex
    first.close()
    second.close()


def test_request_runs_only_what_is_due(session: Session, shown: list[Any]) -> None:
    fw.step(session, "ExecuteSplit")  # no session yet: not due
    assert session.record is None
    fw.step(session, "PrepareSplit")
    fw.step(session, "PrepareSplit")  # a re-run: done already
    assert [e.step for e in session.journal.entries(session.record.id, kinds=["intent"])] \
        == ["PrepareSplit"]
    session.advance(ParameterDecisions({"split": "stop"}, operator="t"))  # split and its request
    fw.step(session, "ExecuteSplit")  # ruled out by the decision
    fw.step(session, "Abort")
    fw.step(session, "Finish")
    assert session.done and session.record.outcome == "stopped"
    assert not session.driver.status().split
    messages = [text(str(getattr(o, "data", ""))) for o in shown]
    assert not any("ExecuteSplit" in m for m in messages)  # off the path: no noise


def test_request_failure_shows_the_way_on_and_the_result_fails_the_run(
        session: Session, sim: SimDriver, shown: list[Any]) -> None:
    fw.step(session, "PrepareSplit")
    sim.inject("service-stop-refused", point="split")
    # the split answer and its ExecuteSplit: shown, not raised: the record goes on
    asyncio.run(fw.ask(session, "split", mode="auto", decisions=ALL, operator="t", reason="r"))
    advice = " ".join(text(str(getattr(o, "data", ""))) for o in shown)
    assert "Broken at ExecuteSplit" in advice
    assert "Retry" in advice and "abort.ipynb" in advice
    fw.step(session, "Install")
    assert "Install: skipped (the session is Broken at ExecuteSplit)" in " ".join(
        text(str(getattr(o, "data", ""))) for o in shown)
    with pytest.raises(StepFailedError, match="the run stopped: Broken at ExecuteSplit"):
        fw.result(session, mode="auto", system=session.target)


def test_result_reports_outcome_outage_and_lost_transactions(session: Session,
                                                             shown: list[Any]) -> None:
    session.run(ParameterDecisions(ALL, operator="t"))
    result = fw.result(session, mode="auto", system=session.target)
    data = result.to_dict()
    assert data["outcome"] == "committed" and data["lost_transactions"] == 0
    assert 0 < data["outage_s"] < 60 and data["change_id"] == "CHG-T"
    planned = fw.result(None, mode="plan", system="sim://x").to_dict()
    assert planned["outcome"] == "planned"


@pytest.mark.parametrize(("side", "outage"), [("production", True), ("upgrade", False)])
def test_failure_explains_a_production_side_outage_and_both_ways_out(
        session: Session, sim: SimDriver, side: str, outage: bool) -> None:
    from ftkit_widgets.render import failure_html

    sim.inject("module-fail", point="install", side=side)
    with pytest.raises(StepFailedError) as info:
        session.run(ParameterDecisions(ALL, operator="tester"))
    shown = text(failure_html(session, info.value))
    assert "Broken at Install" in shown
    assert ("This is an outage" in shown) is outage
    assert ("Restart the applications on the Upgrade side (enclosure 1)" in shown) is outage
    assert ("only up-to-date copy" in shown) is outage


# --- what the operator reads (issue 12) --------------------------------------------------


def installed(session: Session) -> None:
    """PrepareSplit, split, Install: the session waits for the merge decision."""
    request(session, "PrepareSplit")
    session.advance(ParameterDecisions(ALL, operator="tester"))  # split and its request
    request(session, "Install")


def test_merge_and_commit_panels_say_what_a_click_costs_and_show_the_evidence(
        session: Session) -> None:
    from ftkit.process import plan_facts

    installed(session)
    facts = plan_facts(session.system(), session.config, session.packages)
    merge = fw.DecisionPanel(session, "merge")
    # the outage's button is laid out last: not where the split panel's Proceed was; the
    # abort states what its resync of the Upgrade side takes, from the plan's estimate
    resync = f"{facts['upgrade_resync_min'] / 60:.1f}".removesuffix(".0")
    assert [b.description for b in merge.buttons.values()] == [
        f"Abort — no outage, about {resync} h",
        f"Proceed — outage about {facts['merge_outage_s']:.0f} s"]
    fill(merge)
    merge.buttons["proceed"].click()  # the answer and the PrepareMerge it leads to
    request(session, "ExecuteMerge")
    fw.soak(session, 30)

    commit = fw.DecisionPanel(session, "commit")
    hours = f"{facts['resync_min'] / 60:.1f}".removesuffix(".0")
    assert [b.description for b in commit.buttons.values()] == [
        f"Abort — outage about {facts['restart_outage_s']:.0f} s, about {hours} h in all",
        f"Commit — no outage, about {hours} h; the point of no return"]
    evidence = text(commit.evidence.value)
    (outage,) = session.outages()
    minutes, secs = divmod(round(outage.start), 60)
    assert f"measured outage of the merge {outage.seconds:.1f} s at t={minutes}:{secs:02d}" \
        in evidence
    assert f"soak 30 min on the upgraded software, {session.soak_result()[1]} transactions " \
        "acknowledged" in evidence
    assert "transactions lost 0" in evidence
    assert "Commit is the point of no return" in evidence
    state = text(commit.state.value)  # the shut-down partner is explained, not alarming
    assert "partner state OS Shut Down (expected: the old side is kept shut down for an " \
        "abort)" in state
    assert "applications on new side (serving), enclosure 1" in state
    # the journal's outage line uses the same clock as the panels
    assert any(f"at t={minutes}:{secs:02d}" in r["message"] for r in fw.ActivityLog(session).rows)


def test_decision_panel_refusal_goes_once_the_reason_is_typed(session: Session) -> None:
    request(session, "PrepareSplit")
    panel = fw.DecisionPanel(session, "split", reason="")
    assert panel.reason.value == ""
    panel.buttons["proceed"].click()
    assert "not recorded" in text(panel.message.value)
    panel.reason.value = "monthly patches"
    assert panel.message.value == ""
    assert not any(b.disabled for b in panel.buttons.values())


def resync_time(session: Session) -> str:
    """How long the plan estimates an abort's resync of the Upgrade side (as a button says
    it: ``about 2 h``)."""
    from ftkit.process import plan_facts

    minutes = plan_facts(session.system(), session.config, session.packages)[
        "upgrade_resync_min"]
    return (f"about {minutes:.0f} min" if minutes < 90
            else f"about {minutes / 60:.1f}".removesuffix(".0") + " h")


def test_a_failed_install_reads_as_one_friendly_view_with_a_red_bar_then_abort_and_finish(
        session: Session, sim: SimDriver, shown: list[Any], monkeypatch: pytest.MonkeyPatch,
        ftkit_dirs: Any) -> None:
    import tqdm.auto
    import tqdm.notebook

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.notebook.tqdm)  # the bars JupyterLab shows
    monkeypatch.setattr(tqdm.notebook, "display", lambda *_a, **_k: None)
    session.progress = fw.progress_bar(live=True)
    fw.step(session, "PrepareSplit")
    session.advance(ParameterDecisions(ALL, operator="t"))  # split and its request
    sim.inject("installer-fail")
    fw.step(session, "Install")

    [panel] = [o for o in shown if isinstance(o, fw.RecoveryPanel)]
    view = text(panel.failure.value)
    assert view.startswith(" Install failed: installer of ")
    assert "Error:" not in view and "Traceback" not in view
    assert str(ftkit_dirs.home) not in panel.failure.value and str(REPO) not in view
    assert "Details" in view  # one click away (<details>)
    assert [b.description for b in (panel.retry_button, panel.abort_button)] == [
        f"Retry Install — {text(fw.render.cost_text(session.costs('broken')['retry']))}",
        f"Abort — no outage, {resync_time(session)}"]
    # the install's bar is red and says failed; it is not a green 100 %
    assert session.progress.failed
    bars = [o for o in shown if hasattr(o, "children")]
    assert bars == [panel]  # the bars went to tqdm's display, not into the cell's list
    assert "  " not in " ".join(session.progress.failed)

    panel.operator.value, panel.reason.value = "alice", "installer broken, no fix tonight"
    panel.abort_button.click()
    assert panel.last == "abort" and session.upgrade_state is UpgradeState.ABORT
    assert panel.retry_button.disabled and panel.abort_button.disabled
    panel.retry_button.click()  # disabled in the browser; a programmatic click does nothing
    assert session.upgrade_state is UpgradeState.ABORT
    assert text(panel.failure.value).startswith(" Resolved : Install failed")
    assert "aborted by alice at " in text(panel.failure.value)
    assert "The session is Broken at Install" in text(panel.failure.value)  # as it was
    assert panel.next_button.layout.display == ""
    assert panel.next_button.description == "Finish the abort — no outage"
    panel.next_button.click()
    assert session.done and session.record is not None and session.record.outcome == "aborted"
    assert "finished: aborted" in text(panel.message.value)
    assert panel.finished  # the display is now its static rendering


def test_failed_bar_turns_red_and_says_failed() -> None:
    import tqdm.notebook

    progress = fw.progress_bar(live=True)
    bar = tqdm.notebook.tqdm(total=10, desc="install  A", leave=True, display=False)
    progress.bars["install A"] = bar
    progress.fail()
    desc, inner, after = bar.container.children
    assert inner.bar_style == "danger" and desc.value == "install A: failed"
    assert after.value == "" and progress.failed == ["install A"]
    # a bar that ran to its end before the step failed turns red too
    done = tqdm.notebook.tqdm(total=5, desc="reboot", leave=True, display=False)
    progress._last = ("reboot", done)
    progress.fail()
    assert done.container.children[1].bar_style == "danger"


def test_retry_then_continue_runs_up_to_the_next_decision_asked_in_the_panel(
        session: Session, sim: SimDriver, shown: list[Any]) -> None:
    split_broken(session, sim)
    assert session.broken is not None
    fw.soak(session, 20)  # the runbook's soak cell ran (skipped: not due yet)
    error = StepFailedError(f"ExecuteSplit failed: {session.broken[1]}", "free the service")
    panel = fw.RecoveryPanel(session, error=error)
    fill(panel, reason="service freed")
    panel.retry_button.click()
    assert panel.last == "retry" and panel.retry_button.disabled and panel.abort_button.disabled
    assert "Resolved" in text(panel.failure.value) and "retried by alice" in text(
        panel.failure.value)
    assert panel.next_button.description == "Continue"
    panel.next_button.click()  # runs Install (what next() says), then asks merge here
    assert session.needs_decision("merge")
    [merge] = [o for o in shown if isinstance(o, fw.DecisionPanel)]
    assert merge.name == "merge" and "Next: the merge decision" in text(panel.message.value)
    fill(merge)
    merge.buttons["proceed"].click()  # carries on: PrepareMerge, ExecuteMerge, commit asked
    assert session.needs_decision("commit") and session.outages()
    [commit] = [o for o in shown if isinstance(o, fw.DecisionPanel) and o.name == "commit"]
    assert session.soak_result()[0] == 20  # soaked before asking, as the runbook asked
    assert "soak 20 min on the upgraded software" in text(commit.evidence.value)


def test_live_views_carry_a_static_rendering_and_become_it_at_the_end(
        session: Session, shown: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    updates: list[tuple[dict[str, Any], str]] = []
    monkeypatch.setattr(views, "_update", lambda bundle, display_id: updates.append(
        (bundle, display_id)))
    bar = fw.StatusBar(session)
    views.show(bar)
    assert shown == [bar] and bar.display_id
    bundle = bar._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", views._WIDGET_VIEW}
    assert "upgrade state Idle" in text(bundle["text/html"])
    request(session, "PrepareSplit")
    assert updates == []  # nothing is sent while live: the view would be re-created
    session.run(ParameterDecisions(ALL, operator="t"))
    [(last, display_id)] = updates  # the session ended: the display is static from now on
    assert display_id == bar.display_id and bar.finished
    assert set(last) == {"text/plain", "text/html"}
    assert "upgrade state Idle (session 1 ended: committed)" in text(last["text/html"])
    bar.refresh()
    assert len(updates) == 1 and views._WIDGET_VIEW not in bar._repr_mimebundle_()


def test_failure_view_masks_machine_paths_and_shows_no_class_name(
        session: Session, ftkit_dirs: Any) -> None:
    from ftkit_widgets.render import failure_html

    try:
        try:
            raise OSError(f"cannot read {ftkit_dirs.home}/journals/x.db or {REPO}/ftkit/a.py")
        except OSError as cause:
            raise FtkitError(f"journal unreadable at {Path.home()}/x", "check it") from cause
    except FtkitError as err:
        shown = failure_html(session, err)
    assert "FtkitError" not in shown and "OSError" not in shown
    assert str(ftkit_dirs.home) not in shown and str(REPO) not in shown
    assert str(Path.home()) + "/" not in shown
    assert "$FTKIT_HOME/journals/x.db" in text(shown) and "<ftkit>/ftkit/a.py" in text(shown)


def test_the_result_cell_of_a_live_run_shows_one_line_not_a_traceback(
        session: Session, sim: SimDriver, shown: list[Any]) -> None:
    session.progress = fw.progress_bar(live=True)
    split_broken(session, sim)
    with pytest.raises(StepFailedError) as info:
        fw.result(session, mode="interactive", system=session.target)
    (line,) = info.value._render_traceback_()  # what IPython shows for it
    assert line.startswith("The run stopped: Broken at ExecuteSplit")
    assert line.endswith("The way on is shown above.")
    assert "Error" not in line


def test_a_decided_panel_stays_live_until_the_run_ends_then_is_static(
        session: Session, shown: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    updates: list[dict[str, Any]] = []
    monkeypatch.setattr(views, "_update", lambda bundle, display_id: updates.append(bundle))
    request(session, "PrepareSplit")
    panel = fw.DecisionPanel(session, "split")
    views.show(panel)
    fill(panel)
    panel.buttons["stop"].click()
    assert panel.settled and not panel.finished  # its buttons stay, disabled, meanwhile
    assert updates == []
    request(session, "Abort")
    finish(session)
    fw.result(session, mode="interactive", system=session.target)
    [last] = updates
    assert panel.finished and set(last) == {"text/plain", "text/html"}
    assert text(last["text/html"]).count("stop by alice") == 1  # "Decided", once
    assert "Decided stop by alice" in text(last["text/html"])


def test_a_live_run_in_a_kernel_leaves_a_notebook_that_reads_without_its_widgets(
        tmp_path: Path) -> None:
    """What JupyterLab saves: once the session ended, no output refers to a widget model
    (reopened, "model not found" would show), and each keeps its rendering as HTML."""
    import nbformat
    from nbclient import NotebookClient

    cells = [
        "import ftkit, ftkit_widgets as fw\n"
        "from ftkit.decisions import ParameterDecisions\n"
        "driver = fw.ensure_system('sim://kernel1')\n"
        f"session = ftkit.open_session(driver, {str(CONFIG)!r}, {[str(PACKAGES[0])]!r}, "
        "change_id='CHG-K', operator='o', reason='r', progress=fw.progress_bar(live=True))\n"
        "fw.overview(session, live=True)",
        "session.run(ParameterDecisions({'split': 'proceed', 'merge': 'proceed', "
        "'commit': 'commit'}, operator='o'))",
        "fw.show_log(session, live=True)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells for o in c.outputs if o.output_type == "display_data"]
    assert len(outputs) > 5
    assert not [o for o in outputs if views._WIDGET_VIEW in o.data]
    static = " ".join(text(o.data["text/html"]) for o in outputs)
    assert "upgrade state Idle (session 1 ended: committed)" in static  # the status bar
    assert "Enclosure 0: Duplex" in static  # the picture
    assert "install Windows Server 2022: done" in static  # a progress bar
    assert "Finish done" in static  # the activity log


def test_a_new_panel_is_armed_only_a_moment_after_it_is_shown(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """A click meant for the panel before (the same spot, a second later) meets disabled
    buttons: the panel arms them ARM_S after it is shown, on the kernel's event loop."""
    import asyncio

    from ftkit_widgets import decide

    monkeypatch.setattr(decide, "ARM_S", 0.05)
    request(session, "PrepareSplit")

    async def shown() -> tuple[list[bool], list[bool]]:
        panel = fw.DecisionPanel(session, "split")
        at_once = [b.disabled for b in panel.buttons.values()]
        while not panel.armed:  # armed by the loop, whenever it gets there
            await asyncio.sleep(0.01)
        return at_once, [b.disabled for b in panel.buttons.values()]

    at_once, armed = asyncio.run(shown())
    assert at_once == [True, True] and armed == [False, False]
    assert session.decision("split") is None


def test_the_header_of_a_rerun_keeps_the_session_start(session: Session,
                                                       shown: list[Any]) -> None:
    """Run All again later: the change record's "started" is the session's, from the
    journal, not the re-run's."""
    from dataclasses import replace

    request(session, "PrepareSplit")
    assert session.record is not None
    session.record = replace(session.record, started="2020-01-02T03:04:05.000000Z")  # earlier
    fw.record_header(session, system=session.target, mode="interactive", change_id="CHG-T",
                     operator="tester", reason="test", packages=session.packages)
    assert "started 2020-01-02 03:04:05 UTC" in text(shown[-1].data)
