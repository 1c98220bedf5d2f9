"""The Active Upgrade process, declared once: requests, decisions, guards, hooks, estimates.

Everything else asks this module: :class:`ftkit.process.Session` derives what is due,
what runs next and which method runs a request; :func:`ftkit.process.plan` walks the
same table with the plan's answers; the widgets ask which state a decision is asked in;
the configuration takes its custom-action request names from :class:`ftkit.model.Request`;
``docs/STATE-MACHINE.md`` is rendered from it (a test fails when the two disagree).

The vendor's upgrade states, and the requests between them::

    Idle --PrepareSplit--> PrepareSplit --ExecuteSplit--> Split
    Split --PrepareMerge--> PrepareMerge --ExecuteMerge--> Merge
    Merge --Commit--> Commit --Finish--> Idle
    {PrepareSplit, Split, PrepareMerge, Merge} --Abort--> Abort --Finish--> Idle

Orthogonal to the upgrade state is the operational state (Ready, Busy, Broken): nothing
advances while Busy or Broken; a Broken session is answered by the ``broken`` decision
(Retry or Abort). This module holds no state and imports no driver: it is pure data and
the pure functions that read it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ftkit.model import OperationalState, Request, UpgradeState

__all__ = [
    "ACTION_REQUESTS",
    "APPROVED",
    "DECISIONS",
    "EXPIRED",
    "HEALTHY",
    "ON_TIMEOUT",
    "RECOVERY",
    "REQUESTS",
    "RULES",
    "DecisionSpec",
    "Estimate",
    "Kind",
    "Next",
    "Question",
    "RequestSpec",
    "Rule",
    "answer_to",
    "body",
    "check_path",
    "decision_for",
    "leads_to",
    "mermaid",
    "next_step",
    "no_way_back",
    "outcome",
    "recovery_leads_to",
    "requests_from",
    "route",
    "rule",
    "state_machine_doc",
    "walk",
]

S = UpgradeState
R = Request
OP = OperationalState


class Question(StrEnum):
    """The decisions the process asks (the ``decisions`` parameter's keys)."""

    SPLIT = "split"
    MERGE = "merge"
    COMMIT = "commit"
    BROKEN = "broken"  # asked only of a Broken session: Retry or Abort


class Kind(StrEnum):
    """What a session needs next (:class:`Next`)."""

    REQUEST = "request"  # run the named request
    DECIDE = "decide"  # ask the named question
    SOAK = "soak"  # watch the merged system before the named question
    RECOVER = "recover"  # Broken at the named request: Retry or Abort
    BUSY = "busy"  # a step is running, or was left half done by a process that died
    DONE = "done"  # the session ended
    HALTED = "halted"  # this run stopped on an error (Session.next only)
    PAUSED = "paused"  # this run paused on purpose (Session.next only)


@dataclass(frozen=True)
class Estimate:
    """What a request costs, for the plan and the decision panels (minutes, outage)."""

    what: str
    minutes: float
    outage: str = "none"
    outage_s: float = 0.0


# an estimate function gets the plan's facts (see ftkit.process.plan) and returns rows
Estimator = Callable[[Mapping[str, Any]], list[Estimate]]


@dataclass(frozen=True)
class RequestSpec:
    """One request: where it may start, where it leads, what runs it and what guards it.

    - ``enter_at_start``: the session moves to ``target`` as soon as the request starts
      (the vendor's Prepare* states, Commit and Abort); otherwise only when it succeeds.
    - ``actions``: whether the custom actions declared for this request (its name is
      their ``ACTIVE_UPGRADE_REQUEST``) run before and after it.
    - ``refusals``: states from which the request is refused with a reason of its own
      (message, remedy), beyond "not allowed here".
    - ``guards``: names of guards (registered with :func:`guard`), each returning None
      or ``(message, remedy)``; a refusal changes nothing.
    - ``estimate``: the plan's estimate of its cost from the plan's facts; without one,
      ``minutes`` and no outage.

    What runs the request is the callable registered for it with :func:`body`
    (``ftkit/steps.py``): :attr:`run`.
    """

    name: Request
    sources: frozenset[UpgradeState]
    target: UpgradeState
    enter_at_start: bool
    description: str
    actions: bool = False
    refusals: Mapping[UpgradeState, tuple[str, str]] = field(default_factory=dict)
    guards: tuple[str, ...] = ()
    estimate: Estimator | None = None
    minutes: float = 0.0

    @property
    def run(self) -> Callable[..., str | None]:
        """The registered body of this request: ``run(step)`` does the work on the system
        and returns the session's outcome when it ends the session (Finish)."""
        return _BODIES[self.name]

    def refusal(self, context: Any) -> tuple[str, str] | None:
        """The first of this request's guards that refuses in CONTEXT, else None."""
        for name in self.guards:
            said = _GUARDS[name](context)
            if said is not None:
                return said
        return None

    def estimates(self, facts: Mapping[str, Any]) -> list[Estimate]:
        """The rows this request adds to a plan."""
        if self.estimate is None:
            return [Estimate(self.description, self.minutes)]
        return self.estimate(facts)

    def allowed_from(self, state: UpgradeState) -> bool:
        """True when the request may start (or be retried) from ``state``."""
        return state in self.sources or (self.enter_at_start and state is self.target)

    def entered(self, state: UpgradeState) -> UpgradeState:
        """The upgrade state while the request runs (from ``state``)."""
        return self.target if self.enter_at_start else state


_BODIES: dict[Request, Callable[..., str | None]] = {}
_GUARDS: dict[str, Callable[[Any], tuple[str, str] | None]] = {}


def body(request: Request) -> Callable[[Callable[..., str | None]], Callable[..., str | None]]:
    """Register the function that runs REQUEST (a decorator; ``ftkit/steps.py`` uses it)."""

    def register(function: Callable[..., str | None]) -> Callable[..., str | None]:
        _BODIES[request] = function
        return function

    return register


def guard(name: str) -> Callable[[Callable[[Any], tuple[str, str] | None]],
                                 Callable[[Any], tuple[str, str] | None]]:
    """Register guard NAME, as the table's ``guards`` name it (a decorator)."""

    def register(function: Callable[[Any], tuple[str, str] | None]
                 ) -> Callable[[Any], tuple[str, str] | None]:
        _GUARDS[name] = function
        return function

    return register


@dataclass(frozen=True)
class DecisionSpec:
    """One decision: the state it is asked in, what must be done before it is asked,
    and the request each answer leads to."""

    name: Question
    asked_in: UpgradeState
    answers: Mapping[str, Request | str]  # answer -> the request it leads to
    question: str
    requires: tuple[Request, ...] = ()  # requests that must have succeeded first
    soak: bool = False  # the merged system is watched (soak_minutes) before it is asked
    help: Mapping[str, str] = field(default_factory=dict)  # what each answer does
    outcomes: Mapping[str, str] = field(default_factory=dict)  # answer -> session outcome
    # answers that stop the run here on purpose, with nothing journaled as decided (a
    # later run asks again): "merge: later" splits and installs tonight, merges next window
    pauses: Mapping[str, str] = field(default_factory=dict)  # answer -> what it means
    # answers decided by a registered check when the question is asked: answer ->
    # (check's name, the answer when it passes, the answer when it refuses); the answer
    # journaled is the one taken, with the check's reason ("commit: if-healthy")
    conditions: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)

    @property
    def choices(self) -> tuple[str, ...]:
        """Every answer a parameter may give (the answers, the conditions, the pauses)."""
        return (*self.answers, *self.conditions, *self.pauses)

    def planned(self, answer: str) -> str:
        """ANSWER as a plan walks it: a condition as the answer it takes when it passes."""
        return self.conditions[answer][1] if answer in self.conditions else answer

    def resolve(self, answer: str, context: Any) -> tuple[str, str]:
        """The answer ANSWER takes in CONTEXT and why (``""`` for a plain answer): a
        condition runs its registered check (a guard: None passes)."""
        if answer not in self.conditions:
            return answer, ""
        check, passed, refused = self.conditions[answer]
        said = _GUARDS[check](context)
        if said is None:
            return passed, f"{answer}: {check}"
        return refused, f"{answer}: {said[0]}"


