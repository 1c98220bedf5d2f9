"""HTML renderings of a session and a system: pure functions, no widget imports.

The widgets (:mod:`ftkit_widgets.views`) show these live; a headless run (papermill) shows
the same HTML as a static snapshot, so the archived report carries the picture too.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

from ftkit.drivers import Driver
from ftkit.model import (
    DiskRole,
    MirrorState,
    Module,
    ModuleState,
    OperationalState,
    PartnerState,
    SideRole,
    SystemState,
)
from ftkit.process import Session
from ftkit.redact import mask_paths

__all__ = [
    "GREEN",
    "GREY",
    "RED",
    "YELLOW",
    "apps_label",
    "clock",
    "cost_text",
    "evidence_html",
    "failure_html",
    "mask_paths",
    "note_html",
    "resolved_html",
    "status_html",
    "system_html",
    "table_html",
]

GREEN, YELLOW, RED, GREY, BLUE = "#2e7d32", "#b26a00", "#c62828", "#757575", "#1565c0"
_BG = {GREEN: "#e8f5e9", YELLOW: "#fff8e1", RED: "#ffebee", GREY: "#f5f5f5", BLUE: "#e3f2fd"}
_FONT = "font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px;"


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _badge(text: str, colour: str) -> str:
    return (f"<span style='display:inline-block;padding:1px 7px;border-radius:9px;"
            f"background:{_BG.get(colour, '#eee')};color:{colour};border:1px solid {colour};"
            f"font-weight:600'>{esc(text)}</span>")


def _field(label: str, body: str) -> str:
    return (f"<span style='margin-right:18px;white-space:nowrap'>"
            f"<span style='color:{GREY}'>{esc(label)}</span> {body}</span>")


def _partner_colour(state: PartnerState) -> str:
    if state is PartnerState.OS_UP:
        return GREEN
    if state.hung or state in (PartnerState.OS_CRASHED, PartnerState.DC_OFF):
        return RED
    return YELLOW


def status_html(session: Session) -> str:
    """One line: upgrade state, operational state (Broken in red), partner state, where
    the applications run (reads the system once)."""
    op = session.operational_state
    op_colour = {OperationalState.READY: GREEN, OperationalState.BUSY: YELLOW}.get(op, RED)
    op_html = _badge(op.value, op_colour)
    broken = session.broken
    if broken:
        op_html += (f" <span style='color:{RED};font-weight:600'>at {esc(broken[0])}: "
                    f"{esc(broken[1])}</span>")
    partner = session.partner_state()
    st = session.system()
    apps = apps_label(st)
    apps_colour = RED if st.apps_on is None else GREEN
    state = session.upgrade_state.value
    if session.done and session.record is not None:
        state += f" (session {session.record.id} ended: {session.record.outcome})"
    partner_html = _badge(partner.value, _partner_colour(partner))
    if st.merged and partner is PartnerState.OS_SHUT_DOWN:
        # after merge the old side is shut down on purpose, its disk kept for an abort
        partner_html = (_badge(partner.value, GREY) + f" <span style='color:{GREY}'>"
                        "(expected: the old side is kept shut down for an abort)</span>")
    parts = [
        _field("system", f"<b>{esc(session.target)}</b>"),
        _field("upgrade state", _badge(state, BLUE)),
        _field("operational state", op_html),
        _field("partner state", partner_html),
        _field("applications on", _badge(apps, apps_colour)),
    ]
    # the fields wrap between themselves (never inside one) on a narrow window
    return (f"<div class='ftkit-status' style='{_FONT}padding:6px 8px;border:1px solid #ccc;"
            f"border-radius:4px;background:#fafafa;display:flex;flex-wrap:wrap;row-gap:4px'>"
            f"{''.join(parts)}</div>")


def apps_label(st: SystemState) -> str:
    """Where the applications run, in the operator's words: ``both enclosures``; while
    split the Production side; after merge ``new side (serving), enclosure 1``."""
    if st.apps_on is None:
        return "nowhere (outage)"
    if st.apps_duplex:
        return "both enclosures"
    if st.merged:
        return f"new side (serving), enclosure {st.apps_on}"
    return f"{st.sides[st.apps_on].role.value} side (enclosure {st.apps_on})"


def clock(seconds: float) -> str:
    """A moment of the system's clock as ``t=26:10`` (minutes:seconds): the one format
    the summary, the log, the picture and the journal's outage lines use."""
    minutes, secs = divmod(round(float(seconds)), 60)
    return f"t={minutes}:{secs:02d}"


