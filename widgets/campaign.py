"""The campaign runbook's views: the plan, a live table of the systems, the result, and
the panel that approves a wave.

The plan, table and result are plain HTML updated in place (``display(...,
display_id=True)``), not widget models: what the table last showed is what the saved
notebook and its record show, with no live kernel. The :class:`ApprovalPanel` is a widget
(a person clicks in it), shown only where one can: :func:`drive_campaign` waits for it the
way :func:`ftkit_widgets.ask` waits for a decision panel (a top-level ``await`` loop in the
cell), and under papermill (``ftkit campaign run``) is :func:`ftkit.campaign.run_campaign`
unchanged."""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import ipywidgets as w
from IPython.display import HTML, display

from ftkit.archive import Outcome, RunResult
from ftkit.campaign import (
    CampaignResult,
    CampaignSpec,
    MemberState,
    approval_of,
    approve_wave,
    campaign_status,
    pending_approval,
    run_campaign,
)
from ftkit.errors import FtkitError

from .attention import lead_to_panel, say_on_line
from .decide import _arm_later, _inside, _Owner, in_voila, nobody_can_click
from .render import GREEN, GREY, RED, YELLOW, esc, note_html
from .views import LiveHTML, show

__all__ = ["ApprovalPanel", "CampaignTable", "campaign_plan", "campaign_result",
           "drive_campaign"]

#: While a cell waits at the approval panel, the campaign's journal is read this often for
#: an approval given from a shell (``ftkit campaign approve``), in seconds.
LOOK_S = 1.0
#: Where a waiting wave's approval is asked, as the run's line says it (``run_campaign``).
ASKED_IN = "approve it in the panel below"
#: How long the panel waits for an approval when the campaign file sets no
#: ``approval_wait_min``, in seconds (as long as a decision panel waits).
PANEL_WAIT_S = 3600.0

_STYLE = ("<style>.ftkit-campaign td,.ftkit-campaign th{padding:2px 10px;text-align:left}"
          ".ftkit-campaign .bar{font-family:monospace}</style>")


class _Link(str):
    """A record's file name, shown as a link to it (the records lie in one folder)."""


def _cell(value: Any) -> str:
    text = html.escape(str(value))
    return f"<a href='{text}'>{text}</a>" if isinstance(value, _Link) else text


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>"
                    for row in rows)
    heads = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f"{_STYLE}<table class='ftkit-campaign'><tr>{heads}</tr>{cells}</table>"


def campaign_plan(spec: CampaignSpec) -> None:
    """Show the waves in order, each system's target, site and change id (read-only)."""
    rows = [(("canary" if w == 0 else f"wave {w}"), m.name, m.target, m.site or "-",
             m.parameters.get("change_id", ""))
            for w, wave in enumerate(spec.waves) for m in wave]
    limits = (f"at most {spec.concurrency} at once; no new system once {spec.max_failures} "
              f"failed or the canary failed"
              + ("; each wave after the canary waits for an approval"
                 if spec.approve_between_waves else ""))
    display(HTML(f"<p><b>{html.escape(spec.name)}</b> ({html.escape(spec.change_id)}), "
                 f"{len(spec.members)} systems in {len(spec.waves)} waves: "
                 f"{html.escape(limits)}.</p>"
                 + _table(("wave", "system", "target", "site", "change"), rows)))


def _bar(done: int, total: int, width: int = 20) -> str:
    full = round(width * done / total) if total else width
    return "█" * full + "░" * (width - full) + f" {done}/{total}"


def _rows(spec: CampaignSpec, members: Sequence[MemberState]) -> str:
    by_wave: dict[int, list[MemberState]] = {}
    for m in members:
        by_wave.setdefault(m.wave, []).append(m)
    bars = "".join(
        f"<div class='bar'>{'canary' if w == 0 else f'wave {w}'}: "
        f"{html.escape(_bar(sum(m.state in ('ended', 'interrupted') for m in ms), len(ms)))}"
        "</div>" for w, ms in sorted(by_wave.items()))
    rows = [(m.name, m.wave, m.state, m.outcome or "-",
             "-" if m.outage_s is None else f"{m.outage_s:g} s",
             _Link(m.report) if m.report else "-")
            for m in members]
    return bars + _table(("system", "wave", "state", "outcome", "outage", "record"), rows)


