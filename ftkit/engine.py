"""The one engine: the only code that changes an Active Upgrade session.

:func:`advance` moves a session by one step of the process declared in
:mod:`ftkit.flow`, and every face calls it: a runbook cell, a widget button, the CLI, the
abort runbook, :meth:`ftkit.process.Session.run` and a campaign worker. One step is one
of: run the request that is due; at a decision, ask the decider and run the request the
answer leads to, the answer journaled in that request's intent transaction; at a pause,
journal the pause; before a question that soaks first, soak; for a Broken session, ask
``broken`` and Retry or Abort; for a step a dead process left half done, run it again.

How a request runs (one transaction per state change; see docs/DESIGN.md, "The
journal's guarantees"):

1. the journal is still the file opened and verifies; this process holds the system's
   controller lock; the request is allowed from where the session stands (the table's
   sources, refusals and guards) — a refusal changes nothing;
2. the answer that leads here (if any), the intent and the new Busy state: one
   transaction, synced before the system is asked anything;
3. the custom actions before, the request's registered body (:mod:`ftkit.steps`), the
   custom actions after;
4. the outcome with the new state (and, for Finish, the session's end): one transaction.
   ANY exception in 3 leaves the session Broken at the request with a one-line reason,
   never Busy; a process killed in 3 leaves the intent without an outcome, which the next
   advance runs again.

The session's state is read back from what the journal returns after each write, never
from an observer. Nothing here imports a widget or a notebook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ftkit import approvals, flow, probes
from ftkit import steps as _steps  # noqa: F401  (registers the bodies and guards on the table)
from ftkit import window as _window  # registers the change controls' guards and rules
from ftkit.actions import SIDES, run_actions, succeeded
from ftkit.decisions import Decision, DecisionProvider, account, check_soak_minutes
from ftkit.drivers import Driver, Progress
from ftkit.errors import (
    DecisionError,
    FtkitError,
    StepFailedError,
    TransitionError,
)
from ftkit.flow import DECISIONS, RECOVERY, REQUESTS, Kind, Next, Question, RequestSpec
from ftkit.journal import Journal, Note
from ftkit.model import OperationalState, Request, UpgradeState
from ftkit.packages import ensure_supported
from ftkit.record import installed_versions

if TYPE_CHECKING:
    from ftkit.process import Session

__all__ = ["Advanced", "StepRun", "abort_and_finish", "advance", "control", "release"]

S = UpgradeState
READY, BUSY, BROKEN = (OperationalState.READY.value, OperationalState.BUSY.value,
                       OperationalState.BROKEN.value)


@dataclass(frozen=True)
class Advanced:
    """What one :func:`advance` did: ``did`` is

    - ``Kind.REQUEST``: ran request ``name`` (``decision``: the answer that led to it;
      ``again``: it was the Broken or interrupted step, run again);
    - ``Kind.SOAK``: soaked ``minutes`` on the merged system, ``served`` transactions;
    - ``Kind.PAUSED``: paused on purpose before question ``name`` (``decision``);
    - ``Kind.DECIDE``: nothing done — question ``name`` waits for an answer (no decider);
    - ``Kind.BUSY``: nothing to run again — a Busy session with no half-done step was
      made Ready;
    - ``Kind.DONE``: nothing done — the session has ended;
    - ``Kind.HALTED``: nothing done — the next step is not the one expected (``name``
      says what it is).
    """

    did: Kind
    name: str = ""
    decision: Decision | None = None
    again: bool = False
    minutes: float = 0.0
    served: int = 0


@dataclass
class StepRun:
    """What a request's body (:mod:`ftkit.steps`) may use while it runs: the system, the
    configuration and packages, and notes for the journal (written in the outcome's
    transaction, or before the next custom action)."""

    session: Session
    spec: RequestSpec
    came_from: UpgradeState
    notes: list[Note] = field(default_factory=list)

    @property
    def driver(self) -> Driver:
        return self.session.driver

    @property
    def progress(self) -> Progress | None:
        return self.session.progress

    @property
    def request(self) -> Request:
        return self.spec.name

    def now(self) -> float:
        return self.session.now()

    def note(self, kind: str, message: str, **fields: Any) -> None:
        """Keep a note of what the step observed after its last driver request; it is
        journaled in the step's outcome transaction (or before the next custom action)."""
        self.notes.append(Note(kind, message, **fields))

    def log(self, kind: str, message: str, **fields: Any) -> None:
        """Journal a progress note now, without waiting for the disk (the step's synced
        intent came first; nothing reads it back)."""
        record = self.session.record
        assert record is not None
        self.session.journal.log(record.id, kind, message, sim_time=self.now(), sync=False,
                                 **fields)

    def flush(self) -> None:
        """Write the kept notes now (one transaction), before the driver acts again."""
        record = self.session.record
        if self.notes and record is not None:
            notes, self.notes = self.notes, []
            self.session.journal.log_many(record.id, notes)

    def answers(self) -> dict[str, str]:
        return self.session.answers()


