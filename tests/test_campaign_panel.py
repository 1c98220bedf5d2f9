"""The campaign notebook's approval panel (docs/CAMPAIGNS.md), driven as an operator does:
``.click()`` on Approve, names typed into its fields, while ``drive_campaign`` waits for it
as the runbook's cell does (a top-level ``await``); assertions on the panel's traits and on
the campaign's journal. The systems are simulated, run by Dask on a LocalCluster."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from test_campaign import campaign_file, sessions_of
from test_widgets import text

import ftkit_widgets as fw
from ftkit.campaign import (
    CampaignResult,
    CampaignSpec,
    approval_of,
    campaign_journal,
    campaign_status,
    load_campaign,
    pending_approval,
)
from ftkit.cli import main
from ftkit.decisions import account
from ftkit_widgets import campaign as widgets_campaign
from ftkit_widgets import views

pytest.importorskip("distributed")


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What the campaign widgets display (instead of printing reprs to stdout)."""
    out: list[Any] = []
    for module in (widgets_campaign, views):
        monkeypatch.setattr(module, "display", lambda *objs, **_kw: out.extend(objs))
    return out


async def next_panel(shown: list[Any], task: asyncio.Task[CampaignResult],
                     after: int = 0) -> fw.ApprovalPanel:
    """The approval panel shown after the first AFTER ones, once the run waits at it."""
    while True:
        panels = [o for o in shown if isinstance(o, fw.ApprovalPanel)]
        if len(panels) > after:
            return panels[after]
        assert not task.done(), task.result()  # the run ended without asking
        await asyncio.sleep(0.05)


def waiting_campaign(tmp_path: Path) -> CampaignSpec:
    """A campaign whose canary a ended (as its journal says: nothing runs here), so that
    wave 1 (b) waits for an approval."""
    spec = load_campaign(campaign_file(tmp_path, ["a", "b"], waves="[1, 1]",
                                       extra="approve_between_waves = true"))
    journal = campaign_journal(spec)
    try:
        for event in ("started", "ended"):
            journal.log(None, "info", f"a {event}", detail={
                "campaign": event, "system": "a", "wave": 0, "outcome": "committed"})
    finally:
        journal.close()
    assert pending_approval(spec) == 1
    return spec


def test_a_click_journals_the_approval_with_the_account_and_a_refusal_changes_nothing(
        tmp_path: Path, shown: list[Any]) -> None:
    spec = waiting_campaign(tmp_path)
    panel = fw.ApprovalPanel(spec, 1)
    assert "Approve wave 1 of campaign" in text(panel.question.value)
    assert "It starts b (1 system). Before it: 1 ended, 0 failed." in text(
        panel.question.value)
    assert f"ftkit campaign approve {spec.path} --wave 1 --by NAME" in text(
        panel.command.value)
    assert not panel.button.disabled  # armed at once where no event loop runs (a script)
    for by, says in (("  ", "an approval needs the approver's name"),
                     ("x\x1b[2J", "holds the control or format character")):
        panel.by.value, panel.reason.value = by, "canary fine"
        panel.button.click()
        refusal = text(panel.message.value).strip()
        assert refusal.startswith("not recorded") and says in refusal, refusal
        assert "\n" not in panel.message.value
        assert approval_of(spec, 1) is None and panel.approval is None
        assert not panel.button.disabled  # still asks
    assert pending_approval(spec) == 1
    panel.by.value = "carol"
    panel.button.click()
    me = account()
    assert campaign_status(spec)["approvals"] == {
        "1": {"by": "carol", "account": me, "why": "canary fine"}}
    assert panel.approval is not None and panel.button.disabled and panel.by.disabled
    assert text(panel.message.value).strip().startswith(
        f"Approved Wave 1 approved by carol (account {me}) at ")
    panel.button.click()  # a second click journals nothing more
    assert main(["campaign", "status", str(spec.path)]) == 0
    assert pending_approval(spec) is None


def test_a_panel_shown_a_moment_ago_refuses_a_click(tmp_path: Path) -> None:
    spec = waiting_campaign(tmp_path)

    async def click_at_once() -> fw.ApprovalPanel:
        panel = fw.ApprovalPanel(spec, 1)  # in the kernel's loop: armed ARM_S later
        assert panel.button.disabled
        panel.by.value = "carol"
        panel.button.click()  # a click that got through anyway
        return panel

    panel = asyncio.run(click_at_once())
    assert "shown a moment ago" in text(panel.message.value)
    assert approval_of(spec, 1) is None