def _minutes(facts: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    return float(facts.get(key, default))


def _prepare_split(facts: Mapping[str, Any]) -> list[Estimate]:
    n = len(facts.get("packages", ()))
    return [Estimate(f"{REQUESTS[Request.PREPARE_SPLIT].description} ({n} package(s))", 0.5 * n)]


def _install(facts: Mapping[str, Any]) -> list[Estimate]:
    rows = [Estimate(f"install {label} on the Upgrade side", float(minutes))
            for label, minutes in facts.get("packages", ())]
    if facts.get("needs_reboot"):
        rows.append(Estimate("reboot the Upgrade side and verify it",
                             _minutes(facts, "reboot_min", 4.5)))
    return rows


def _execute_merge(facts: Mapping[str, Any]) -> list[Estimate]:
    outage = _minutes(facts, "merge_outage_s")
    return [Estimate(REQUESTS[Request.EXECUTE_MERGE].description, outage / 60,
                     f"about {outage:.0f} s", outage)]


def _commit(facts: Mapping[str, Any]) -> list[Estimate]:
    return [Estimate(REQUESTS[Request.COMMIT].description, _minutes(facts, "resync_min"))]


def _abort(facts: Mapping[str, Any]) -> list[Estimate]:
    if facts.get("merged"):
        outage = _minutes(facts, "restart_outage_s")
        return [Estimate("abort after merge: restart on the original side, resync",
                         _minutes(facts, "resync_min"), f"one restart, about {outage:.0f} s",
                         outage)]
    if not facts.get("split", True):
        return [Estimate("abort before the split: nothing to resync", 0.0)]
    return [Estimate("abort before merge: resync the Upgrade side from the Production side",
                     _minutes(facts, "upgrade_resync_min"))]


#: Commit's guard: approvals from accounts other than the operator's (ftkit/approvals.py).
APPROVED = "approved by another account"
#: The condition ``commit: if-healthy`` holds the soak's evidence to (ftkit/probes.py).
HEALTHY = "soak healthy"

_COMMIT_STARTED = ("Abort is refused once Commit has started",
                   "Retry a Broken commit (the Retry button, or the upgrade runbook with "
                   "decisions broken: retry), then Finish")

REQUESTS: dict[Request, RequestSpec] = {
    r.name: r
    for r in (
        RequestSpec(R.PREPARE_SPLIT, frozenset({S.IDLE}), S.PREPARE_SPLIT, True,
                    "stage the packages and re-run the readiness check",
                    actions=True, guards=("something to install", "inside the window"),
                    estimate=_prepare_split),
        RequestSpec(R.EXECUTE_SPLIT, frozenset({S.PREPARE_SPLIT}), S.SPLIT, False,
                    "disable RDR mirroring, isolate the Upgrade side, disable its critical "
                    "services", actions=True, minutes=1.0, guards=("inside the window",)),
        RequestSpec(R.INSTALL, frozenset({S.SPLIT}), S.SPLIT, False,
                    "install the update packages on the Upgrade side, reboot and verify it",
                    estimate=_install),
        RequestSpec(R.PREPARE_MERGE, frozenset({S.SPLIT}), S.PREPARE_MERGE, True,
                    "check the Upgrade side is up, upgraded and ready", actions=True,
                    guards=("inside the window", "merge fits the window")),
        RequestSpec(R.EXECUTE_MERGE, frozenset({S.PREPARE_MERGE}), S.MERGE, False,
                    "stop the applications, hand over the data disks, start them upgraded",
                    actions=True, estimate=_execute_merge, guards=("inside the window",)),
        RequestSpec(R.COMMIT, frozenset({S.MERGE}), S.COMMIT, True,
                    "back up event logs, resynchronise the old side from the new one",
                    actions=True, guards=("enclosures up", APPROVED), estimate=_commit),
        RequestSpec(R.ABORT, frozenset({S.PREPARE_SPLIT, S.SPLIT, S.PREPARE_MERGE, S.MERGE}),
                    S.ABORT, True, "return to the original software", actions=True,
                    refusals={S.COMMIT: _COMMIT_STARTED}, estimate=_abort),
        RequestSpec(R.FINISH, frozenset({S.COMMIT, S.ABORT}), S.IDLE, False,
                    "clean up once the resync is complete"),
    )
}

#: The first request of a session (it begins the session) and the one that ends it.
FIRST, LAST = R.PREPARE_SPLIT, R.FINISH
#: The requests a custom action may be declared for (``ACTIVE_UPGRADE_REQUEST``): the
#: readiness check, every request that runs actions, and the vendor's further moments.
ACTION_REQUESTS: tuple[Request, ...] = (
    R.CHECK_READINESS, *(r.name for r in REQUESTS.values() if r.actions),
    R.START, R.STOP, R.BACKUP)

Q = Question
DECISIONS: dict[Question, DecisionSpec] = {
    d.name: d
    for d in (
        DecisionSpec(Q.SPLIT, S.PREPARE_SPLIT, {"proceed": R.EXECUTE_SPLIT, "stop": R.ABORT},
                     "Split the system and install the updates on the Upgrade side?",
                     help={"proceed": "the Production side keeps serving: no outage",
                           "stop": "end the session before the split: no outage, nothing "
                                   "changed"},
                     outcomes={"stop": "stopped"}),
        DecisionSpec(Q.MERGE, S.SPLIT, {"proceed": R.PREPARE_MERGE, "abort": R.ABORT},
                     "Merge: restart the applications on the upgraded software (brief outage)?",
                     requires=(R.INSTALL,),
                     help={"proceed": "the one brief outage of the upgrade",
                           "abort": "no outage: the Upgrade side is resynchronised from the "
                                    "Production side"},
                     pauses={"later": "stop at Split, installed and verified; the Production "
                                      "side keeps serving (simplex) until a later run merges "
                                      "or aborts"}),
        DecisionSpec(Q.COMMIT, S.MERGE, {"commit": R.COMMIT, "abort": R.ABORT},
                     "Commit the upgrade (no further outage), or abort back to the original "
                     "software?", soak=True,
                     help={"commit": "no outage; the point of no return: Abort is refused "
                                     "once Commit has started",
                           "abort": "back to the original software: one restart outage"},
                     conditions={"if-healthy": (HEALTHY, "commit", "abort")}),
    )
}

# The answer to a Broken session: run the failed step again ("" = the Broken step), or abort.
RETRY = "retry"
RECOVERY = DecisionSpec(Q.BROKEN, S.IDLE, {RETRY: "", "abort": R.ABORT},
                        "The session is Broken: retry the failed step (its cause fixed), or abort?",
                        help={RETRY: "run the failed step again (after fixing the cause)",
                              "abort": "return to the original software"})


# --- declared rules: answers the engine gives in place of a person's ---------------------

#: What a rule's outcome may be besides an answer: stop the run here, the system as it is
#: (journaled; the run's result says how to go on).
HOLD = "hold"


@dataclass(frozen=True)
class Rule:
    """A declared rule: when its condition (registered with :func:`rule`, returning why it
    applies, or None) holds where QUESTION is asked, the engine answers it by SETTING (a
    key of the configuration's ``[window]`` table): ``outcomes`` maps the setting's value
    to the answer journaled (source ``rule``), :data:`HOLD` (stop the run here), or None
    (only recorded). The first value is the default."""

    name: str
    question: Question
    setting: str
    outcomes: Mapping[str, str | None]
    when: str

    def applies(self, context: Any) -> str | None:
        """Why the rule applies in CONTEXT (a session), or None."""
        return _RULES[self.name](context)


_RULES: dict[str, Callable[[Any], str | None]] = {}


def rule(name: str) -> Callable[[Callable[[Any], str | None]], Callable[[Any], str | None]]:
    """Register the condition of rule NAME, as :data:`RULES` names it (a decorator)."""

    def register(function: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
        _RULES[name] = function
        return function

    return register


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("outage budget", Q.COMMIT, "on_outage_breach", {"record": None, "abort": "abort"},
             "the merge's measured outage exceeded max_outage_s"),
        Rule("window end", Q.COMMIT, "on_window_end", {"abort": "abort", HOLD: HOLD},
             "the change window ended (a soak stops there) before the commit decision"),
    )
}