# --- the one mutating entry point ------------------------------------------------------

def advance(session: Session, decider: DecisionProvider | None = None, *,
            request: Request | str | None = None, expect: Next | None = None) -> Advanced:
    """Advance SESSION by one step and say what was done (see the module's notes).

    - DECIDER answers the question the step needs (``split``, ``merge``, ``commit``, or
      ``broken`` for a Broken session); without one, a step that needs an answer does
      nothing and returns ``Advanced(Kind.DECIDE, question)``.
    - REQUEST runs that request instead of the table's next step (the operator's Abort;
      refused, changing nothing, where the table does not allow it).
    - EXPECT: do nothing unless the next step is this one (a runbook cell runs only its
      own step: ``Advanced(Kind.HALTED, what is next instead)``).

    A failure raises (StepFailedError with the way on, TransitionError for a refusal,
    DecisionError for a decider that cannot answer) and stops this run:
    :attr:`Session.last_error` is set, so later steps of the run are not due.
    """
    try:
        return _advance(session, decider, request=request, expect=expect)
    except FtkitError as err:
        session.last_error = err
        raise


def _advance(session: Session, decider: DecisionProvider | None, *,
             request: Request | str | None, expect: Next | None) -> Advanced:
    session.journal.check()  # still there, still verifying: else stop before acting
    if request is not None:
        if Request(request) not in REQUESTS:
            raise TransitionError(f"unknown request {request!r}",
                                  f"use one of: {', '.join(REQUESTS)}")
        return _perform(session, REQUESTS[Request(request)])
    nxt = session.standing()
    if expect is not None and nxt != expect:
        return Advanced(Kind.HALTED, str(nxt))
    if nxt.kind is Kind.DONE:
        return Advanced(Kind.DONE)
    if nxt.kind is Kind.REQUEST:
        return _perform(session, REQUESTS[Request(nxt.name)])
    if nxt.kind is Kind.BUSY:
        return _resume(session)
    if nxt.kind is Kind.SOAK:
        return _soak(session)
    if nxt.kind is Kind.DECIDE:
        ruled = _ruled(session, DECISIONS[Question(nxt.name)])
        if ruled is not None:
            return ruled
    if decider is None:
        if nxt.kind is Kind.DECIDE:
            _pending(session, Question(nxt.name))  # people hear of it (config's notify)
        return Advanced(Kind.DECIDE, RECOVERY.name if nxt.kind is Kind.RECOVER else nxt.name)
    if nxt.kind is Kind.RECOVER:
        return _recover(session, decider, nxt.name)
    spec = DECISIONS[Question(nxt.name)]
    control(session)
    answer = decider.decide(spec.name.value)
    if answer.answer == flow.EXPIRED:
        return _expired(session, spec, answer)
    if answer.answer in spec.pauses:
        return _pause(session, answer)
    answer = _resolve(session, spec, answer)  # a condition ("commit: if-healthy") decides
    if answer.answer not in spec.answers:
        raise DecisionError(f"{spec.name}: {answer.answer!r} is not an answer",
                            f"answer one of: {' | '.join(spec.choices)}")
    leads = REQUESTS[Request(spec.answers[answer.answer])]
    if flow.APPROVED in leads.guards:  # missing approvals: told, and an auto run waits
        approvals.wait(session, answer)
        approvals.hold(session, answer)  # still missing: refused, the answer not recorded
    return _perform(session, leads, decision=answer)