def test_an_approval_by_the_command_releases_the_waiting_panel(tmp_path: Path) -> None:
    spec = waiting_campaign(tmp_path)

    async def wait_while_a_shell_approves() -> dict[str, Any] | None:
        panel = fw.ApprovalPanel(spec, 1)
        waiting = asyncio.create_task(panel.wait(600))
        await asyncio.sleep(0)
        assert main(["campaign", "approve", str(spec.path), "--wave", "1", "--by", "dave",
                     "--reason", "from the shell"]) == 0
        approval = await waiting
        assert panel.settled and panel.finished and panel.button.disabled
        assert f"approved by dave (account {account()})" in text(panel.message.value)
        assert "Or from a shell" not in panel.html()  # the saved record: who approved
        return approval

    approval = asyncio.run(wait_while_a_shell_approves())
    assert approval is not None and approval["by"] == "dave"


def test_a_panel_nobody_answers_stops_waiting_and_journals_nothing(tmp_path: Path) -> None:
    spec = waiting_campaign(tmp_path)
    panel = fw.ApprovalPanel(spec, 1)
    assert asyncio.run(panel.wait(0.1)) is None
    assert panel.button.disabled and panel.settled
    assert "No approval of wave 1 within 0.1 s: the campaign waits" in text(
        panel.message.value)
    assert pending_approval(spec) == 1


# another LocalCluster on this machine (a benchmark, a notebook) may hold Dask's default port
@pytest.mark.slow
def test_the_campaign_waits_at_the_panel_and_goes_on_once_approved(
        tmp_path: Path, shown: list[Any], capsys: pytest.CaptureFixture[str]) -> None:
    """What the runbook's cell does: ``await fw.drive_campaign(spec)`` runs the canary,
    shows the panel for wave 1 and waits; the click journals the approval and the same
    call runs wave 1."""
    spec = load_campaign(campaign_file(tmp_path, ["a", "b"], waves="[1, 1]",
                                       extra="approve_between_waves = true"))

    async def operator() -> tuple[CampaignResult, fw.ApprovalPanel]:
        task = asyncio.create_task(fw.drive_campaign(spec))
        panel = await next_panel(shown, task)
        assert panel.wave == 1 and sessions_of(spec.members[0].target) == ["committed"]
        assert sessions_of(spec.members[1].target) == []  # not before the approval
        while panel.button.disabled:  # armed a moment after it is shown
            await asyncio.sleep(0.05)
        panel.by.value, panel.reason.value = "carol", "canary fine"
        panel.button.click()
        return await task, panel

    result, panel = asyncio.run(operator())
    assert result.outcome == "completed"
    assert [sessions_of(m.target) for m in spec.members] == [["committed"]] * 2
    assert campaign_status(spec)["approvals"]["1"]["by"] == "carol"
    assert panel.finished
    out = capsys.readouterr().out
    assert f"campaign {spec.name} completed: 2 systems" in out


@pytest.mark.slow
def test_in_voila_the_panel_does_not_hold_its_cell_and_its_approval_carries_on(
        tmp_path: Path, shown: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Voilà shows a cell's outputs once it ends: the cell returns at the panel; its click
    runs the campaign on below it, up to the next panel, which an approval from a shell
    carries on without a click; the last shows the campaign's result."""
    monkeypatch.setenv("SERVER_SOFTWARE", "voila/0.5.8")
    spec = load_campaign(campaign_file(tmp_path, ["a", "b", "c"], waves="[1, 1]",
                                       extra="approve_between_waves = true"))

    async def page() -> tuple[CampaignResult, list[fw.ApprovalPanel]]:
        result = await fw.drive_campaign(spec)  # the cell ends: the canary ran, wave 1 waits
        (first,) = [o for o in shown if isinstance(o, fw.ApprovalPanel)]
        while first.button.disabled:
            await asyncio.sleep(0.05)
        first.by.value = "carol"
        first.button.click()  # journaled; wave 1 runs, then wave 2 asks below
        second = next_panel_now(shown, after=1)
        assert [sessions_of(m.target) for m in spec.members] == [["committed"]] * 2 + [[]]
        assert main(["campaign", "approve", str(spec.path), "--wave", "2", "--by", "dave"]) == 0
        while not second.settled:  # seen by the panel's watch: wave 2 runs
            await asyncio.sleep(0.05)
        return result, [first, second]

    result, (first, second) = asyncio.run(page())
    assert result.outcome == "waiting"  # what the cell returned
    assert [sessions_of(m.target) for m in spec.members] == [["committed"]] * 3
    assert "approved by dave" in text(second.message.value)
    assert campaign_status(spec)["totals"]["ended"] == 3
    assert f"campaign {spec.name} completed" not in text(first.message.value)
    assert any("<table" in str(getattr(o, "data", "")) and text(str(o.data)).count(
        "committed") == 3 for o in shown)  # the result, shown below the last panel


def next_panel_now(shown: list[Any], *, after: int) -> fw.ApprovalPanel:
    panels = [o for o in shown if isinstance(o, fw.ApprovalPanel)]
    assert len(panels) > after, "no further approval panel was shown"
    return panels[after]