def _duration(minutes: float) -> str:
    if minutes < 0.5:
        return ""
    if minutes < 90:
        return f"about {minutes:.0f} min"
    return f"about {minutes / 60:.1f}".removesuffix(".0") + " h"


def cost_text(rows: Iterable[tuple[str, Any]]) -> str:
    """What a click costs, from the declared estimates of the requests it runs
    (:meth:`ftkit.process.Session.costs`): ``no outage, about 26 min``, ``outage about
    60 s``, ``outage about 60 s, about 2 h in all``."""
    rows = list(rows)
    outage = sum(float(e.outage_s) for _r, e in rows)
    minutes = sum(float(e.minutes) for _r, e in rows)
    if not outage:
        took = _duration(minutes)
        return f"no outage, {took}" if took else "no outage"
    took = _duration(minutes - outage / 60)  # beyond the outage itself
    return f"outage about {outage:.0f} s" + (f", {took} in all" if took else "")


# --- the system picture ----------------------------------------------------------------


def _module_colour(mod: Module) -> str:
    if mod.state is ModuleState.ONLINE:
        return YELLOW if mod.below_mtbf else GREEN
    if mod.state in (ModuleState.BROKEN, ModuleState.SHOT, ModuleState.REMOVED,
                     ModuleState.EMPTY):
        return RED
    return YELLOW


def _role_and_note(st: SystemState, enc: int) -> tuple[str, str]:
    """The enclosure's role in the vendor's words, and what that means after merge."""
    side = st.sides[enc]
    if side.role is SideRole.DUPLEX:
        return "Duplex", ""
    if st.merged:
        # after merge the applications run on the upgraded enclosure; the original one
        # is kept, shut down, for an abort
        return (("new side (serving)", "upgraded software")
                if side.role is SideRole.UPGRADE
                else ("old side (kept for abort)", "original software"))
    return f"{side.role.value} side", ""


def _role(st: SystemState, enc: int) -> str:
    role, note = _role_and_note(st, enc)
    return f"{role} ({note})" if note else role


_TOP = 38  # where an enclosure's box starts, below its two title lines


def _enclosure_svg(st: SystemState, enc: int, x: int) -> str:
    side = st.sides[enc]
    mods = sorted((m for m in st.modules.values() if m.enclosure == enc), key=lambda m: m.id)
    apps_here = st.apps_on is not None and (st.apps_on == enc or st.apps_duplex)
    role, note = _role_and_note(st, enc)
    # the title and its note sit on two lines above the box, so neither runs into the
    # other enclosure's
    out = [f"<rect x='{x}' y='{_TOP}' width='250' height='150' rx='8' fill='#fafafa' "
           f"stroke='{BLUE if apps_here else GREY}' stroke-width='{3 if apps_here else 1.5}'/>",
           f"<text x='{x + 125}' y='16' text-anchor='middle' font-weight='bold' "
           f"font-size='13'>Enclosure {enc}: {esc(role)}</text>"]
    if note:
        out.append(f"<text x='{x + 125}' y='31' text-anchor='middle' font-size='11' "
                   f"fill='{GREY}'>({esc(note)})</text>")
    for i, mod in enumerate(mods):
        colour = _module_colour(mod)
        y = _TOP + 15 + i * 45
        label = f"{'CPU' if mod.kind == 'cpu' else 'I/O'} module {mod.id}: {mod.state.value}"
        if mod.primary:
            label += " (primary)"
        out.append(f"<rect x='{x + 12}' y='{y}' width='226' height='36' rx='4' "
                   f"fill='{_BG.get(colour)}' stroke='{colour}' stroke-width='1.5'/>"
                   f"<text x='{x + 20}' y='{y + 22}' font-size='12' fill='{colour}'>"
                   f"{esc(label)}</text>")
        if mod.reason and mod.state is not ModuleState.ONLINE:
            out.append(f"<title>{esc(mod.reason)}</title>")
    os_colour = _partner_colour(side.os)
    out.append(f"<text x='{x + 12}' y='{_TOP + 130}' font-size='12' fill='{os_colour}'>"
               f"OS: {esc(side.os.value)}{' (isolated)' if side.isolated else ''}</text>")
    if apps_here:
        out.append(f"<text x='{x + 12}' y='{_TOP + 145}' font-size='12' fill='{BLUE}' "
                   f"font-weight='bold'>applications run here</text>")
    return "".join(out)


