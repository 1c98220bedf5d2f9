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
from typing import Any

from ftkit.model import Request, UpgradeState

__all__ = [
    "DECISIONS",
    "RECOVERY",
    "REQUESTS",
    "DecisionSpec",
    "Estimate",
    "Next",
    "RequestSpec",
    "decision_for",
    "mermaid",
    "next_step",
    "outcome",
    "requests_from",
]

S = UpgradeState


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
    - ``method``: the :class:`~ftkit.process.Session` method that runs it (the one place
      a request's name meets its code).
    - ``actions``: the custom-action request name whose before/after actions run around
      it (``ACTIVE_UPGRADE_REQUEST``), or None.
    - ``refusals``: states from which the request is refused with a reason of its own
      (message, remedy), beyond "not allowed here".
    - ``guards``: names of :class:`~ftkit.process.Session` guard methods, each returning
      None or ``(message, remedy)``; a refusal changes nothing.
    - ``once``: runs once per session (Install): a success is not repeated by a re-run.
    - ``estimate``: the plan's estimate of its cost from the plan's facts; without one,
      ``minutes`` and no outage.
    """

    name: str
    sources: frozenset[UpgradeState]
    target: UpgradeState
    enter_at_start: bool
    method: str
    description: str
    actions: Request | None = None
    refusals: Mapping[UpgradeState, tuple[str, str]] = field(default_factory=dict)
    guards: tuple[str, ...] = ()
    once: bool = False
    estimate: Estimator | None = None
    minutes: float = 0.0

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


@dataclass(frozen=True)
class DecisionSpec:
    """One decision: the state it is asked in, what must be done before it is asked,
    and the request each answer leads to."""

    name: str
    asked_in: UpgradeState
    answers: Mapping[str, str]
    question: str
    requires: tuple[str, ...] = ()  # requests that must have succeeded first
    before: str = ""  # what the runbook does between those and the question ("soak")
    help: Mapping[str, str] = field(default_factory=dict)  # what each answer does
    outcomes: Mapping[str, str] = field(default_factory=dict)  # answer -> session outcome


def _minutes(facts: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    return float(facts.get(key, default))


def _prepare_split(facts: Mapping[str, Any]) -> list[Estimate]:
    n = len(facts.get("packages", ()))
    return [Estimate(f"{REQUESTS['PrepareSplit'].description} ({n} package(s))", 0.5 * n)]


def _install(facts: Mapping[str, Any]) -> list[Estimate]:
    rows = [Estimate(f"install {label} on the Upgrade side", float(minutes))
            for label, minutes in facts.get("packages", ())]
    if facts.get("needs_reboot"):
        rows.append(Estimate("reboot the Upgrade side and verify it",
                             _minutes(facts, "reboot_min", 4.5)))
    return rows


def _execute_merge(facts: Mapping[str, Any]) -> list[Estimate]:
    outage = _minutes(facts, "merge_outage_s")
    return [Estimate(REQUESTS["ExecuteMerge"].description, outage / 60,
                     f"about {outage:.0f} s", outage)]


def _commit(facts: Mapping[str, Any]) -> list[Estimate]:
    return [Estimate(REQUESTS["Commit"].description, _minutes(facts, "resync_min"))]


def _abort(facts: Mapping[str, Any]) -> list[Estimate]:
    if facts.get("merged"):
        outage = _minutes(facts, "restart_outage_s")
        return [Estimate("abort after merge: restart on the original side, resync",
                         _minutes(facts, "resync_min"), f"one restart, about {outage:.0f} s",
                         outage)]
    return [Estimate("abort before merge: resync the Upgrade side from the Production side",
                     _minutes(facts, "upgrade_resync_min"))]


_COMMIT_STARTED = ("Abort is refused once Commit has started",
                   "Retry a Broken commit (the Retry button, or the upgrade runbook with "
                   "decisions broken: retry), then Finish")

REQUESTS: dict[str, RequestSpec] = {
    r.name: r
    for r in (
        RequestSpec("PrepareSplit", frozenset({S.IDLE}), S.PREPARE_SPLIT, True,
                    "prepare_split", "stage the packages and re-run the readiness check",
                    actions=Request.PREPARE_SPLIT, estimate=_prepare_split),
        RequestSpec("ExecuteSplit", frozenset({S.PREPARE_SPLIT}), S.SPLIT, False,
                    "execute_split", "disable RDR mirroring, isolate the Upgrade side, "
                    "disable its critical services",
                    actions=Request.EXECUTE_SPLIT, minutes=1.0),
        RequestSpec("Install", frozenset({S.SPLIT}), S.SPLIT, False, "install",
                    "install the update packages on the Upgrade side, reboot and verify it",
                    once=True, estimate=_install),
        RequestSpec("PrepareMerge", frozenset({S.SPLIT}), S.PREPARE_MERGE, True,
                    "prepare_merge", "check the Upgrade side is up, upgraded and ready",
                    actions=Request.PREPARE_MERGE),
        RequestSpec("ExecuteMerge", frozenset({S.PREPARE_MERGE}), S.MERGE, False,
                    "execute_merge", "stop the applications, hand over the data disks, "
                    "start them upgraded",
                    actions=Request.EXECUTE_MERGE, estimate=_execute_merge),
        RequestSpec("Commit", frozenset({S.MERGE}), S.COMMIT, True, "commit",
                    "back up event logs, resynchronise the old side from the new one",
                    actions=Request.COMMIT, guards=("_guard_enclosures_up",),
                    estimate=_commit),
        RequestSpec("Abort", frozenset({S.PREPARE_SPLIT, S.SPLIT, S.PREPARE_MERGE, S.MERGE}),
                    S.ABORT, True, "abort", "return to the original software",
                    actions=Request.ABORT, refusals={S.COMMIT: _COMMIT_STARTED},
                    estimate=_abort),
        RequestSpec("Finish", frozenset({S.COMMIT, S.ABORT}), S.IDLE, False, "finish",
                    "clean up once the resync is complete"),
    )
}


DECISIONS: dict[str, DecisionSpec] = {
    d.name: d
    for d in (
        DecisionSpec("split", S.PREPARE_SPLIT, {"proceed": "ExecuteSplit", "stop": "Abort"},
                     "Split the system and install the updates on the Upgrade side?",
                     help={"proceed": "the Production side keeps serving: no outage",
                           "stop": "end the session before the split: no outage, nothing "
                                   "changed"},
                     outcomes={"stop": "stopped"}),
        DecisionSpec("merge", S.SPLIT, {"proceed": "PrepareMerge", "abort": "Abort"},
                     "Merge: restart the applications on the upgraded software (brief outage)?",
                     requires=("Install",),
                     help={"proceed": "the one brief outage of the upgrade",
                           "abort": "no outage: the Upgrade side is resynchronised from the "
                                    "Production side"}),
        DecisionSpec("commit", S.MERGE, {"commit": "Commit", "abort": "Abort"},
                     "Commit the upgrade (no further outage), or abort back to the original "
                     "software?", before="soak",
                     help={"commit": "no outage; the point of no return: Abort is refused "
                                     "once Commit has started",
                           "abort": "back to the original software: one restart outage"}),
    )
}

# The answer to a Broken session: run the failed step again, or abort.
RECOVERY = DecisionSpec("broken", S.IDLE, {"retry": "", "abort": "Abort"},
                        "The session is Broken: retry the failed step (its cause fixed), or abort?",
                        help={"retry": "run the failed step again (after fixing the cause)",
                              "abort": "return to the original software"})


# How a session ends, by the state Finish ran from (a decision's declared outcome first).
OUTCOMES: dict[UpgradeState, str] = {S.COMMIT: "committed", S.ABORT: "aborted"}


def outcome(came_from: UpgradeState, answers: Mapping[str, str]) -> str:
    """The outcome a session that finishes from CAME_FROM records, given its answers."""
    for name, answer in answers.items():
        declared = DECISIONS[name].outcomes.get(answer) if name in DECISIONS else None
        if declared:
            return declared
    return OUTCOMES[came_from]


@dataclass(frozen=True)
class Next:
    """What the session needs next: ``kind`` is ``"request"`` (run ``name``),
    ``"decide"`` (ask decision ``name``), ``"recover"`` (Broken at ``name``: Retry or
    Abort), ``"busy"`` (a step is running or was interrupted) or ``"done"``."""

    kind: str
    name: str = ""


def decision_for(request: str) -> list[tuple[str, str]]:
    """The ``(decision, answer)`` pairs that lead to ``request``."""
    return [(d.name, answer) for d in DECISIONS.values()
            for answer, req in d.answers.items() if req == request]


def requests_from(state: UpgradeState) -> list[str]:
    """The requests allowed from ``state`` (what a refusal lists)."""
    return [r.name for r in REQUESTS.values() if r.allowed_from(state)]


def next_step(*, started: bool, ended: bool, state: UpgradeState, operational: str,
              broken_step: str | None, answers: Mapping[str, str],
              succeeded: Callable[[str], bool]) -> Next:
    """What comes next for a session in these circumstances; pure, derived from the table.

    ``answers`` maps decision names to the journaled answers; ``succeeded(request)`` says
    whether a request has succeeded in this session.
    """
    if ended:
        return Next("done")
    if not started:
        return Next("request", "PrepareSplit")
    if broken_step:
        return Next("recover", broken_step)
    if operational == "Busy":
        return Next("busy")
    for decision in DECISIONS.values():
        if decision.asked_in is not state:
            continue
        answer = answers.get(decision.name)
        if answer is not None:
            return Next("request", decision.answers[answer])
        for needed in decision.requires:
            if not succeeded(needed):
                return Next("request", needed)
        return Next("decide", decision.name)
    automatic = [r for r in REQUESTS.values()
                 if state in r.sources and not decision_for(r.name)]
    if len(automatic) == 1:
        return Next("request", automatic[0].name)
    return Next("busy")  # not reachable through the declared requests


def mermaid() -> str:
    """The machine as a Mermaid state diagram (docs/STATE-MACHINE.md renders it)."""
    lines = ["stateDiagram-v2", "    [*] --> Idle"]
    for spec in REQUESTS.values():
        for source in sorted(spec.sources, key=list(UpgradeState).index):
            ask = [f"{d}: {a}" for d, a in decision_for(spec.name)
                   if DECISIONS[d].asked_in is source]
            label = spec.name + (f" ({', '.join(ask)})" if ask else "")
            lines.append(f"    {source.value} --> {spec.target.value}: {label}")
    for decision in DECISIONS.values():
        lines.append(f"    note right of {decision.asked_in.value}: decision {decision.name}"
                     + (f" after {', '.join(decision.requires)}" if decision.requires else "")
                     + (f" and {decision.before}" if decision.before else ""))
    return "\n".join(lines) + "\n"