#: The answer a decision whose ``decision_timeout_min`` expired carries; what follows is
#: declared in :data:`ON_TIMEOUT`.
EXPIRED = "expired"
#: What an expired decision leads to: before the merge the run pauses, the system as it
#: is (:data:`HOLD`); after the merge the window's rule applies (``on_window_end``).
ON_TIMEOUT: dict[Question, str] = {Q.SPLIT: HOLD, Q.MERGE: HOLD, Q.COMMIT: "window end"}


# How a session ends, by the state Finish ran from (a decision's declared outcome first).
OUTCOMES: dict[UpgradeState, str] = {S.COMMIT: "committed", S.ABORT: "aborted"}


def outcome(came_from: UpgradeState, answers: Mapping[str, str]) -> str:
    """The outcome a session that finishes from CAME_FROM records, given its answers."""
    for name, answer in answers.items():
        declared = DECISIONS[Q(name)].outcomes.get(answer) if name in DECISIONS else None
        if declared:
            return declared
    return OUTCOMES[came_from]


@dataclass(frozen=True)
class Next:
    """What the session needs next: a :class:`Kind` and the request or question it names
    (``Next(Kind.REQUEST, Request.INSTALL)``, ``Next(Kind.DECIDE, Question.MERGE)``)."""

    kind: Kind
    name: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.name}".strip()


