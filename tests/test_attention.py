"""Taking the operator to what needs them (ftkit_widgets.attention), kernel side: the
sticky line's words from the session, the panel marked for the front end to find, the
failure notification; and nothing at all where nobody can click. What the page does with
it (scrolling, focus, the toast) is proven in tests/browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from drive import request

import ftkit_widgets as fw
from ftkit.decisions import ParameterDecisions
from ftkit.errors import StepFailedError
from ftkit.process import Session
from ftkit.sim.driver import SimDriver
from ftkit_widgets import attention


class FakeCommands:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def execute(self, command_id: str, args: dict[str, Any]) -> None:
        self.calls.append((command_id, args))


class FakeApp:
    def __init__(self) -> None:
        self.commands = FakeCommands()


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApp]:
    """A person is looking (a JupyterLab frontend): the real sticky-line widget, a fake
    JupyterLab app that records the commands it is sent."""
    app = FakeApp()
    monkeypatch.setattr(attention, "_frontend", lambda: True)
    monkeypatch.setattr(attention, "_STATE", {"beacon": None, "app": app, "watch": None})
    yield app
    beacon = attention._STATE["beacon"]
    if beacon is not None:
        beacon.close()


def broken_install(session: Session, sim: SimDriver) -> StepFailedError:
    request(session, "PrepareSplit")
    session.advance(ParameterDecisions({"split": "proceed"}, operator="tester"))  # + ExecuteSplit
    sim.inject("installer-fail")
    with pytest.raises(StepFailedError) as caught:
        request(session, "Install")
    return caught.value


def test_the_line_says_what_the_runbook_waits_for(session: Session, sim: SimDriver) -> None:
    line = attention.attention_line
    assert line(session) == ("run", "Next: PrepareSplit")
    assert line(session, running="PrepareSplit") == ("run", "Running: PrepareSplit …")
    request(session, "PrepareSplit")
    assert line(session) == ("wait", "Next: the split decision")
    assert line(session, waiting="split") == ("wait", "Waiting for: the split decision")
    broken_install(session, sim)
    assert line(session, waiting="merge") == ("broken",
                                              "Broken at Install — decide Retry or Abort")


def test_a_decision_panel_is_marked_and_led_to(session: Session, page: FakeApp) -> None:
    request(session, "PrepareSplit")
    panel = fw.DecisionPanel(session, "split")
    attention.lead_to(session, panel, "split")

    beacon = attention._STATE["beacon"]
    (mark,) = panel._dom_classes  # what the front end scrolls to
    assert beacon.target == beacon.anchor == mark and beacon.lead == 1
    assert beacon.focus in panel.reason._dom_classes  # focused when nothing else is empty
    assert (beacon.tone, beacon.line) == ("wait", "<b>Waiting for:</b> the split decision")
    assert page.commands.calls == []  # a panel is no failure: no notification

    panel.operator.value, panel.reason.value = "alice", "window open"
    panel.buttons["proceed"].click()  # the answer and the ExecuteSplit it leads to
    assert beacon.line == "<b>Next:</b> Install"  # the line follows the journal
    assert beacon.target == mark and beacon.tone == "run"


def test_a_broken_step_raises_a_notification_and_leads_to_retry_abort(
        session: Session, sim: SimDriver, page: FakeApp) -> None:
    error = broken_install(session, sim)
    panel = fw.RecoveryPanel(session)
    attention.alert(session, error, panel)

    beacon = attention._STATE["beacon"]
    assert beacon.target in panel._dom_classes and beacon.lead == 1
    assert beacon.tone == "broken"
    assert beacon.line == "<b>Broken at Install — decide Retry or Abort</b>"
    ((command, args),) = page.commands.calls
    assert command == "apputils:notify" and args["type"] == "error"
    assert args["options"]["autoClose"] is False  # stays until the operator saw it
    (show,) = args["options"]["actions"]  # and takes them there again
    assert show["label"] == "Show" and show["commandId"] == attention._SHOW
    attention._show_again()
    assert beacon.lead == 2
    message = args["message"]
    assert message.startswith("Broken at Install: ") and "exited with code" in message
    assert message.endswith("Retry or Abort in the runbook.") and len(message) <= 140

    panel.operator.value, panel.reason.value = "alice", "installer broken"
    panel.abort_button.click()
    assert page.commands.calls[-1] == ("apputils:dismiss-notification", {})  # resolved
    assert [c for c, _a in page.commands.calls].count("apputils:dismiss-notification") == 1
    assert beacon.line == "<b>Next:</b> Finish"
    assert beacon.target in panel._dom_classes  # the panel, where the next step is offered


def test_the_notification_masks_secrets_and_fits_a_toast(session: Session,
                                                         sim: SimDriver) -> None:
    from ftkit.redact import forget_secrets, register_secret

    broken_install(session, sim)
    register_secret("hunter2-secret")
    try:
        notice = attention._notice(session, StepFailedError(
            "Install failed: login with hunter2-secret refused " + "x" * 200, "retry"))
    finally:
        forget_secrets()
    assert "hunter2" not in notice and "***" in notice
    assert len(notice) == 140 and notice.endswith("x… Retry or Abort in the runbook.")


def test_nothing_is_created_where_nobody_can_click(session: Session, sim: SimDriver,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    state = {"beacon": None, "app": None, "watch": None}
    monkeypatch.setattr(attention, "_STATE", state)
    assert not attention._frontend()  # no kernel here, as in a script or `ftkit run`
    request(session, "PrepareSplit")
    panel = fw.DecisionPanel(session, "split")
    attention.lead_to(session, panel, "split")
    attention.alert(session, broken_install(session, sim), fw.RecoveryPanel(session))
    assert state == {"beacon": None, "app": None, "watch": None}
    assert panel._dom_classes == ()


def test_a_failing_front_end_never_stops_the_upgrade(session: Session, page: FakeApp,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    def broken_widget() -> Any:
        raise RuntimeError("no widget manager")

    monkeypatch.setattr(attention, "_beacon", broken_widget)
    request(session, "PrepareSplit")
    attention.lead_to(session, fw.DecisionPanel(session, "split"), "split")  # no raise
    assert "could not lead to the split panel" in caplog.text


def test_the_line_shows_the_running_step_and_the_soak_in_progress(
        sim: SimDriver, page: FakeApp) -> None:
    """While a step runs the line says how far it is against the plan's estimate and how
    long is left (the merge: the outage so far); during the soak, the soak's progress."""
    from conftest import CONFIG, PACKAGES
    from drive import answer

    from ftkit.process import open_session

    session = open_session(sim, CONFIG, PACKAGES, change_id="CHG-P", operator="tester",
                           reason="test", progress=fw.progress_bar(live=True))
    try:
        request(session, "PrepareSplit")
        attention.lead_to(session, fw.DecisionPanel(session, "split"), "split")
        lines: list[str] = []
        attention._STATE["beacon"].observe(lambda c: lines.append(c["new"]), names="line")
        answer(session, "split", "proceed")
        request(session, "Install")
        answer(session, "merge", "proceed")
        request(session, "ExecuteMerge")
        fw.soak(session, 30)
    finally:
        session.journal.close()
    said = [re.sub(r"<[^>]+>", "", line) for line in lines]
    install = [t for t in said if t.startswith("Running: Install — ")]
    assert install and all(re.search(r"— \d+% · about \d+(\.\d)? (s|min|h) left · ", t)
                           for t in install)
    assert any("outage so far" in t for t in said if t.startswith("Running: ExecuteMerge"))
    soak = [t for t in said if t.startswith("Soaking: ")]
    assert soak and all(t.endswith("left, then the commit decision") for t in soak)


