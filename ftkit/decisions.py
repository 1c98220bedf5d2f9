"""Operator decisions: proceed to split, proceed to merge, commit or abort.

One API, several providers: parameters (automated runs: a missing answer is an error,
never a silent default), plan (changes nothing: answers the way that shows the whole
process), and the widget provider in ``ftkit_widgets``, which builds a
:class:`Decision` from a click.  Every decision is journaled by the session with who,
what, why, when, its source and where it came from.

Decisions written as text (``ftkit run -p decisions "{split: proceed, merge: proceed}"``)
are read by :func:`parse_decisions`: a flow mapping or JSON of at most
:data:`MAX_DECISIONS_TEXT` characters, no YAML anchors or aliases, no key twice, every
answer taken as typed (``yes`` stays ``yes``, never ``True``). :func:`check_soak_minutes`
bounds the soak before a kernel starts.
"""

from __future__ import annotations

import functools
import getpass
import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ftkit.errors import DecisionError
from ftkit.flow import DECISIONS, RECOVERY

if TYPE_CHECKING:
    import yaml

__all__ = [
    "CHOICES",
    "MAX_DECISIONS_TEXT",
    "MAX_SOAK_MINUTES",
    "Answered",
    "Decision",
    "DecisionProvider",
    "ParameterDecisions",
    "PlanDecisions",
    "check_soak_minutes",
    "make_decision",
    "parse_decisions",
    "provider_for",
]

#: The longest decisions text read (``{split: proceed, ...}`` is some 60 characters).
MAX_DECISIONS_TEXT = 1024
#: The longest soak before the commit decision (one week), in minutes.
MAX_SOAK_MINUTES = 7 * 24 * 60.0
_EXAMPLE = "{split: proceed, merge: proceed, commit: commit}"
# what YAML 1.1 reads as true/false: named back as typed, never as an answer
_YAML_BOOLEANS = {"yes", "no", "on", "off", "true", "false", "y", "n"}

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
    account: str = ""  # the authenticated account that recorded it (beside ``who``)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _where(source: str) -> str:
    return f"{source} on {socket.gethostname()}"


def make_decision(name: str, answer: str, *, who: str, why: str, source: str,
                  where: str | None = None) -> Decision:
    """A validated decision; a wrong name or answer, or a WHO or WHY holding a control
    character or bidi mark (:func:`ftkit.preflight.check_text`), is a one-line
    DecisionError."""
    _check_names(operator=who, reason=why)
    choices = CHOICES.get(name)
    if choices is None:
        raise DecisionError(f"unknown decision {str(name)!r}", f"use one of: {', '.join(CHOICES)}")
    if answer not in choices:
        note = (" (yes/no/on/off/true/false are not answers here)"
                if answer.lower() in _YAML_BOOLEANS else "")
        raise DecisionError(
            f"decision {str(name)!r} cannot be {answer!r}{note}",
            f"answer one of: {' | '.join(choices)}",
        )
    return Decision(
        name=name,
        answer=answer,
        who=who or os_user(),
        why=why,
        source=source,
        where=where or _where(source),
        when=datetime.now(UTC).isoformat(timespec="seconds"),
        account=account(),
    )


class DecisionProvider(Protocol):
    """Answers the questions of an upgrade.

    A provider whose answers are there already (given up front, a click made, a plan) says
    so with a true ``at_once`` attribute: :meth:`ftkit.process.Session.run` then goes on
    from a step to the question without waiting for the disk first, as it does to a request
    (docs/DESIGN.md, "The journal's guarantees"). Without it, everything journaled is
    durable before the provider is asked (it may wait for a person)."""

    def decide(self, name: str) -> Decision: ...


@dataclass(frozen=True)
class Answered:
    """A decision provider holding one decision already made (a click)."""

    decision: Decision
    at_once: ClassVar[bool] = True  # the click is made

    def decide(self, name: str) -> Decision:
        if name != self.decision.name:
            raise DecisionError(f"asked {name}, but the answer given is to "
                                f"{self.decision.name}", "answer the question asked")
        return self.decision


@dataclass
class ParameterDecisions:
    """Decisions given up front (papermill ``decisions`` parameter, ``ftkit run``)."""

    at_once: ClassVar[bool] = True  # nothing waits for a person
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
                f"no decision for {str(name)!r} in auto mode (never a silent default)",
                f"pass decisions with {name}: {' | '.join(CHOICES.get(name, ()))}",
            )
        return make_decision(name, str(self.answers[name]), who=self.operator,
                             why=self.reason or "given as a run parameter", source="parameter",
                             where=_where("parameter"))


@dataclass
class PlanDecisions:
    """Plan mode: answer so that the plan shows every step, and change nothing."""

    at_once: ClassVar[bool] = True

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
        return ParameterDecisions(decisions or {}, operator=operator, reason=reason)
    if mode == "plan":
        return PlanDecisions(decisions, operator=operator)
    if mode == "interactive":
        return None
    raise DecisionError(f"unknown mode {mode!r}", "use mode interactive | auto | plan")