def _resolve(session: Session, spec: flow.DecisionSpec, answer: Decision) -> Decision:
    """ANSWER, or for a declared condition the answer its check takes, the check's reason
    added to why (journaled with the request it leads to)."""
    taken, why = spec.resolve(answer.answer, session)
    if not why:
        return answer
    from dataclasses import replace

    from ftkit.probes import summary

    return replace(answer, answer=taken, why=f"{answer.why}; {why} → {taken} "
                   f"({summary(session)})".lstrip("; "))


def _pending(session: Session, question: Question) -> None:
    """Notify the configuration's ``notify`` URLs that QUESTION waits (once a session)."""
    from ftkit.notify import decision_pending

    decision_pending(session, question.value)


def release(session: Session) -> None:
    """Give up the controller lease (the end of a run that leaves the session open:
    paused, failed, or driven step by step); the next run may take it. Everything
    journaled is durable when it returns."""
    session.journal.release()
    session.journal.sync()


def control(session: Session) -> None:
    """Become the one controller of this system's session (or renew the lease): raises
    SessionBusyError naming the process that drives it while that process lives. Every
    step takes it first; :func:`ftkit.process.open_session` takes it before it journals
    a reopening or a handover."""
    claim(session.journal, operator=session.operator, change_id=session.change_id)


def claim(journal: Journal, *, operator: str, change_id: str) -> None:
    """:func:`control` before there is a session object: the lease names who drives it."""
    journal.claim(f"{operator or 'unknown'} ({change_id or 'no change id'})")


def _reload(session: Session) -> None:
    """The session's state as the journal returns it after every write: the row the write
    left, read and written in its transaction."""
    if session.record is not None:
        session.record = session.journal.written(session.record.id)


class _Aborting:
    """The abort runbook's answers: stop or abort at any question, abort a Broken step."""

    at_once = True  # nothing waits for a person

    def __init__(self, who: str, why: str) -> None:
        self.who, self.why = who, why

    def decide(self, name: str) -> Decision:
        from ftkit.decisions import make_decision

        question = Question(name)
        spec = RECOVERY if question is RECOVERY.name else DECISIONS[question]
        answer = next(a for a, r in spec.answers.items() if r == Request.ABORT)
        return make_decision(name, answer, who=self.who, why=self.why, source="parameter")


def abort_and_finish(session: Session, *, who: str, why: str) -> str | None:
    """Abort the unfinished session and Finish it, step by step through :func:`advance`;
    returns the outcome, or None when there is no unfinished session (nothing changed).

    Who and why are journaled before anything is done. A step a killed process left half
    done is run again first; if it fails, the session is Broken there and is aborted from
    there (an Abort that itself broke is retried). Once Commit has started, Abort is
    refused (TransitionError): complete the commit instead."""
    if session.record is None or session.done:
        return None
    control(session)
    session.journal.log(session.record.id, "info",
                        f"Abort requested by {who} (abort runbook): {why or '-'}",
                        detail={"action": "abort", "who": who, "why": why,
                                "source": "parameter"})
    aborting = _Aborting(who, why)
    try:
        while session.standing().kind is Kind.BUSY:
            advance(session)
    except FtkitError:
        if not session.broken:
            raise
    nxt = session.standing()
    if nxt.kind is Kind.RECOVER:
        advance(session, aborting)
    elif session.upgrade_state is not S.ABORT:
        advance(session, request=Request.ABORT)
    while session.standing() == Next(Kind.REQUEST, flow.LAST):
        advance(session)
    assert session.record is not None
    return session.record.outcome


# --- requests --------------------------------------------------------------------------