def test_a_live_display_hands_the_page_what_to_keep_should_its_kernel_stop(
        session: Session, page: FakeApp) -> None:
    """What the page saves in a live display's place once its kernel stopped: the status
    bar as it last read, an open panel headed by "kernel stopped", a decided one not."""
    from ftkit_widgets.views import StatusBar, show

    request(session, "PrepareSplit")
    bar, panel = StatusBar(session), fw.DecisionPanel(session, "split")
    show(bar)
    show(panel)
    beacon = attention._STATE["beacon"]
    assert beacon.statics[bar.model_id] == bar.static_bundle()["text/html"]
    assert beacon.statics[panel.model_id].startswith(
        "<div class='ftkit-dead-note'")  # a panel not yet answered
    assert "This panel's kernel stopped — Run All" in beacon.statics[panel.model_id]

    panel.operator.value, panel.reason.value = "alice", "window open"
    panel.buttons["proceed"].click()  # the split and its ExecuteSplit
    assert "kernel stopped" not in beacon.statics[panel.model_id]  # decided: nothing to click
    assert "proceed by alice" in beacon.statics[panel.model_id]
    assert beacon.statics[bar.model_id] == bar.static_bundle()["text/html"]
    assert "Split" in beacon.statics[bar.model_id]  # the bar as it reads now, not when shown


def test_make_install_sets_the_widget_state_saved_in_notebooks(tmp_path: Any) -> None:
    """The environment's JupyterLab saves widget state with a notebook (a run abandoned
    mid-way reopens with its panels); other defaults there stay."""
    import json

    from ftkit_widgets.labsettings import overrides_path, write_overrides

    path = overrides_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "dark"},
                                "@jupyter-widgets/jupyterlab-manager:plugin": {"x": 1}}))
    assert write_overrides(prefix=tmp_path) == path
    assert json.loads(path.read_text()) == {
        "@jupyterlab/apputils-extension:themes": {"theme": "dark"},
        "@jupyter-widgets/jupyterlab-manager:plugin": {"x": 1, "saveState": True}}


def test_a_long_step_a_click_starts_is_brought_into_view(
        session: Session, sim: SimDriver, page: FakeApp) -> None:
    """Abort clicked on the Broken panel runs the abort's resync (hours by the plan's
    estimate) below the panel: the view goes to the panel's output on its own, and the
    line leads there while it runs; a short step a click starts moves nothing."""
    error = broken_install(session, sim)
    panel = fw.RecoveryPanel(session)
    attention.alert(session, error, panel)
    beacon = attention._STATE["beacon"]
    (output_mark,) = [c for c in panel.output._dom_classes if c.endswith("-output")]
    leads, targets = beacon.lead, []
    beacon.observe(lambda change: targets.append(change["new"]), names="target")

    panel.operator.value, panel.reason.value = "alice", "installer broken"
    panel.abort_button.click()
    assert beacon.lead == leads + 1  # once, when the Abort started
    assert output_mark in targets  # the line's button led there while it ran
    assert beacon.target in panel._dom_classes  # then back to the panel (Finish is offered)

    panel.next_button.click()  # Finish: short, nothing moves
    assert beacon.lead == leads + 1