DONE = Next(Kind.DONE)


def decision_for(request: Request | str) -> list[tuple[Question, str]]:
    """The ``(decision, answer)`` pairs that lead to ``request``."""
    return [(d.name, answer) for d in DECISIONS.values()
            for answer, req in d.answers.items() if req == request]


def answer_to(question: Question, request: Request) -> str:
    """The answer to QUESTION that leads to REQUEST (pure)."""
    return next(a for a, r in DECISIONS[question].answers.items() if r == request)


def requests_from(state: UpgradeState) -> list[Request]:
    """The requests allowed from ``state`` (what a refusal lists)."""
    return [r.name for r in REQUESTS.values() if r.allowed_from(state)]


def next_step(*, started: bool, ended: bool, state: UpgradeState, operational: str,
              broken_step: str | None, answers: Mapping[str, str],
              succeeded: Callable[[str], bool], soaked: bool = True) -> Next:
    """What comes next for a session in these circumstances; pure, derived from the table.

    ``answers`` maps decision names to the journaled answers; ``succeeded(request)`` says
    whether a request has succeeded in this session; ``soaked`` whether the merged system
    has been watched as long as this run wants before a question that soaks first.
    """
    if ended:
        return DONE
    if not started:
        return Next(Kind.REQUEST, FIRST)
    if broken_step:
        return Next(Kind.RECOVER, broken_step)
    if operational == OP.BUSY:
        return Next(Kind.BUSY)
    for decision in DECISIONS.values():
        if decision.asked_in is not state:
            continue
        answer = answers.get(decision.name)
        if answer is not None:
            return Next(Kind.REQUEST, decision.answers[answer])
        for needed in decision.requires:
            if not succeeded(needed):
                return Next(Kind.REQUEST, needed)
        if decision.soak and not soaked:
            return Next(Kind.SOAK, decision.name)
        return Next(Kind.DECIDE, decision.name)
    automatic = [r for r in REQUESTS.values()
                 if state in r.sources and not decision_for(r.name)]
    if len(automatic) == 1:
        return Next(Kind.REQUEST, automatic[0].name)
    return Next(Kind.BUSY)  # not reachable through the declared requests