def _refuse(session: Session, spec: RequestSpec) -> None:
    """Raise TransitionError when SPEC may not start now; changes nothing."""
    if session.record is None and spec.name is not flow.FIRST:
        raise TransitionError(f"{spec.name} needs a session", f"start with {flow.FIRST}")
    state = session.upgrade_state
    if not spec.allowed_from(state):
        if state in spec.refusals:
            raise TransitionError(*spec.refusals[state])
        raise TransitionError(f"{spec.name} is not allowed in {state.value}",
                              "the next request is one of: "
                              f"{', '.join(flow.requests_from(state))}")
    broken = session.broken
    if broken and broken[0] != spec.name and spec.name is not Request.ABORT:
        raise TransitionError(f"the session is Broken at {broken[0]}: {broken[1]}",
                              "Retry that step or Abort")
    if session.operational_state is OperationalState.BUSY:
        raise TransitionError(f"the session is Busy with {spec.name}",
                              "wait, or resume it if the process running it died")
    if state in spec.sources:  # a fresh start (a retry was guarded when it first ran)
        refusal = spec.refusal(session)
        if refusal is not None:
            raise TransitionError(*refusal)


def _perform(session: Session, spec: RequestSpec, *, decision: Decision | None = None,
             again: bool = False) -> Advanced:
    """Run SPEC: intent (with DECISION) and Busy in one transaction, the work, the outcome
    with the new state in one transaction. A refused start journals DECISION alone."""
    try:
        control(session)
        _refuse(session, spec)
        came_from = session.upgrade_state
        begin = None
        if session.record is None:
            ensure_supported(session.packages)  # refused before the split, naming the rule
            begin = {"change_id": session.change_id, "operator": session.operator,
                     "reason": session.reason,
                     "data": {"account": account(),  # the authenticated one, as claimed
                              "config": session.config.to_dict(),
                              "packages": [p.to_dict() for p in session.packages],
                              # what the record states as "before → after" (ftkit.record)
                              "installed_before": installed_versions(
                                  session.driver, [p.name for p in session.packages]),
                              "sim_start": session.now()}}
        now = session.now()
        entered = spec.entered(came_from)
        # the answer that leads here, the intent and Busy: one transaction
        session.record, intent = session.journal.start(
            session.record.id if session.record else None, begin=begin, step=spec.name,
            message=f"{spec.name}: {spec.description}", upgrade_state=entered.value,
            sim_time=now, decision=None if decision is None else _decision_fields(decision))
    except FtkitError:
        if decision is not None and session.record is not None:
            _record_decision(session, decision)  # the answer stands, its request refused
        raise
    assert intent is not None and session.record is not None
    sid = session.record.id
    step = StepRun(session, spec, came_from)
    try:
        if spec.actions:
            _actions(step, "before")
        ended = spec.run(step)
        if spec.actions:
            _actions(step, "after")
    except Exception as exc:  # any failure leaves the session Broken, never Busy
        err = exc if isinstance(exc, FtkitError) else StepFailedError.unexpected(
            exc, step=spec.name)
        reason = getattr(err, "reason", "") or err.message
        session.journal.outcome(
            sid, intent, ok=False, message=f"{spec.name} failed: {err}",
            detail={"error": type(exc).__name__, "step": getattr(err, "step", "") or spec.name},
            sim_time=session.now(), upgrade_state=entered.value, operational_state=BROKEN,
            broken_step=spec.name, broken_reason=reason, notes=_step_notes(step))
        _reload(session)
        raise StepFailedError(f"{spec.name} failed: {err.message}",
                              err.remedy or "Retry the step or Abort",
                              step=spec.name, reason=reason) from exc
    # the step's last notes, its outcome, the new state (and for Finish the session's end
    # and the lease given up): one transaction. It waits for the disk unless run() goes
    # straight on to another request, whose synced intent makes it durable before the
    # system is asked anything (a power cut between leaves what a kill leaves)
    session.journal.outcome(sid, intent, ok=True, message=f"{spec.name} done",
                            sim_time=session.now(), upgrade_state=spec.target.value,
                            operational_state=READY, end=ended, release=ended is not None,
                            notes=_step_notes(step),
                            sync=not (ended is None and _straight_on(session, spec)))
    _reload(session)
    return Advanced(Kind.REQUEST, spec.name, decision=decision, again=again)


