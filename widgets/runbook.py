"""What the runbooks' cells call: one line each, safe to re-run and to resume.

Each step runs only when it is due (:meth:`ftkit.process.Session.due`), so a runbook run
again after a failure, a kill or a decision that ended the session skips what is done
or ruled out. A failure is shown with the session's state and the way on (Retry or
Abort) and then raised, so that a papermill run fails.

``live`` (JupyterLab, a person watching) shows widgets that keep updating; otherwise
(papermill, ``ftkit run``) static HTML, which the archived report keeps.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, overload

import ipywidgets as w
from IPython.display import HTML, display

from ftkit import drivers
from ftkit.archive import Outcome, RunResult
from ftkit.decisions import check_soak_minutes, provider_for
from ftkit.drivers import Driver
from ftkit.errors import FtkitError, StepFailedError
from ftkit.flow import Kind, Next
from ftkit.process import Plan, Session

from .attention import alert
from .decide import RecoveryPanel
from .render import (
    GREEN,
    GREY,
    RED,
    YELLOW,
    clock,
    esc,
    failure_html,
    mask_paths,
    note_html,
    status_html,
    system_html,
    table_html,
)
from .views import ActivityLog, StatusBar, SystemView, finish_settled, readiness_table, show

__all__ = [
    "abort_session",
    "check_readiness",
    "ensure_system",
    "overview",
    "record_header",
    "require_ready",
    "resolve",
    "result",
    "resume",
    "show_failure",
    "show_log",
    "show_plan",
    "soak",
    "step",
]


@overload
def resolve(path: str | os.PathLike[str]) -> str: ...
@overload
def resolve(path: Sequence[str | os.PathLike[str]]) -> list[str]: ...


def resolve(path: Any) -> Any:
    """A file a runbook parameter names, found from the current folder, else the runbooks
    folder, else its parent (the repository root); a list resolves item by item.

    So ``"../examples/demo-config.toml"`` works whether papermill runs from the
    repository root or from ``runbooks/``.
    """
    if isinstance(path, list | tuple):
        return [resolve(p) for p in path]
    from ftkit.runner import find_file

    return str(find_file(path))


def ensure_system(system: str, *, scenario: str = "demo", time_scale: float = 0.0) -> Driver:
    """Connect to SYSTEM; a ``sim://`` system that does not exist yet is created from
    SCENARIO first (so a fresh machine's first run works), and the notebook says so."""
    driver, created = drivers.ensure_system(system, scenario=scenario, time_scale=time_scale)
    if created:
        display(HTML(note_html(
            f"Created the simulated system {system} from scenario {scenario!r} "
            f"(time scale {time_scale:g}).")))
    return driver


_HEADER = "ftkit-record-header"  # display id: the result cell fills in how it ended
_HEADERS: dict[int, dict[str, Any]] = {}  # per session: the facts known at the start


def _versions(source: Session | Driver, names: Sequence[str]) -> dict[str, str]:
    st = source.system() if isinstance(source, Session) else source.status()
    try:
        members = st.boot_disk().members
    except LookupError:
        return {}
    seen: dict[str, set[str]] = {}
    for member in members.values():
        for name in names:
            seen.setdefault(name, set()).add(member.software.get(name, "-"))
    return {name: " / ".join(sorted(v)) for name, v in seen.items()}


def _header_html(facts: Mapping[str, Any]) -> str:
    rows = [{"": k, "record": v} for k, v in facts.items() if v not in (None, "")]
    return ("<b>Change record</b> (what a change manager reads first; the result at the "
            "end fills in how it ended)" + table_html(rows, ["", "record"]))


def record_header(source: Session | Driver, *, system: str, mode: str, change_id: str,
                  operator: str, reason: str, packages: Sequence[Any] = ()) -> None:
    """The record's header, shown first: change id, system, operator and account, reason,
    window (started; ended), packages before → after, outcome, outage, transactions lost.
    Shown now with what is known; :func:`result` fills in the rest in the same place."""

    from ftkit.decisions import account

    names = [getattr(p, "name", str(p)) for p in packages]
    labels = [getattr(p, "label", str(p)) for p in packages]
    change = change_id or "-"
    record = source.record if isinstance(source, Session) else None
    if record is not None and record.change_id and (record.change_id, record.operator) != (
            change_id or record.change_id, operator or record.operator):
        # a handover: the session's change goes on; who took it over, under what, is said
        change = (f"{record.change_id} (session {record.id}, started by "
                  f"{record.operator or 'unknown'}; taken over as {change_id or '-'})")
    facts: dict[str, Any] = {
        "change": change, "system": system, "mode": mode,
        "operator": f"{operator or '-'} (account {account()})", "reason": reason,
        "started": _started(record), "ended": "running",
        "packages": ", ".join(labels) or "-",
        "installed before": "; ".join(f"{k} {v}" for k, v in
                                      _versions(source, names).items()) or "-",
        "outcome": "running",
    }
    key = id(source)
    _HEADERS[key] = {"facts": facts, "names": names}
    display(HTML(_header_html(facts)), display_id=_HEADER)


def _started(record: Any) -> str:
    """When the session began, from the journal (a re-run keeps its start); now for a
    session not begun yet."""
    from datetime import UTC, datetime

    if record is not None and record.started:
        return f"{str(record.started)[:19].replace('T', ' ')} UTC"
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _finish_header(session: Session, outcome: str, facts: Mapping[str, Any] | None) -> None:
    from datetime import UTC, datetime

    from IPython.display import update_display

    known = _HEADERS.get(id(session))
    if known is None:
        return
    header = dict(known["facts"])
    record = session.record
    header["ended"] = (f"{str(record.ended)[:19].replace('T', ' ')} UTC"
                       if record is not None and session.done and record.ended
                       else datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    header["installed after"] = "; ".join(
        f"{k} {v}" for k, v in _versions(session, known["names"]).items()) or "-"
    header["outcome"] = outcome
    if facts is not None:
        header["outage"] = f"{facts['outage_s']:g} s"
        header["transactions lost"] = facts["lost_transactions"]
        if "window" in facts:  # the change controls (ftkit/window.py)
            header["change window"] = (f"{facts['window']['start']} to "
                                       f"{facts['window']['end']}: "
                                       + ("met" if facts["window"]["met"] else "not met"))
        if "outage_budget" in facts:
            budget = facts["outage_budget"]
            header["outage budget"] = (
                f"{budget['max_outage_s']:g} s: " + ("met" if budget["met"] else
                                                   f"exceeded by {budget['exceeded_by_s']:g} s"))
    update_display(HTML(_header_html(header)), display_id=_HEADER)


def _live(session: Session | None, live: bool | None) -> bool:
    if live is not None:
        return live
    return bool(getattr(getattr(session, "progress", None), "live", False))


def overview(source: Session | Driver, *, live: bool | None = None) -> None:
    """Show the status bar (for a session) and the system picture."""
    is_session = isinstance(source, Session)
    if _live(source if is_session else None, live):
        if is_session:
            show(StatusBar(source))
        show(SystemView(source))
        return
    if is_session:
        display(HTML(status_html(source)))
    display(HTML(system_html(source)))


def show_failure(session: Session | None, error: BaseException, *,
                 live: bool | None = None, system: str = "") -> None:
    """Show what failed, the state, and Retry/Abort (as buttons when live: one panel whose
    failure folds into a "Resolved" line once answered)."""
    if session is not None and session.broken and _live(session, live):
        show(panel := RecoveryPanel(session, error=error))
        alert(session, error, panel)  # notify, scroll to it, say so on the sticky line
        return
    display(HTML(failure_html(session, error, system=system)))
    if session is not None:
        display(HTML(status_html(session)))


def resume(session: Session | None, *, live: bool | None = None, mode: str = "interactive",
           decisions: Mapping[str, str] | None = None, operator: str = "",
           reason: str = "") -> str | None:
    """Carry on an unfinished session: say so, re-run a step a killed process left half
    done. A Broken session is answered by ``decisions["broken"]`` in auto mode (``retry``
    or ``abort``, journaled); otherwise the run stops here with the way on (later steps are
    skipped; the result cell fails the run). Returns the step run again, if any."""
    if session is None or not session.resumed or session.record is None:
        return None
    record = session.record
    display(HTML(note_html(
        f"Resuming session {record.id} of {session.target} (change {record.change_id or '-'}, "
        f"started {record.started[:19]} by {record.operator or 'unknown'}): it stands in "
        f"{record.upgrade_state} / {record.operational_state}. Steps already done are "
        "skipped; decisions already taken are not asked again.",
        colour=YELLOW, title="Resumed session")))
    provider = (provider_for(mode, decisions, operator=operator, reason=reason)
                if mode == "auto" else None)
    again = None
    try:
        while (nxt := session.next()).kind in (Kind.BUSY, Kind.RECOVER):
            if nxt.kind is Kind.RECOVER and provider is None:
                where, why = session.broken or ("", "")
                raise StepFailedError(f"the session is Broken at {where}: {why}",
                                      "Retry or Abort (see below)", step=where, reason=why)
            did = session.advance(provider, expect=nxt)
            if did.decision is not None:
                display(HTML(note_html(
                    f"The session was Broken at {nxt.name}: {did.decision.answer} "
                    f"(decisions: {did.decision.name}: {did.decision.answer}) — now "
                    f"{session.upgrade_state.value} / {session.operational_state.value}.",
                    colour=GREEN)))
            elif did.again:
                again = did.name
                display(HTML(note_html(f"{did.name} was interrupted and has been run again.",
                                       colour=GREEN)))
    except FtkitError as err:
        session.halt(err)
        show_failure(session, err, live=live)
    return again


def require_ready(results: Any, *, session: Session | None = None, system: str = "") -> None:
    """Stop (after showing why) if a readiness check failed: raise without a session (the
    readiness-check runbook), else stop this run (:meth:`Session.halt`). RESULTS is a
    list of :class:`~ftkit.checks.CheckResult` (or their DataFrame); warnings pass."""
    rows = (results.to_dict("records") if hasattr(results, "to_dict")
            else [{"check": r.check, "title": r.title, "status": str(r.status),
                   "detail": r.detail, "remedy": r.remedy} for r in results])
    bad = [r for r in rows if r["status"] == "fail"]
    if not bad:
        warned = sum(r["status"] == "warn" for r in rows)
        display(HTML(note_html(f"Readiness check passed: {len(rows)} checks, {warned} "
                               "warning(s).", colour=GREEN)))
        return
    first = bad[0]
    error = FtkitError(
        f"readiness check: {len(bad)} check(s) fail ({', '.join(r['check'] for r in bad)}); "
        f"first: {first['title']}: {first['detail']}",
        str(first["remedy"]) or "fix it and run the check again")
    show_failure(session, error, system=system)
    if session is None:
        raise error
    session.halt(error)  # nothing changed; the later steps skip, the result fails the run


def check_readiness(session: Session | None) -> None:
    """Run the readiness check before the session starts; show the table; a failed check
    stops the run before anything changes. Skipped once the session has started."""
    if session is None or session.started:
        if session is not None and session.record is not None:
            display(HTML(note_html("The readiness check ran at PrepareSplit of this session; "
                                   "it is not repeated.", colour=GREY)))
        return
    results = session.readiness()
    display(readiness_table(results))
    require_ready(results, session=session)


def show_log(session: Session | None, *, live: bool | None = None) -> None:
    """The session's activity log (journal): live and growing, or a static table."""
    if session is None:
        return
    view = ActivityLog(session)
    if _live(session, live):
        show(view)
    else:
        display(HTML(view.html()))
        view.close()


def step(session: Session | None, name: str, *, picture: bool = False,
         live: bool | None = None) -> None:
    """Run request NAME (PrepareSplit, Install, …) through the engine if it is the next
    step, else say why not; with ``picture`` show the status and the system picture as
    they are after it ran (a snapshot, even when live: the live views stay at the top). A
    failure shows the state and Retry/Abort; the run goes on to its log, timeline and
    result, which fails."""
    if session is None:
        return
    expect = Next(Kind.REQUEST, name)
    if session.next() != expect:
        if session.broken or session.last_error is not None:  # say why the step is skipped
            display(HTML(note_html(f"{name}: skipped ({_why_not(session)}).", colour=GREY)))
        elif (earlier := done_earlier_html(session, name)) is not None:
            display(HTML(earlier))  # a re-run (after a restart, say): its evidence stays
        return
    before = session.now()
    try:
        session.advance(expect=expect)
    except FtkitError as err:
        _failed(session, err, live=live)
        return  # the session records why; later steps skip; the result fails the run
    _done(session, name, before, picture=picture)


def done_earlier_html(session: Session, name: str) -> str | None:
    """What the journal holds of request NAME done earlier in this session (a re-run, a
    resumed session, a step a button ran): its outcome, when, and what was noted while it
    ran; None when it has not run. Read-only."""
    from .render import esc

    record = session.record
    if record is None:
        return None
    entries = session.journal.entries(record.id)
    outcome = next((e for e in reversed(entries) if e.kind == "outcome" and e.step == name),
                   None)
    if outcome is None:
        return None
    intent = next((e for e in entries if e.id == outcome.intent_id), None)
    began = intent.sim_time if intent is not None else None
    noted = [e for e in entries if e.kind == "info" and e.step == name
             and (intent is None or intent.id < e.id < outcome.id)]
    when = (f"t={clock(began)} → {clock(outcome.sim_time)}"
            if began is not None and outcome.sim_time is not None else outcome.ts[:19])
    head = note_html(f"{name}: done earlier in session {record.id} — {outcome.message} "
                     f"({when}, from the journal).", colour=GREEN, title="Done earlier")
    if not noted:
        return head
    items = "".join(f"<li>{esc(mask_paths(e.message))}</li>" for e in noted)
    return head + f"<ul style='margin:2px 0 6px'>{items}</ul>"


def _done(session: Session, name: str, before: float, *, picture: bool) -> None:
    took = session.now() - before
    display(HTML(note_html(f"{name} done ({took / 60:.1f} simulated minutes); the session is "
                           f"{session.upgrade_state.value} / "
                           f"{session.operational_state.value}.", colour=GREEN)))
    if picture:
        overview(session, live=False)


def _failed(session: Session, err: FtkitError, *, live: bool | None) -> None:
    progress = session.progress
    if hasattr(progress, "fail"):
        progress.fail()  # the step's bars turn red
    elif hasattr(progress, "close"):
        progress.close()
    show_failure(session, err, live=live)


def _why_not(session: Session) -> str:
    if session.done and session.record is not None:
        return f"the session ended: {session.record.outcome}"
    if session.broken:
        return f"the session is Broken at {session.broken[0]}"
    if session.last_error is not None:
        return "the run stopped above"
    return f"the session is {session.upgrade_state.value}"


def soak(session: Session | None, minutes: float) -> None:
    """Watch the merged system for MINUTES before the question that soaks first (the rest
    of them, for a resumed session), through the engine. The minutes are this run's
    (:attr:`Session.soak_minutes`): a Continue button after a Retry soaks them when it
    gets there."""
    if session is None:
        return
    session.soak_minutes = check_soak_minutes(minutes)
    if (nxt := session.next()).kind is not Kind.SOAK:
        soaked = session.soak_result()[0]
        if soaked and nxt.kind is Kind.DECIDE:
            display(HTML(note_html(f"Soaked {soaked:g} min already.", colour=GREY)))
        return
    try:
        did = session.advance(expect=nxt)
    except FtkitError as err:
        show_failure(session, err)
        return
    display(HTML(note_html(f"Soaked {did.minutes:g} min on the upgraded software: "
                           f"{did.served} transactions acknowledged meanwhile.", colour=GREEN)))


def abort_session(session: Session, *, operator: str = "", reason: str = "") -> str | None:
    """Abort SESSION's unfinished session and Finish it (the abort runbook); returns the
    outcome, or None when there is no unfinished session (nothing is changed then). A
    system that shows an upgrade under way with no unfinished session (its journal was
    lost) fails the run, naming ``ftkit recover``: it is never "nothing to abort".
    See :meth:`ftkit.process.Session.abort_and_finish`."""
    import getpass

    from ftkit.recovery import unrecorded

    try:
        outcome = session.abort_and_finish(who=operator or getpass.getuser(), why=reason)
    except FtkitError as err:
        show_failure(session, err)
        raise
    if outcome is None and (lost := unrecorded(session.system(), session.target)):
        show_failure(session, lost)  # split (or part way) with no session: recover first
        raise lost
    if outcome is None:
        display(HTML(note_html(f"{session.target} has no unfinished session: nothing to "
                               "abort, nothing changed.", colour=GREY)))
        return None
    assert session.record is not None
    display(HTML(note_html(f"Session {session.record.id} aborted and finished: "
                           f"{outcome}.", colour=GREEN)))
    return outcome


def show_plan(plan: Plan) -> Plan:
    """Show the plan's steps, its readiness check and the answers it assumed."""
    steps = plan.steps
    display(HTML("<b>Plan</b> (nothing on the system changes in plan mode)"
                 + table_html(steps, ["request", "what", "minutes", "outage", "decision"])))
    display(readiness_table(plan.checks))
    fails = [c for c in plan.checks if str(c.status) == "fail"]
    if fails:
        display(HTML(note_html(
            f"The upgrade would stop at PrepareSplit: {len(fails)} check(s) fail "
            f"({', '.join(c.check for c in fails)}).", colour=RED)))
    answers = ", ".join(f"{d.name}: {d.answer}" for d in plan.decisions)
    display(HTML(note_html(f"Decisions assumed by the plan: {answers}; total "
                           f"{sum(s['minutes'] for s in steps):.0f} minutes.", colour=GREY)))
    return plan


def result(session: Session | None, *, mode: str, system: str, change_id: str = "",
           operator: str = "") -> RunResult:
    """The run's result for the report archive (display it last): outcome, measured
    outage, lost transactions (:meth:`ftkit.process.Session.result`). Shows the summary;
    a run that stopped (Broken, refused, not ended) or lost a transaction shows why and
    where the system is left, then raises, so the run fails with its record complete."""
    if session is None:
        return RunResult(outcome=Outcome.PLANNED, system=system, change_id=change_id,
                         operator=operator, message="plan mode: nothing on the system changed",
                         extra={"mode": mode})
    from .decide import in_voila

    nxt = session.next()
    if (in_voila() and mode == "interactive" and nxt.kind is Kind.DECIDE
            and session.last_error is None and not session.done):
        # the app (Voilà): a panel above waits for its click, and carries the session on
        # a live widget: Voilà renders the cells' own outputs once, and updates only widgets
        box = _APP_RESULT[id(session)] = w.HTML(note_html(
            f"The runbook waits for the {nxt.name} decision in its panel above; each click "
            "carries the session on. This record is brought up to date, and archived, when "
            "it ends.", colour=YELLOW, title="Waiting for a decision"))
        display(box)
        _watch_the_end(session)
        finish_settled(session)
        return RunResult(outcome=Outcome.PAUSED, system=system, change_id=change_id,
                         operator=operator, message=f"waiting for the {nxt.name} decision",
                         extra={"mode": mode})
    try:
        outcome = session.result(mode=mode)
    except FtkitError as err:
        _facts_table(session)
        display(HTML(failure_html(session, err, panel="in its panel above")),
                display_id=_RESULT)
        _finish_header(session, f"failed: {err.message}",
                       session.facts() if session.record is not None else None)
        if _live(session, None):
            _watch_the_end(session)  # a panel's button may still end it: say so here
            # a person reads this cell: one line, not a traceback (papermill keeps it)
            said = f"{err.message[:1].upper()}{err.message[1:]}. The way on is shown above."
            err._render_traceback_ = lambda: [mask_paths(said)]  # type: ignore[attr-defined]
        raise
    else:
        _finish_header(session, str(outcome.to_dict()["outcome"]),
                       session.facts() if session.record is not None else None)
        return outcome  # type: ignore[no-any-return]
    finally:
        finish_settled(session)  # what a saved notebook keeps: static, readable later
        if not session.done:
            session.release()  # this run ends here; the next run may carry on


_RESULT = "ftkit-record-result"  # display id: the result's box, brought up to date
_APP_RESULT: dict[int, Any] = {}  # under Voilà: the result's box, a live widget, by session


def _watch_the_end(session: Session) -> None:
    """After the result cell, a panel's button (Retry, Abort, Finish, a decision) may carry
    the session on and end it: once the journal has its end, the header and the result's
    box say how it ended, and every view of the session becomes its static rendering (what
    the saved notebook keeps). Nothing is written but displays."""
    import logging

    unsubscribe: Any = None

    def heard(_entry: Any) -> None:
        try:
            if not session.done or session.record is None:
                return
            unsubscribe()
            ended(session)
        except Exception:  # a display: never let it stop the engine's caller
            logging.getLogger(__name__).exception("could not bring the record up to date")

    unsubscribe = session.subscribe(heard)


def ended(session: Session) -> None:
    """The session ended after this run's result cell (a panel's button ended it): the
    header and the result's box say so, from the journal, and every view of the session
    becomes static. Writes displays only."""
    from IPython.display import update_display

    record = session.record
    assert record is not None
    facts = session.facts()
    outcome = str(record.outcome)
    _finish_header(session, outcome, facts)
    rows = [{"fact": "outcome", "value": outcome},
            {"fact": "ended", "value": f"{str(record.ended or '')[:19].replace('T', ' ')} UTC"},
            {"fact": "total outage", "value": f"{facts['outage_s']:g} s"},
            {"fact": "lost transactions", "value": facts["lost_transactions"]}]
    from .decide import in_voila

    app = in_voila()  # the app archives its record itself (ftkit app)
    said = note_html(
        f"Session {record.id} ended after this cell ran: {outcome} (the journal's Finish). "
        + ("Its record is being archived…" if app else "Run All again to archive this record."),
        colour=GREEN if outcome != "failed" else RED, title="Ended from a panel")
    table = table_html(rows, ["fact", "value"])
    box = _APP_RESULT.pop(id(session), None) if app else None
    if box is not None:
        box.value = said + table
    else:
        update_display(HTML(said + table), display_id=_RESULT)
    finish_settled(session)
    if app:
        archived = said.replace("Its record is being archived…", _archived(session)) + table
        if box is not None:
            box.value = archived
        else:
            update_display(HTML(archived), display_id=_RESULT)


def _archived(session: Session) -> str:
    """Archive the app's record now that its session ended (:func:`ftkit.runner.
    record_app_run`, as ``ftkit run`` archives); what to say of it. Writes the archive."""
    from ftkit.runner import record_app_run

    session.release()  # the record's run reads the journal; nothing here drives it any more
    try:
        entry = record_app_run()
    except FtkitError as err:
        return f"Its record was not archived: {esc(mask_paths(str(err)))}."
    if entry is None:
        return "Run All again to archive this record."
    return (f"Its record is archived: {esc(entry.html or entry.notebook or '')} "
            f"(ledger entry {entry.seq}; ftkit reports list).")


def _facts_table(session: Session) -> None:
    """What the record states of a run that did not end well: outcome, each outage, the
    transactions and the decisions (a run that ended well shows its RunResult instead)."""
    if session.record is None:
        return
    facts = session.facts()
    rows = [
        {"fact": "outcome", "value": facts["outcome"] or "failed (the session did not end)"},
        {"fact": "outages", "value": "; ".join(
            f"{s:.1f} s at {clock(t)}"
            for s, t in zip(facts["outages_s"], facts["outage_at_s"], strict=True))
            or "none"},
        {"fact": "total outage", "value": f"{facts['outage_s']:g} s"},
        {"fact": "acknowledged transactions", "value": facts["acknowledged"]},
        {"fact": "lost transactions", "value": facts["lost_transactions"]},
        *({"fact": f"decision {d.name}",
           "value": f"{d.answer} by {d.who} ({d.source}): {d.why}"}
          for d in facts["decisions"]),
    ]
    display(HTML("<b>Summary</b>" + table_html(rows, ["fact", "value"])))