class CampaignTable:
    """A live table of the campaign's systems: one display, updated in place."""

    def __init__(self, spec: CampaignSpec) -> None:
        self.spec = spec
        members = [MemberState(m.name, m.target, w)
                   for w, wave in enumerate(spec.waves) for m in wave]
        self.handle = display(HTML(_rows(spec, members)), display_id=True)

    def update(self, members: Sequence[MemberState]) -> None:
        """Show MEMBERS (the campaign's ``on_change``)."""
        if self.handle is not None:
            self.handle.update(HTML(_rows(self.spec, members)))


def campaign_result(spec: CampaignSpec, result: CampaignResult) -> RunResult:
    """Show the final table from the campaign's journal and return the run's result
    (the record's facts: outcome completed / failed / paused, each system, the totals)."""
    status = campaign_status(spec)
    display(HTML(_rows(spec, result.members)))
    outcome = {"completed": Outcome.COMPLETED, "waiting": Outcome.PAUSED}.get(
        result.outcome, Outcome.FAILED)
    totals = status["totals"]
    return RunResult(
        outcome=outcome, system=f"campaign:{spec.name}", change_id=spec.change_id,
        outage_s=totals["outage_s"], message=result.reason,
        extra={"systems": [{k: s[k] for k in ("name", "target", "wave", "state", "outcome",
                                                "outage_s", "report")}
                           for s in status["systems"]],
               "approvals": status["approvals"], "failed": totals["failed"],
               "dashboard": result.dashboard or ""})