def _straight_on(session: Session, spec: RequestSpec) -> bool:
    """Whether :meth:`Session.run` goes on from SPEC's success to another request without
    waiting for anything: the next step is a request, or a question its decider answers at
    once (``at_once``), the answer's intent synced before the system is asked anything. An
    approval waited for is waited for with everything durable (:func:`approvals.wait`)."""
    if not session.driving:
        return False
    kind = _next_after(session, spec).kind
    return kind is Kind.REQUEST or (kind is Kind.DECIDE and session.driving_at_once)


def _next_after(session: Session, spec: RequestSpec) -> Next:
    """What comes next once SPEC succeeded (read-only; pure over the journal)."""
    facts = session.log_facts()
    ok = facts.succeeded | {spec.name}
    return flow.next_step(started=True, ended=False, state=spec.target, operational=READY,
                          broken_step=None, answers=dict(facts.answers),
                          succeeded=ok.__contains__, soaked=facts.soaked(session.soak_minutes))


def _step_notes(step: StepRun) -> list[Note]:
    """The notes kept for the step's outcome, then its outages not yet journaled."""
    notes, step.notes = step.notes, []
    return notes + session_outage_notes(step.session, step.spec.name)


def _resume(session: Session) -> Advanced:
    """A Busy session whose process died: run the half-done step again (its interrupted
    intent closed as Broken first), or, with none half done, make it Ready."""
    assert session.record is not None
    control(session)
    pending = session.journal.pending_intent(session.record.id)
    if pending is None and session.operational_state is not OperationalState.BUSY:
        raise TransitionError(  # the table leads nowhere from here: say so, change nothing
            f"nothing is declared to run from {session.upgrade_state.value} / "
            f"{session.operational_state.value}",
            "run the abort runbook, or ftkit recover if the journal was replaced")
    if pending is None:
        session.journal.set_state(session.record.id, upgrade_state=session.upgrade_state.value,
                                  operational_state=READY,
                                  message="resumed: no step was half done")
        _reload(session)
        return Advanced(Kind.BUSY)
    session.journal.log(session.record.id, "warning",
                        f"resuming: {pending.step} was interrupted; running it again",
                        step=pending.step, sim_time=session.now())
    _close_interrupted(session, pending.id, pending.step)
    return _perform(session, REQUESTS[Request(pending.step)], again=True)


def _close_interrupted(session: Session, intent: int, step: str) -> None:
    assert session.record is not None
    session.journal.outcome(session.record.id, intent, ok=False,
                            message=f"{step} interrupted (the process ended)",
                            sim_time=session.now(), upgrade_state=session.upgrade_state.value,
                            operational_state=BROKEN, broken_step=step,
                            broken_reason="interrupted")
    _reload(session)


def _recover(session: Session, decider: DecisionProvider, step: str) -> Advanced:
    """Answer a Broken session with DECIDER's ``broken`` decision: Retry runs the Broken
    step again, Abort aborts; the answer is journaled with that request's intent."""
    why = session.broken[1] if session.broken else ""
    control(session)
    try:
        decision = decider.decide(RECOVERY.name.value)
    except DecisionError:
        raise StepFailedError(
            f"the session is Broken at {step}: {why}",
            f"fix the cause, then run again with decisions {RECOVERY.name}: {flow.RETRY}; or "
            f"{RECOVERY.name}: abort (or the abort runbook) to return to the original "
            "software", step=step, reason=why) from None
    leads = RECOVERY.answers.get(decision.answer)
    if leads is None:
        raise DecisionError(f"{RECOVERY.name}: {decision.answer!r} is not an answer",
                            f"answer one of: {' | '.join(RECOVERY.choices)}")
    session.last_error = None  # answered: this run carries on from here
    target = Request(step) if decision.answer == flow.RETRY else Request(leads)
    assert session.record is not None
    pending = session.journal.pending_intent(session.record.id)
    if pending is not None:  # Broken and interrupted at once: close the intent first
        _close_interrupted(session, pending.id, pending.step)
    return _perform(session, REQUESTS[target], decision=decision, again=target == step)