def route(answers: Mapping[str, str], *, start: UpgradeState = S.IDLE,
          done: tuple[Request, ...] = ()) -> list[Next]:
    """Every step a session takes with ANSWERS, in order (pure): requests, soaks and
    decisions, where an answered decision and the request it leads to are one step (the
    engine journals the answer with that request's intent). Ends at the end, or at the
    question ANSWERS leave open or pause at (included). What the upgrade runbook's step
    cells follow (a test compares them)."""
    state, started, soaked = start, start is not S.IDLE, False
    succeeded: set[str] = set(done)
    taken: dict[str, str] = {}
    steps: list[Next] = []
    while True:
        nxt = next_step(started=started, ended=started and state is S.IDLE, state=state,
                        operational=OP.READY, broken_step=None, answers=taken,
                        succeeded=succeeded.__contains__, soaked=soaked)
        if nxt.kind is Kind.SOAK:
            steps.append(nxt)
            soaked = True
            continue
        if nxt.kind is Kind.DECIDE:
            steps.append(nxt)
            answer = answers.get(nxt.name)
            if answer is None or answer in DECISIONS[Q(nxt.name)].pauses:
                return steps
            answer = DECISIONS[Q(nxt.name)].planned(answer)
            taken[nxt.name] = answer
            nxt = Next(Kind.REQUEST, DECISIONS[Q(nxt.name)].answers[answer])
        elif nxt.kind is Kind.REQUEST:
            steps.append(nxt)
        else:
            return steps
        spec = REQUESTS[Request(nxt.name)]
        succeeded.add(spec.name)
        started = True
        state = spec.target