class ApprovalPanel(LiveHTML, w.VBox):
    """The approval wave WAVE of SPEC's campaign waits for, asked in the notebook: who
    (Approver) and why (Reason), and an Approve button armed a moment after the panel is
    shown (:data:`ftkit_widgets.decide.ARM_S`, as a decision panel's), beside the command
    that does the same from a shell. A click journals the approval through
    :func:`ftkit.campaign.approve_wave` (the account and the time), exactly as the command
    does; a refusal (no name, a control character) is one line in the panel and journals
    nothing. An approval journaled meanwhile by the command is shown too (:meth:`look`):
    ``approval`` is then set, whoever gave it. ``on_approved`` callbacks run after it is
    seen."""

    asks = True

    def __init__(self, spec: CampaignSpec, wave: int) -> None:
        self.spec = spec
        self.wave = wave
        self.approval: dict[str, Any] | None = None
        self.expired = False
        self.on_approved: list[Callable[[], None]] = []
        names = [m.name for m in spec.waves[wave]]
        status = campaign_status(spec)
        ended = [s for s in status["systems"] if s["wave"] < wave]
        failed = [s["name"] for s in ended if s["failed"]]
        self.question = w.HTML(
            f"<b>Approve wave {wave} of campaign {esc(spec.name)} "
            f"({esc(spec.change_id)})?</b><div>It starts {esc(', '.join(names))} "
            f"({len(names)} {'system' if len(names) == 1 else 'systems'}). Before it: "
            f"{len(ended)} ended, {len(failed)} failed"
            + (f" ({esc(', '.join(failed))})" if failed else "") + ".</div>")
        self.by = w.Text(value="", description="Approver", placeholder="your name")
        self.reason = w.Text(value="", description="Reason", placeholder="why you approve",
                             layout={"width": "min(100%, 640px)"})
        self.button = w.Button(description=f"Approve wave {wave}", button_style="success",
                               icon="check", disabled=True, layout={"width": "auto"},
                               tooltip="journal your approval; the campaign goes on")
        self.armed = False
        self.command = w.HTML(
            f"<div style='color:{GREY};font-size:12px'>Or from a shell: <code>ftkit campaign "
            f"approve {esc(spec.path)} --wave {wave} --by NAME --reason WHY</code> (this "
            "panel then says who approved).</div>")
        self.message = w.HTML()
        self.output = w.Output()  # where a click's carrying on shows (Voilà)
        owner = _Owner()
        self.button.on_click(lambda _b: owner.run(lambda: self._clicked(self._approve)))
        super().__init__(children=[self.question, self.by, self.reason,
                                   w.HBox([self.button]), self.command, self.message,
                                   self.output])
        if not self.look():
            _arm_later(self._arm)

    def _arm(self) -> None:
        if self.approval is None and not self.expired:
            self.armed = True
            self.button.disabled = False

    @property
    def settled(self) -> bool:
        return self.approval is not None or self.expired

    def html(self) -> str:
        waiting = "" if self.settled else self.command.value
        return self.question.value + waiting + self.message.value

    def _approve(self) -> None:
        """The Approve button: journal the approval (one transaction), or say why not."""
        if self.approval is not None or self.expired:
            return  # disabled in the browser; a click that got through anyway
        try:
            if not self.armed:
                raise FtkitError(f"wave {self.wave}: this panel was shown a moment ago",
                                 "read it, then click")
            approve_wave(self.spec, wave=self.wave, by=self.by.value.strip(),
                         why=self.reason.value.strip())
        except FtkitError as err:
            if not self.look():  # the command's approval came first: that one stands
                self.message.value = note_html(str(err), colour=RED, title="not recorded")
            return
        self.look()

    def look(self) -> bool:
        """Read the campaign's journal: True (and the panel says who approved, and when)
        once WAVE's approval is journaled, by this panel or the command. Read-only."""
        if self.approval is not None:
            return True
        approval = approval_of(self.spec, self.wave)
        if approval is None:
            return False
        self.approval = approval
        self.button.disabled = self.by.disabled = self.reason.disabled = True
        say_on_line(f"Running: campaign {self.spec.name}, wave {self.wave} approved by "
                    f"{approval.get('by')}")
        why = f": {approval.get('why')}" if approval.get("why") else ""
        self.message.value = note_html(
            f"Wave {self.wave} approved by {approval.get('by')} (account "
            f"{approval.get('account')}) at {_when(approval.get('at'))}{why}. The campaign "
            "goes on.",
            colour=GREEN, title="Approved")
        self.keep()
        for callback in self.on_approved:
            callback()
        return True

    async def wait(self, timeout_s: float) -> dict[str, Any] | None:
        """Wait (top-level ``await`` in the cell, so that clicks arrive) until the wave is
        approved, here or by the command; the approval, or None after TIMEOUT_S (the button
        disabled, the panel saying how to go on; nothing journaled)."""
        deadline = time.monotonic() + timeout_s
        look = time.monotonic() + LOOK_S
        while self.approval is None:
            if time.monotonic() >= look:
                self.look()  # an approval given from a shell meanwhile
                look = time.monotonic() + LOOK_S
                continue
            if time.monotonic() >= deadline:
                self.expired = True
                self.button.disabled = True
                self.message.value = note_html(
                    f"No approval of wave {self.wave} within {timeout_s:g} s: the campaign "
                    f"waits. Approve it with ftkit campaign approve {self.spec.path} --wave "
                    f"{self.wave} --by NAME, then run the campaign again.", colour=YELLOW,
                    title="not approved")
                self.finish()
                return None
            await asyncio.sleep(0.05)
        self.finish()
        return self.approval

    def watch(self, timeout_s: float) -> None:
        """Where the panel cannot hold its cell (Voilà): read the journal every
        :data:`LOOK_S` on the kernel's event loop, for up to TIMEOUT_S, so that an approval
        given from a shell is seen (and ``on_approved`` runs) without a click."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no kernel loop (a script): nothing to watch with
            return
        deadline = time.monotonic() + timeout_s

        def tick() -> None:
            if not self.settled and not self.look() and time.monotonic() < deadline:
                loop.call_later(LOOK_S, tick)

        loop.call_later(LOOK_S, tick)


def _when(stamp: Any) -> str:
    """A journal's timestamp as ``2026-12-03 08:31:24 UTC``."""
    try:
        return datetime.fromisoformat(str(stamp)).astimezone(UTC).strftime(
            "%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return str(stamp)


def _panel_wait_s(spec: CampaignSpec) -> float:
    return spec.approval_wait_s if spec.approval_wait_s > 0 else PANEL_WAIT_S


async def drive_campaign(spec: CampaignSpec, *, scheduler: str | None = None,
                         on_change: Callable[[list[MemberState]], None] | None = None
                         ) -> CampaignResult:
    """Run SPEC's campaign in this cell (:func:`ftkit.campaign.run_campaign`). Where a
    person can click (JupyterLab), a wave that waits for an approval is asked in an
    :class:`ApprovalPanel` below and the campaign goes on once it is approved (a click, or
    ``ftkit campaign approve`` meanwhile); in Voilà, whose cells show their outputs once
    they end, the panel does not hold its cell and its approval carries the campaign on.
    Where nobody can click (papermill, ``ftkit campaign run``) it is ``run_campaign``,
    waiting ``approval_wait_min`` as the file says. Returns how the last run ended."""
    if nobody_can_click():
        return run_campaign(spec, scheduler=scheduler, on_change=on_change)
    while True:
        result = run_campaign(spec, scheduler=scheduler, on_change=on_change,
                              asked_in=ASKED_IN)
        panel = _ask_approval(spec, result)
        if panel is None:
            _said_on_line(spec, result)
            return result
        if in_voila():  # its cell shows its outputs once it ends: the panel cannot hold it
            _go_on_once_approved(spec, panel, scheduler=scheduler, on_change=on_change)
            panel.watch(_panel_wait_s(spec))
            return result
        if await panel.wait(_panel_wait_s(spec)) is None:
            _said_on_line(spec, result)
            return result


def _said_on_line(spec: CampaignSpec, result: CampaignResult) -> None:
    """The sticky line (shown once a panel led to it) says how the campaign's run ended."""
    say_on_line(f"Campaign {spec.name}: {result.outcome}",
                tone={"completed": "done", "waiting": "wait"}.get(result.outcome, "broken"))


def _ask_approval(spec: CampaignSpec, result: CampaignResult) -> ApprovalPanel | None:
    """The panel asking the approval RESULT's run stopped for (shown), or None."""
    wave = pending_approval(spec) if result.outcome == "waiting" else None
    if wave is None:
        return None
    panel = ApprovalPanel(spec, wave)
    show(panel)
    lead_to_panel(panel, f"the approval of wave {wave} (campaign {spec.name})")
    return panel


def _carry_on(spec: CampaignSpec, panel: ApprovalPanel, *, scheduler: str | None,
              on_change: Callable[[list[MemberState]], None] | None) -> None:
    """Voilà: PANEL's approval was journaled: run the campaign on (in PANEL's output), up
    to the next approval (asked there again) or its end, whose result is shown there."""
    try:
        result = run_campaign(spec, scheduler=scheduler, on_change=on_change,
                              asked_in=ASKED_IN)
    except FtkitError as err:
        panel.message.value = note_html(str(err), colour=RED, title="the campaign stopped")
        return
    nxt = _ask_approval(spec, result)
    if nxt is None:
        _said_on_line(spec, result)
        campaign_result(spec, result)
        return
    _go_on_once_approved(spec, nxt, scheduler=scheduler, on_change=on_change)
    nxt.watch(_panel_wait_s(spec))


def _go_on_once_approved(spec: CampaignSpec, panel: ApprovalPanel, *, scheduler: str | None,
                         on_change: Callable[[list[MemberState]], None] | None) -> None:
    """Voilà: once PANEL's wave is approved, the campaign carries on in PANEL's output."""
    panel.on_approved.append(lambda: _inside(panel.output, lambda: _carry_on(
        spec, panel, scheduler=scheduler, on_change=on_change)))