def _pause(session: Session, decision: Decision) -> Advanced:
    """Stop here on purpose (a declared pause such as ``merge: later``): journaled with
    who and why, and not recorded as the decision, so a later run asks it again."""
    assert session.record is not None
    session.paused = decision
    meaning = DECISIONS[Question(decision.name)].pauses[decision.answer]
    session.journal.log(session.record.id, "info",
                        f"paused before the {decision.name} decision ({decision.name}: "
                        f"{decision.answer}) by {decision.who}: {meaning}",
                        detail={"pause": decision.name, "answer": decision.answer,
                                "who": decision.who, "why": decision.why},
                        sim_time=session.now())
    return Advanced(Kind.PAUSED, decision.name, decision=decision)


def _soak(session: Session) -> Advanced:
    """Watch the merged system for the rest of this run's soak before the question that
    soaks first; journaled with the transactions acknowledged meanwhile. A soak stops at
    the change window's end (journaled so): the commit decision then follows the
    declared ``window end`` rule."""
    assert session.record is not None
    minutes = check_soak_minutes(session.soak_minutes - session.soak_result()[0])
    control(session)
    left = _window.minutes_left(session)
    cut = left is not None and left < minutes
    if cut:
        minutes = max(float(left or 0.0), 0.0)
    before = session.driver.acknowledged()
    probes.soak(session, minutes * 60)  # probing every probe_every_s, when declared
    served = session.driver.acknowledged() - before
    ended = (" and stopped: the change window ended before the commit decision"
             if cut else "")
    session.journal.log_many(session.record.id, [
        *session_outage_notes(session, S.MERGE.value),
        Note("warning" if cut else "info",
             f"soaked {minutes:g} min on the upgraded software; {served} "
             f"transactions acknowledged meanwhile{ended}", step=S.MERGE.value,
             sim_time=session.now(), detail={"soak_minutes": minutes, "transactions": served,
                                             **({"window_end": True} if cut else {})})],
        # the question that follows, answered at once, syncs it with its intent (as
        # _straight_on); a person's answer is waited for with everything durable
        sync=not (session.driving and session.driving_at_once))
    return Advanced(Kind.SOAK, minutes=minutes, served=served)


# --- declared rules and expired decisions (ftkit/flow.py: RULES, ON_TIMEOUT) -------------

def _ruled(session: Session, spec: flow.DecisionSpec) -> Advanced | None:
    """Answer SPEC by the first declared rule that applies (flow.RULES, in order), its
    outcome chosen by the configuration: the answer journaled with its request's intent
    (source ``rule``), or a hold (the run stops here, journaled); None when no rule
    answers (a rule whose outcome is "recorded only" leaves the question to its decider)."""
    for rule in flow.RULES.values():
        if rule.question is not spec.name:
            continue
        why = rule.applies(session)
        if why is None:
            continue
        setting = getattr(session.controls, rule.setting) or next(iter(rule.outcomes))
        outcome = rule.outcomes.get(setting)
        if outcome is None:
            continue
        control(session)
        decision = _window.rule_decision(spec.name.value, outcome,
                                         f"{why} ({rule.setting} = {setting})")
        return _answer_by(session, spec, decision)
    return None


def _expired(session: Session, spec: flow.DecisionSpec, expired: Decision) -> Advanced:
    """A decision whose timeout expired: what flow.ON_TIMEOUT declares for it (a hold
    before the merge; after it the window rule's outcome), journaled as its outcome."""
    leads = flow.ON_TIMEOUT.get(spec.name, flow.HOLD)
    if leads == flow.HOLD:
        return _answer_by(session, spec, expired)
    rule = flow.RULES[leads]
    setting = getattr(session.controls, rule.setting) or next(iter(rule.outcomes))
    outcome = rule.outcomes.get(setting) or flow.HOLD
    return _answer_by(session, spec, _window.rule_decision(
        spec.name.value, outcome, f"{expired.why}; {rule.setting} = {setting}",
        source=expired.source))


