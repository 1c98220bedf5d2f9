"""Operator decisions: proceed to split, proceed to merge, commit or abort.

One API, several providers: parameters (automated runs: a missing answer is an error,
never a silent default), plan (changes nothing: answers the way that shows the whole
process), and the widget provider in ``ftkit_widgets``, which builds a
:class:`Decision` from a click.  Every decision is journaled by the session with who,
what, why, when, its source and where it came from.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ftkit.errors import DecisionError
from ftkit.flow import DECISIONS, RECOVERY, check_path

__all__ = [
    "CHOICES",
    "Decision",
    "DecisionProvider",
    "ParameterDecisions",
    "PlanDecisions",
    "make_decision",
    "provider_for",
]

# the questions and their answers, as ftkit.flow declares them ("broken" is asked only of
# a Broken session: run the failed step again, its cause fixed, or abort)
CHOICES: dict[str, tuple[str, ...]] = {
    d.name: d.choices for d in (*DECISIONS.values(), RECOVERY)}
QUESTIONS: dict[str, str] = {d.name: d.question for d in (*DECISIONS.values(), RECOVERY)}


@dataclass(frozen=True)
class Decision:
    """One operator decision: who decided what, why, when, how and from where."""

    name: str
    answer: str
    who: str
    why: str
    source: str  # "parameter" | "widget" | "plan"
    where: str
    when: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _where(source: str) -> str:
    return f"{source} on {socket.gethostname()}"


def make_decision(name: str, answer: str, *, who: str, why: str, source: str,
                  where: str | None = None) -> Decision:
    """A validated decision; a wrong name or answer is a one-line DecisionError."""
    choices = CHOICES.get(name)
    if choices is None:
        raise DecisionError(f"unknown decision {name!r}", f"use one of: {', '.join(CHOICES)}")
    if answer not in choices:
        raise DecisionError(
            f"decision {name!r} cannot be {answer!r}", f"answer one of: {' | '.join(choices)}"
        )
    return Decision(
        name=name,
        answer=answer,
        who=who or getpass.getuser(),
        why=why,
        source=source,
        where=where or _where(source),
        when=datetime.now(UTC).isoformat(timespec="seconds"),
    )


class DecisionProvider(Protocol):
    """Answers the questions of an upgrade."""

    def decide(self, name: str) -> Decision: ...


@dataclass
class ParameterDecisions:
    """Decisions given up front (papermill ``decisions`` parameter, ``ftkit run``)."""

    answers: Mapping[str, str]
    operator: str = ""
    reason: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.answers, Mapping):
            raise DecisionError(
                f"decisions must be a mapping, not {type(self.answers).__name__}",
                "pass e.g. -y 'decisions: {split: proceed, merge: proceed, commit: commit}'",
            )
        for name, answer in self.answers.items():
            make_decision(name, str(answer), who=self.operator, why="", source="parameter")

    def decide(self, name: str) -> Decision:
        if name not in self.answers:
            raise DecisionError(
                f"no decision for {name!r} in auto mode (never a silent default)",
                f"pass decisions with {name}: {' | '.join(CHOICES.get(name, ()))}",
            )
        return make_decision(name, str(self.answers[name]), who=self.operator,
                             why=self.reason or "given as a run parameter", source="parameter",
                             where=_where("parameter"))


@dataclass
class PlanDecisions:
    """Plan mode: answer so that the plan shows every step, and change nothing."""

    answers: Mapping[str, str] | None = None
    operator: str = ""

    def decide(self, name: str) -> Decision:
        answer = (self.answers or {}).get(name) or CHOICES[name][0]
        return make_decision(name, str(answer), who=self.operator,
                             why="plan mode: nothing changes", source="plan")


def provider_for(mode: str, decisions: Mapping[str, str] | None, *, operator: str,
                 reason: str) -> DecisionProvider | None:
    """The provider a run mode uses; ``None`` for interactive (the widget decides)."""
    if mode == "auto":
        provider = ParameterDecisions(decisions or {}, operator=operator, reason=reason)
        check_path({k: str(v) for k, v in (decisions or {}).items()})  # before any change
        return provider
    if mode == "plan":
        return PlanDecisions(decisions, operator=operator)
    if mode == "interactive":
        return None
    raise DecisionError(f"unknown mode {mode!r}", "use mode interactive | auto | plan")