def _member_text(st: SystemState, mirror: Any, enc: int) -> tuple[str, str, bool]:
    """(text, colour, current) for one member of an RDR mirror."""
    member = mirror.members.get(enc)
    if member is None:
        return "absent", GREY, False
    if not member.healthy:
        return "failed", RED, False
    state = mirror.state
    if state is MirrorState.MIRRORED:
        return "mirrored", GREEN, True
    if state is MirrorState.RESYNCING:
        if mirror.source == enc:
            return "resync source", GREEN, True
        return f"resyncing {mirror.progress * 100:.0f}%", YELLOW, False
    if state is MirrorState.BROKEN:
        return "broken (not mirrored)", RED, st.enclosure_up(enc)
    # disabled: split
    production = st.production if st.production is not None else 0
    if mirror.role is DiskRole.DATA:
        if enc == production:
            return "disabled (split): holds the data", GREEN, True
        return "disabled (split): stale copy", YELLOW, False
    running = st.apps_on if st.apps_on is not None else production
    if st.merged:
        what = "original software, kept for abort" if enc == production else "upgraded software"
    else:
        what = "original software" if enc == production else "Upgrade side's copy (updates go here)"
    return f"disabled (split): {what}", (GREEN if enc == running else YELLOW), enc == running


def system_html(source: Session | Driver | SystemState) -> str:
    """The two enclosures, RDR mirrors, teams, data disks and where the applications run."""
    if isinstance(source, SystemState):
        st = source
    else:
        st = source.system() if isinstance(source, Session) else source.status()
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' width='540' height='{_TOP + 160}' "
           "style='font-family:sans-serif'>" + _enclosure_svg(st, 0, 10)
           + _enclosure_svg(st, 1, 280) + "</svg>")
    if st.apps_on is None:
        apps = _badge("applications down (outage)", RED)
    elif st.apps_duplex:
        apps = _badge("applications on both enclosures", GREEN)
    elif st.merged:
        apps = _badge(f"applications on the {apps_label(st)}", GREEN)
    else:
        apps = _badge(f"applications on enclosure {st.apps_on} ({_role(st, st.apps_on)})",
                      GREEN)
    rows = []
    for mirror in st.mirrors.values():
        cells = []
        for enc in (0, 1):
            text, colour, current = _member_text(st, mirror, enc)
            mark = " ★ current" if current else ""
            cells.append(f"<td style='color:{colour}'>{esc(text)}<b>{mark}</b></td>")
        rows.append(f"<tr><td><b>{esc(mirror.name)}</b></td><td>{esc(mirror.role.value)}</td>"
                    f"<td>{mirror.size_gb:g} GB ({esc(mirror.physical)})</td>{''.join(cells)}</tr>")
    for disk in st.external.values():
        cells = []
        for enc in (0, 1):
            reach = disk.hbas.get(enc, False)
            uses = st.apps_on == enc or (st.apps_duplex and st.apps_on is not None)
            text = ("reachable" if reach else "cut off (isolated)") + (
                " ★ in use" if reach and uses else "")
            cells.append(f"<td style='color:{GREEN if reach else YELLOW}'>{esc(text)}</td>")
        health = "" if disk.healthy else f" <span style='color:{RED}'>failed</span>"
        rows.append(f"<tr><td><b>{esc(disk.name)}</b>{health}</td><td>external data</td>"
                    f"<td>{disk.size_gb:g} GB (duplexed HBAs)</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("disk", "role", "size", "enclosure 0",
                                              "enclosure 1"))
    disks = ("<style>.ftkit-disks th, .ftkit-disks td {text-align: left !important; "
             "padding: 2px 8px; vertical-align: top}</style>"
             f"<table style='border-collapse:collapse' class='ftkit-disks'><tr>{head}</tr>"
             + "".join(rows) + "</table>")
    teams = []
    for team in st.teams.values():
        adapters = ", ".join(f"{a.name} (enclosure {a.enclosure}{'' if a.link else ', no link'})"
                             for a in team.adapters)
        line = (f"<li><b>{esc(team.name)}</b> {esc(team.address)} ({esc(team.addressing)}) on "
                f"{esc(team.network)}: {esc(adapters)}")
        upgrade_ips = [s.address for s in st.sides.values() if s.address]
        if upgrade_ips and _on_network(upgrade_ips[0], team.network):
            line += f"; Upgrade side reachable at <b>{esc(upgrade_ips[0])}</b>"
        teams.append(line + "</li>")
    return (f"<div class='ftkit-system' style='{_FONT}'>"
            f"<div style='margin-bottom:4px'><b>{esc(st.name)}</b> ({esc(st.model)}), "
            f"simulated time {clock(st.now)} — {apps}</div>{svg}"
            f"<div style='margin-top:6px'>{disks}</div>"
            f"<div style='margin-top:6px'>Network teams:<ul style='margin:2px 0'>"
            f"{''.join(teams)}</ul></div></div>")


