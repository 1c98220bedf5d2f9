"""The campaign runbook's views: the plan, a live table of the systems, the result.

Plain HTML updated in place (``display(..., display_id=True)``), not widget models: what the
table last showed is what the saved notebook and its record show, with no live kernel."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from IPython.display import HTML, display

from ftkit.archive import Outcome, RunResult
from ftkit.campaign import CampaignResult, CampaignSpec, MemberState, campaign_status

__all__ = ["CampaignTable", "campaign_plan", "campaign_result"]

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