def walk(answers: Mapping[str, str], facts: Mapping[str, Any] | None = None
         ) -> tuple[list[dict[str, Any]], Next]:
    """The steps the declared flow takes with ANSWERS, each with its estimate (pure), and
    where it stops: ``DONE``, or the decision ANSWERS leave open or pause at."""
    state, started, merged = S.IDLE, False, False
    done: set[str] = set()
    taken: dict[str, str] = {}
    label = ""
    steps: list[dict[str, Any]] = []
    while True:
        nxt = next_step(started=started, ended=started and state is S.IDLE, state=state,
                        operational=OP.READY, broken_step=None, answers=taken,
                        succeeded=done.__contains__)
        if nxt.kind is Kind.DECIDE:
            answer = answers.get(nxt.name)
            if answer is None or answer in DECISIONS[Q(nxt.name)].pauses:
                return steps, nxt
            answer = DECISIONS[Q(nxt.name)].planned(answer)
            taken[nxt.name] = answer
            label = f"{nxt.name}: {answer}"
            continue
        if nxt.kind is not Kind.REQUEST:
            return steps, nxt
        spec = REQUESTS[Request(nxt.name)]
        for row in spec.estimates({**(facts or {}), "merged": merged}):
            steps.append({"request": spec.name.value, "what": row.what,
                          "minutes": round(row.minutes, 1), "outage": row.outage,
                          "decision": label})
            label = ""
        done.add(spec.name)
        started = True
        merged = merged or spec.name is R.EXECUTE_MERGE
        state = spec.target


def no_way_back(request: Request | str) -> bool:
    """True when REQUEST leads to a state Abort is refused in (Commit): the point of no
    return, as a decision panel marks it."""
    target = REQUESTS[Request(request)].target if request in REQUESTS else None
    return target in REQUESTS[R.ABORT].refusals