def _answer_by(session: Session, spec: flow.DecisionSpec, decision: Decision) -> Advanced:
    """Act on a rule's (or an expiry's) DECISION: the request its answer leads to, or,
    for a hold or an expiry, stop the run here with the system as it is (journaled with
    the way on; a later run asks again)."""
    if decision.answer in spec.answers:
        return _perform(session, REQUESTS[Request(spec.answers[decision.answer])],
                        decision=decision)
    assert session.record is not None
    session.paused = decision
    how = " or ".join(f"{spec.name}: {a}" for a in spec.answers)
    session.journal.log(session.record.id, "warning",
                        f"{spec.name} not decided ({decision.answer}): {decision.why}; the "
                        f"system stays as it is ({session.upgrade_state.value}); to go on, "
                        f"run again with {how}, or run the abort runbook",
                        detail={"pause": spec.name.value, "answer": decision.answer,
                                "who": decision.who, "why": decision.why,
                                "source": decision.source},
                        sim_time=session.now())
    return Advanced(Kind.PAUSED, spec.name.value, decision=decision)


def _record_decision(session: Session, decision: Decision) -> None:
    """Journal an answer whose request was refused: it was given, and it stands."""
    assert session.record is not None
    session.journal.decision(session.record.id, **_decision_fields(decision),
                             sim_time=session.now())


def _decision_fields(decision: Decision) -> dict[str, str]:
    """What the journal records of DECISION (Journal.decision's keywords)."""
    return {"name": decision.name, "answer": decision.answer, "who": decision.who,
            "why": decision.why, "source": decision.source, "where": decision.where,
            "account": decision.account}


# --- outages ---------------------------------------------------------------------------

def session_outage_notes(session: Session, step: str) -> list[Note]:
    """A note of every outage of this session not journaled yet: when it is seen
    ongoing, and with its measured length once it is over (each keyed by when it
    started); read-only."""
    from ftkit.narrate import clock

    notes: list[Note] = []
    outages = session.outages()
    if not outages:
        return notes
    now = session.now()
    seen: set[tuple[float, bool]] = set()
    for entry in session.entries(kinds=["warning"]):
        detail = entry.detail if isinstance(entry.detail, dict) else {}
        if "outage_start" in detail:
            seen.add((round(float(detail["outage_start"]), 3),
                      detail.get("outage_s") is not None))
    for outage in outages:
        key = (round(outage.start, 3), outage.seconds is not None)
        if key in seen:
            continue
        # moments as the activity log shows them (t=mm:ss of the session's time)
        message = (f"outage {outage.seconds:.1f} s (last transaction before at "
                   f"{clock(outage.start)}, first after at {clock(outage.end)})"
                   if outage.seconds is not None and outage.end is not None else
                   f"outage ongoing since {clock(outage.start)}: the applications "
                   "are down")
        notes.append(Note(
            "warning", message, step=step, sim_time=now,
            detail={"outage_s": outage.seconds, "outage_start": outage.start,
                    "start": outage.start, "end": outage.end}))
    return notes


# --- custom actions --------------------------------------------------------------------

def _actions(step: StepRun, when: str) -> None:
    """Run the request's custom actions at WHEN (:func:`ftkit.actions.run_actions`), each
    result journaled (output masked); those that succeeded before a kill are not run
    again. Before: the state the request starts from; after: the state it led to."""
    session, spec = step.session, step.spec
    assert session.record is not None
    sid, request = session.record.id, spec.name.value
    if not any(session.config.actions_for(request, when, side) for side in SIDES):
        return  # none declared here: nothing to run, nothing to read

    def log(message: str, *, remote: bool, detail: dict[str, Any]) -> None:
        session.journal.log(sid, "action", message, step=request, remote=remote,
                            sim_time=session.now(), detail=detail)

    run_actions(session.driver, session.config, request=request, when=when, log=log,
                state=(spec.target if when == "after" else step.came_from).value,
                done=succeeded(session.entries(kinds=["action"]), request=request, when=when),
                before_each=step.flush)