def _on_network(address: str, network: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


# --- tables and notes -----------------------------------------------------------------


def table_html(rows: Iterable[Mapping[str, Any]], columns: Iterable[str], *,
               colours: Mapping[str, str] | None = None, colour_key: str = "",
               wrap: Iterable[str] = ("message", "what", "value")) -> str:
    """A plain HTML table; ``colours[row[colour_key]]`` tints a row; only the WRAP
    columns wrap."""
    cols, wrapping = list(columns), set(wrap)
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{esc(c)}</th>" for c in cols)
    body = []
    for row in rows:
        colour = (colours or {}).get(str(row.get(colour_key, ""))) if colour_key else None
        style = f" style='background:{_BG.get(colour, '')};color:{colour}'" if colour else ""
        body.append(f"<tr{style}>" + "".join(
            f"<td style='text-align:left;padding:2px 8px;vertical-align:top;"
            f"white-space:{'normal' if c in wrapping else 'nowrap'}'>"
            f"{esc(row.get(c, ''))}</td>" for c in cols) + "</tr>")
    return (f"<table style='border-collapse:collapse;{_FONT}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def note_html(text: str, *, colour: str = BLUE, title: str = "") -> str:
    """A boxed note; TEXT is escaped."""
    head = f"<b>{esc(title)}</b><br>" if title else ""
    return (f"<div style='{_FONT}border-left:4px solid {colour};background:{_BG.get(colour)};"
            f"padding:6px 10px;margin:4px 0'>{head}{esc(text)}</div>")


def _production_down_html(session: Session) -> list[str]:
    """The Production side failed while split (docs/DOMAIN.md#faults-while-split). Say it
    is an outage, that its data is the only up-to-date copy, and what the two ways out are."""
    st = session.system()
    if not st.split or st.merged or st.apps_on is not None or st.production is None:
        return []
    prod, up = st.production, 1 - st.production
    return [
        f"<b style='color:{RED}'>This is an outage</b>: the Production side (enclosure "
        f"{prod}) is down, and while split it has no partner to carry on. Its data disks "
        "hold the only up-to-date copy of the data: no choice below overwrites them.",
        "Two ways to bring the applications back:<ol style='margin:2px 0'>"
        f"<li><b>Repair the Production side</b> (enclosure {prod}); it restarts the "
        "applications on the original software. Then Retry (carry on with the upgrade) or "
        "Abort.</li>"
        f"<li><b>Restart the applications on the Upgrade side</b> (enclosure {up}) with the "
        "Production side's data: Retry the failed step (the Upgrade side is healthy), then "
        "proceed to merge — the merge hands the data disks over and starts the applications "
        "on the upgraded software. Commit waits until the Production side is repaired; Abort "
        "too (it returns to that side).</li></ol>",
    ]


def _causes(error: BaseException) -> list[str]:
    """The messages of the errors behind ERROR (its cause chain), without tracebacks."""
    seen: list[str] = []
    cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    while cause is not None and len(seen) < 5:
        said = str(getattr(cause, "message", "") or cause)
        if said and said not in seen:
            seen.append(said)
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    return seen


def failure_html(session: Session | None, error: BaseException, *, system: str = "",
                 panel: str = "in the panel below") -> str:
    """What went wrong, where the system stands, and the operator's ways on (Retry/Abort):
    one friendly view, no class name, no traceback, no machine path; the details one
    click away. PANEL says where the Retry and Abort buttons are from here. Read-only."""
    message = mask_paths(str(getattr(error, "message", "") or error))
    remedy = mask_paths(str(getattr(error, "remedy", "") or ""))
    parts = [f"<b style='color:{RED}'>{esc(message)}</b>"]
    if remedy:
        parts.append(f"What to do: {esc(remedy)}")
    target = session.target if session is not None else system
    abort_hint = (f"run <code>runbooks/abort.ipynb</code> with <code>system = "
                  f"\"{esc(target)}\"</code> to abort the session and return to the original "
                  "software")
    if session is not None and session.broken:
        step, reason = session.broken
        parts.extend(_production_down_html(session))
        parts.append(
            f"The session is <b style='color:{RED}'>Broken at {esc(step)}</b>: "
            f"{esc(mask_paths(reason))}. Nothing advances until you choose:"
            "<ul style='margin:2px 0'>"
            "<li><b>Retry</b> — after fixing the cause (repair the module, free the service, "
            f"fix the custom action), click Retry {esc(panel)}; or run this runbook "
            "again in auto mode with <code>broken: retry</code> in <code>decisions</code>: it "
            "retries the step and carries on where it stopped.</li>"
            f"<li><b>Abort</b> — click Abort {esc(panel)}, or {abort_hint}.</li></ul>")
    elif session is not None and session.record is not None and not session.done:
        parts.append(
            f"The system is left as it is: upgrade state <b>{esc(session.upgrade_state.value)}"
            f"</b>, {esc(session.operational_state.value)}; nothing was lost. Run this runbook "
            f"again to carry on (it resumes this session), or {abort_hint}.")
    else:
        parts.append("Nothing on the system was changed by this step.")
    details = [f"<li>{esc(mask_paths(c))}</li>" for c in _causes(error)]
    step = getattr(error, "step", "") or (session.broken[0] if session and session.broken
                                          else "")
    if step:
        details.insert(0, f"<li>step: {esc(step)}</li>")
    if details:
        parts.append("<details><summary style='cursor:pointer'>Details</summary>"
                     f"<ul style='margin:2px 0'>{''.join(details)}</ul></details>")
    return (f"<div class='ftkit-failure' style='{_FONT}border-left:4px solid {RED};"
            f"background:{_BG[RED]};padding:6px 10px;margin:4px 0'>{'<br>'.join(parts)}</div>")


def resolved_html(failure: str, error: BaseException, how: str) -> str:
    """A failure view (FAILURE, from :func:`failure_html`) once answered: one grey line
    "Resolved: what failed — HOW", the view as it was one click away."""
    message = mask_paths(str(getattr(error, "message", "") or error))
    return (f"<div class='ftkit-resolved' style='{_FONT}border-left:4px solid {GREY};"
            f"background:{_BG[GREY]};padding:6px 10px;margin:4px 0'><details>"
            f"<summary style='cursor:pointer'><b>Resolved</b>: {esc(message)} — {esc(how)}"
            f"</summary>{failure}</details></div>")


def evidence_html(session: Session) -> str:
    """What the commit decision rests on, measured (read-only): the merge's outage (against
    ``max_outage_s`` when set), the soak and the transactions served meanwhile, the soak's
    probes (passed, failed, the last errors), the transactions lost
    (:func:`ftkit.probes.evidence`); the approvals Commit needs and who gave them
    (:func:`ftkit.approvals.state`), and, while some are missing, who may approve and the
    command (the account looking, when it is the operator's, told it cannot); and that
    Commit is the point of no return."""
    from ftkit.approvals import state
    from ftkit.probes import evidence

    facts = session.facts()
    shown = evidence(session)
    outages = "; ".join(f"{s:.1f} s at {clock(t)}" for s, t in
                        zip(facts["outages_s"], facts["outage_at_s"], strict=True))
    outages = outages or "none measured"
    budget = shown.get("max_outage_s")
    over = budget is not None and shown["outage_s"] > budget
    if budget is not None:
        outages += (f" (budget {budget:g} s: exceeded by {shown['outage_s'] - budget:.1f} s)"
                    if over else f" (budget {budget:g} s: met)")
    minutes, served = session.soak_result()
    soak = (f"{minutes:g} min on the upgraded software, {served} transactions acknowledged"
            if minutes else "not soaked")
    passed, failed = shown["probes_passed"], shown["probes_failed"]
    lost = facts["lost_transactions"]
    rows = [("measured outage of the merge", outages, over),
            ("soak", soak, False),
            ("probes", f"{passed} passed, {failed} failed" if passed or failed else "none ran",
             bool(failed))]
    rows += [("probe error", mask_paths(error), True) for error in shown["errors"]]
    rows.append(("transactions lost", str(lost), bool(lost)))
    approvals = state(session)
    needed, given = approvals["required"], approvals["given"]
    names = ", ".join(f"{a['by']} ({a['account']}, {a['when']})" for a in given)
    rows.append(("approvals of Commit",
                 f"{len(given)} of {needed} required" + (f": {names}" if names else "")
                 if needed or given else "none required", len(given) < needed))
    body = "".join(f"<tr><td style='color:{GREY};padding:1px 8px 1px 0'>{esc(k)}</td>"
                   f"<td style='color:{RED if bad else ''}'><b>{esc(v)}</b></td></tr>"
                   for k, v, bad in rows)
    notes = ""
    if len(given) < needed:
        who = (f"Your account ({esc(approvals['operator'])}) runs this change: it cannot "
               "approve it; another account runs" if approvals["own"] else
               f"Any account but {esc(approvals['operator'])} (the operator's) runs")
        notes = (f"<div class='ftkit-approval' style='margin-top:4px;color:{YELLOW}'>"
                 f"Commit waits for {needed - len(given)} more approval(s). {who}: "
                 f"<code>{esc(approvals['command'])}</code></div>")
    return (f"<div class='ftkit-evidence' style='{_FONT}margin:4px 0'>"
            f"<table style='border-collapse:collapse'>{body}</table>{notes}"
            f"<div style='margin-top:4px;color:{RED}'><b>Commit is the point of no return</b>: "
            "once Commit has started, Abort is refused.</div></div>")