def leads_to(name: str, answer: str, facts: Mapping[str, Any] | None = None
             ) -> list[tuple[Request, Estimate]]:
    """What ANSWER to decision NAME runs, up to the next decision or the end: each request
    with its estimates (pure; what a decision panel says a click costs). ``facts`` are the
    plan's facts (:func:`ftkit.process.plan_facts`) with ``merged`` set as the system is."""
    spec = DECISIONS[Q(name)]
    answer = spec.planned(answer)
    if answer not in spec.answers:
        return []
    facts = dict(facts or {})
    state, merged = spec.asked_in, bool(facts.get("merged"))
    done, taken = set(spec.requires), {str(spec.name): answer}
    rows: list[tuple[Request, Estimate]] = []
    while True:
        nxt = next_step(started=True, ended=state is S.IDLE, state=state,
                        operational=OP.READY, broken_step=None, answers=taken,
                        succeeded=done.__contains__)
        if nxt.kind is not Kind.REQUEST:
            return rows
        request = REQUESTS[Request(nxt.name)]
        split = bool(facts.get("split")) or state not in (S.IDLE, S.PREPARE_SPLIT)
        rows.extend((request.name, row) for row in request.estimates(
            {**facts, "merged": merged, "split": split}))
        done.add(request.name)
        merged = merged or request.name is R.EXECUTE_MERGE
        state = request.target


def recovery_leads_to(step: str, facts: Mapping[str, Any]
                      ) -> dict[str, list[tuple[Request, Estimate]]]:
    """What each answer to the ``broken`` question runs from a session Broken at STEP (pure):
    Retry runs STEP again, Abort aborts and finishes."""
    retry = ([(Request(step), row) for row in REQUESTS[Request(step)].estimates(facts)]
             if step in REQUESTS else [])
    abort = [(r, row) for r in (R.ABORT, LAST) for row in REQUESTS[r].estimates(facts)]
    return {RETRY: retry, "abort": abort}


def check_path(answers: Mapping[str, str], *, decided: Mapping[str, str] | None = None,
               broken: str | None = None) -> str:
    """Check, before anything changes, that ANSWERS take an upgrade to an end (commit or
    abort) or to a declared pause; returns the path as text. Raises DecisionError naming
    the decision that is missing (never a silent default, never a server left split by a
    missing word).

    For an unfinished session, DECIDED are the answers it journaled already (they stand:
    nobody is asked twice) and BROKEN its Broken step, which needs a ``broken`` answer."""
    from ftkit.errors import DecisionError

    if broken is not None:
        answer = answers.get(RECOVERY.name)
        if answer is None:
            raise DecisionError(
                f"the session is Broken at {broken}, and decisions have no "
                f"{RECOVERY.name.value!r} answer: the run would stop there",
                f"add {RECOVERY.name}: {' | '.join(RECOVERY.choices)} to decisions (retry "
                "once the cause is fixed)")
        if RECOVERY.answers.get(answer) == R.ABORT:
            return f"{broken} (Broken) → {R.ABORT} → {LAST}"
    answers = {**answers, **(decided or {})}
    steps, stop = walk(answers)
    path = " → ".join(dict.fromkeys(s["request"] for s in steps))
    if stop.kind is Kind.DECIDE and stop.name not in answers:
        spec = DECISIONS[Q(stop.name)]
        raise DecisionError(
            f"decisions stop at {spec.asked_in.value} with no {str(stop.name)!r} answer: the "
            f"run would leave the system there ({path})",
            f"add {stop.name}: {' | '.join(spec.choices)} to decisions")
    if stop.kind is Kind.DECIDE:
        return f"{path} → paused before {stop.name} ({answers[stop.name]})"
    return path