def account() -> str:
    """The authenticated account running this: ``$JUPYTERHUB_USER`` where JupyterHub set
    it, else the operating system's user. Recorded beside the operator who is claimed."""
    return os.environ.get("JUPYTERHUB_USER") or os_user()


def os_user() -> str:
    """The operating system's user, as :func:`getpass.getuser` says (its environment
    variables read each time; the password database looked up once per user id)."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if user := os.environ.get(name):
            return user
    return _user_of(os.getuid())


@functools.cache
def _user_of(uid: int) -> str:
    return getpass.getuser()  # no variable set: the password database's name for UID


def check_identity(*, operator: str, change_id: str, what: str = "this run") -> None:
    """A run that can change a system says who runs it and for which change: a one-line
    DecisionError when ``operator`` or ``change_id`` is empty (read-only; before anything
    changes); as when either holds a control character or bidi mark."""
    _check_names(operator=operator, change_id=change_id)
    for name, value, hint in (("operator", operator, "YOUR-NAME (recorded with every "
                                                     "decision)"),
                              ("change_id", change_id, "CHG-… (the change this run "
                                                       "belongs to)")):
        if not str(value or "").strip():
            raise DecisionError(f"{what} changes the system, and no {name} was given",
                                f"pass -p {name} {hint}")


def _check_names(**values: object) -> None:
    """Each of VALUES (operator, change_id, reason) as :mod:`ftkit.preflight` bounds it;
    a one-line DecisionError otherwise (read-only)."""
    from ftkit.errors import ParameterError
    from ftkit.preflight import check_value

    for name, value in values.items():
        try:
            check_value(name, value if value is not None else "")
        except ParameterError as err:
            raise DecisionError(err.message, err.remedy) from None


def parse_decisions(text: str) -> dict[str, str]:
    """The decisions written in ``text`` (``{split: proceed, merge: proceed}`` or JSON).

    Read-only. Refused, each with one :class:`DecisionError` line: text longer than
    :data:`MAX_DECISIONS_TEXT`, YAML anchors and aliases (an alias bomb never expands),
    a key given twice, a value that is not a plain word, an unknown decision or answer.
    Answers are taken as typed: ``split: yes`` is refused naming ``yes`` and the choices,
    never read as ``True``.
    """
    import yaml

    if not isinstance(text, str):
        raise DecisionError(f"decisions must be text, not {type(text).__name__}",
                            f"write them like {_EXAMPLE}")
    if len(text) > MAX_DECISIONS_TEXT:
        raise DecisionError(
            f"decisions text is {len(text)} characters, more than {MAX_DECISIONS_TEXT}",
            f"write one answer per decision, like {_EXAMPLE}",
        )
    try:
        loaded = yaml.load(text, Loader=_strict_loader())  # a BaseLoader: strings only
    except DecisionError:
        raise
    except yaml.YAMLError as err:
        mark = " ".join(str(getattr(err, "problem", None) or err).split())
        raise DecisionError(f"cannot read decisions {text!r} ({mark})",
                            f"write them like {_EXAMPLE} or as JSON") from None
    except RecursionError:
        raise DecisionError("decisions text is nested too deeply",
                            f"write them like {_EXAMPLE}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise DecisionError(f"decisions must be a mapping, not {text!r}",
                            f"write them like {_EXAMPLE}")
    answers: dict[str, str] = {}
    for name, answer in loaded.items():
        if not isinstance(answer, str):
            raise DecisionError(f"decision {name!r} must be one word, not a list or mapping",
                                f"answer one of: {' | '.join(CHOICES.get(name, ()))}"
                                if name in CHOICES else f"use one of: {', '.join(CHOICES)}")
        make_decision(name, answer, who="-", why="", source="parameter", where="-")
        answers[name] = answer
    return answers


_LOADER: type[yaml.BaseLoader] | None = None


def _strict_loader() -> type[yaml.BaseLoader]:
    """A YAML loader reading every scalar as the string typed, and refusing anchors,
    aliases and a key given twice (built once, on first use: yaml loads lazily)."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    class StrictLoader(yaml.BaseLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise DecisionError(
                    "decisions may not use YAML anchors or aliases (& and *)",
                    f"write each answer out, like {_EXAMPLE}",
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _value_node in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, str):
                    raise DecisionError("a decision's name must be a word",
                                        f"use one of: {', '.join(CHOICES)}")
                if key in seen:
                    raise DecisionError(
                        f"decision {key!r} is given twice",
                        f"give each decision once, like {_EXAMPLE}",
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    _LOADER = StrictLoader
    return StrictLoader


def check_soak_minutes(minutes: object) -> float:
    """``minutes`` as a float, when it is a finite number from 0 to
    :data:`MAX_SOAK_MINUTES` (one week), as :mod:`ftkit.preflight` bounds it; otherwise a
    one-line :class:`DecisionError`. Call it before a kernel starts: a soak that cannot
    run must not be found out after the merge."""
    from ftkit.errors import ParameterError
    from ftkit.preflight import check_value

    try:
        return float(check_value("soak_minutes", minutes))
    except ParameterError as err:
        raise DecisionError(err.message, err.remedy) from None