def mermaid() -> str:
    """The machine as a Mermaid state diagram (docs/STATE-MACHINE.md renders it)."""
    lines = ["stateDiagram-v2", "    [*] --> Idle"]
    for spec in REQUESTS.values():
        for source in sorted(spec.sources, key=list(UpgradeState).index):
            ask = [f"{d}: {a}" for d, a in decision_for(spec.name)
                   if DECISIONS[d].asked_in is source]
            label = spec.name.value + (f" ({', '.join(ask)})" if ask else "")
            lines.append(f"    {source.value} --> {spec.target.value}: {label}")
    for decision in DECISIONS.values():
        lines.append(f"    note right of {decision.asked_in.value}: decision {decision.name}"
                     + (f" after {', '.join(decision.requires)}" if decision.requires else "")
                     + (" and soak" if decision.soak else "")
                     + (f"; may pause ({', '.join(decision.pauses)})" if decision.pauses
                        else ""))
    return "\n".join(lines) + "\n"


def _answers_text(d: DecisionSpec) -> str:
    """A decision's answers as the state-machine table lists them (pure)."""
    return ", ".join([*(f"{a} → {r}" for a, r in d.answers.items()),
                      *(f"{a} → {yes} when {check}, else {no}"
                        for a, (check, yes, no) in d.conditions.items())])


def state_machine_doc() -> str:
    """docs/STATE-MACHINE.md, rendered from the table (a test compares the file with it):
    ``python -c "from ftkit import flow; print(flow.state_machine_doc(), end='')" >
    docs/STATE-MACHINE.md``."""
    order = list(UpgradeState)
    rows = "".join(
        f"| {r.name} | {', '.join(s.value for s in sorted(r.sources, key=order.index))} | "
        f"{r.target.value} | {'yes' if r.enter_at_start else 'no'} | "
        f"{r.name.value if r.actions else '-'} | "
        f"{', '.join(r.guards) or '-'} |\n"
        for r in REQUESTS.values())
    decisions = "".join(
        f"| {d.name} | {'any, while Broken' if d is RECOVERY else d.asked_in.value} | "
        f"{_answers_text(d)} | "
        f"{', '.join(d.pauses) or '-'} | {', '.join(d.requires) or '-'} |\n"
        for d in (*DECISIONS.values(), RECOVERY))
    rules = "".join(
        f"| {r.name} | {r.question} | {r.when} | "
        + "; ".join(f"{r.setting} = {v} → {a or 'recorded only'}" for v, a in r.outcomes.items())
        + " |\n"
        for r in RULES.values())
    timeouts = "".join(f"| {q} | "
                       + ("pause (the system as it is)" if o == HOLD else f"rule {o}") + " |\n"
                       for q, o in ON_TIMEOUT.items())
    return (
        "# The Active Upgrade state machine\n\n"
        "Rendered from `ftkit/flow.py` (the one declaration of the process) by\n"
        "`flow.state_machine_doc()`; `tests/test_flow.py` fails when this file and the table\n"
        "disagree. Each arrow is a request, labelled with the decision (and answer) that leads\n"
        "to it where one does; the notes say where each decision is asked. Orthogonal to these\n"
        "states is the operational state: Ready, Busy (a request is running) or Broken (a\n"
        "request failed: Retry or Abort, the `broken` decision).\n\n"
        "```mermaid\n" + mermaid() + "```\n\n"
        "| request | from | to | entered at start | custom actions | guards |\n"
        "|---|---|---|---|---|---|\n" + rows + "\n"
        "| decision | asked in | answers | pauses | after |\n"
        "|---|---|---|---|---|\n" + decisions + "\n"
        "Declared rules answer a decision in place of a person (journaled as the decision,\n"
        "source `rule`), and an expired `decision_timeout_min` leads where declared:\n\n"
        "| rule | decision | when | outcome |\n"
        "|---|---|---|---|\n" + rules + "\n"
        "| decision expired | outcome |\n"
        "|---|---|\n" + timeouts)
