"""Operator decisions in the notebook: the decision panel, Retry/Abort, and ``ask``.

``await ask(session, "split", mode=mode, decisions=decisions, operator=..., reason=...)``
is the one call a runbook makes per decision: in ``auto`` and ``plan`` mode the answer
comes from :func:`ftkit.decisions.provider_for`; in ``interactive`` mode a
:class:`DecisionPanel` is shown and the cell waits (a top-level ``await`` loop) until the
operator clicks. Every handler catches :class:`~ftkit.errors.FtkitError` and shows it in
the panel: ipywidgets' callback dispatcher would swallow it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import ipywidgets as w
from IPython.display import HTML, display

from ftkit.decisions import (
    CHOICES,
    QUESTIONS,
    Decision,
    DecisionProvider,
    check_identity,
    make_decision,
    provider_for,
)
from ftkit.errors import DecisionError, FtkitError, StepFailedError
from ftkit.flow import DECISIONS, RECOVERY, check_path
from ftkit.process import Session

from .attention import lead_to
from .render import GREEN, RED, YELLOW, esc, failure_html, note_html, status_html

__all__ = ["DecisionPanel", "RecoveryPanel", "ask", "check_mode", "nobody_can_click"]

_STYLE = {"proceed": "success", "commit": "success", "stop": "warning", "abort": "danger"}


def _who_why(operator: w.Text, reason: w.Text, what: str) -> tuple[str, str]:
    who, why = operator.value.strip(), reason.value.strip()
    missing = [n for n, v in (("operator", who), ("reason", why)) if not v]
    if missing:
        raise DecisionError(f"{what}: enter the {' and the '.join(missing)} first",
                            "every decision is recorded with who made it and why")
    return who, why


class _Answered:
    """A decision provider holding one decision already made (a click)."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision

    def decide(self, name: str) -> Decision:
        return self.decision


class RecoveryPanel(w.VBox):
    """Retry and Abort for a Broken session (SPEC §3): Retry runs the failed step again
    after the cause is fixed; Abort returns to the original software.

    Who and why are journaled with the choice. ``last`` is ``"retry"`` or ``"abort"``
    after a successful click.
    """

    def __init__(self, session: Session, *, operator: w.Text | None = None,
                 reason: w.Text | None = None) -> None:
        self.session = session
        self.last: str | None = None
        self.operator = operator or w.Text(value=session.operator, description="Operator",
                                           placeholder="your name")
        self.reason = reason or w.Text(description="Reason", placeholder="why you decide this")
        self.retry_button = w.Button(description="Retry", button_style="warning",
                                     icon="repeat", tooltip="run the failed step again")
        self.abort_button = w.Button(description="Abort", button_style="danger", icon="undo",
                                     tooltip="return to the original software")
        self.message = w.HTML()
        self.retry_button.on_click(lambda _b: self._act("retry"))
        self.abort_button.on_click(lambda _b: self._act("abort"))
        fields = [] if operator is not None else [self.operator, self.reason]
        super().__init__(children=[*fields, w.HBox([self.retry_button, self.abort_button]),
                                   self.message])

    def _act(self, action: str) -> None:
        session = self.session
        try:
            who, why = _who_why(self.operator, self.reason, action.capitalize())
            decision = make_decision(RECOVERY.name, action, who=who, why=why,
                                     source="widget")
            self._set_busy(True)
            self.message.value = note_html(f"{action.capitalize()} running…", colour=YELLOW)
            session.recover(_Answered(decision))
        except FtkitError as err:
            self.message.value = failure_html(session, err)
        else:
            self.last = action
            done = ("Retry succeeded: run the runbook again to carry on"
                    if action == "retry" else
                    "Aborted: the applications run on the original software; run the "
                    "runbook again (or abort.ipynb) to Finish")
            self.message.value = note_html(done, colour=GREEN)
        finally:
            self._set_busy(False)

    def _set_busy(self, busy: bool) -> None:
        self.retry_button.disabled = busy
        self.abort_button.disabled = busy


class DecisionPanel(w.VBox):
    """Ask the operator one decision (``split``, ``merge`` or ``commit``).

    Shows the question, the session's state, Operator and Reason fields and one button
    per allowed answer. A click journals the decision (``source="widget"``) and sets
    ``decision``; an empty operator or reason is refused with a message and nothing is
    recorded. While the session is Broken the panel shows Retry and Abort instead.
    """

    def __init__(self, session: Session, name: str) -> None:
        if name not in CHOICES:
            raise DecisionError(f"unknown decision {name!r}", f"use one of: {', '.join(CHOICES)}")
        self.session = session
        self.name = name
        self.decision: Decision | None = None
        self._settled = False
        self.question = w.HTML(f"<b>{esc(QUESTIONS[name])}</b>")
        self.state = w.HTML()
        self.operator = w.Text(value=session.operator, description="Operator",
                               placeholder="your name")
        self.reason = w.Text(description="Reason", placeholder="why you decide this")
        self.buttons = {
            answer: w.Button(description=answer.capitalize(),
                             button_style=_STYLE.get(answer, ""),
                             tooltip=f"{name}: {answer}")
            for answer in DECISIONS[name].answers
        }
        for answer, button in self.buttons.items():
            button.on_click(lambda _b, a=answer: self._choose(a))
        self.choices = w.HBox(list(self.buttons.values()))
        self.recovery = RecoveryPanel(session, operator=self.operator, reason=self.reason)
        self.message = w.HTML()
        super().__init__(children=[self.question, self.state, self.operator, self.reason,
                                   self.choices, self.recovery, self.message])
        self.refresh()
        session.subscribe(self.refresh)

    @property
    def done(self) -> bool:
        """Decided, or the question no longer applies (the session was aborted, say)."""
        if self.decision is not None:
            return True
        session = self.session
        return bool(session.done or (
            session.record is not None and not session.broken
            and session.upgrade_state is not DECISIONS[self.name].asked_in))

    def refresh(self, *_: Any) -> None:
        """Show the choices, or Retry/Abort while Broken, or what was decided. Once
        decided (or moot) the panel keeps the state it was decided in."""
        if self._settled:
            return
        try:
            self.state.value = status_html(self.session)
        except FtkitError as err:
            self.state.value = note_html(str(err), colour=RED)
        broken = self.session.broken is not None
        decided = self.decision is not None
        self.choices.layout.display = "none" if broken or self.done else ""
        self.recovery.layout.display = "" if broken and not decided else "none"
        for button in self.buttons.values():
            button.disabled = decided or broken
        if broken and not decided:
            step, reason = self.session.broken or ("", "")
            self.message.value = note_html(
                f"The session is Broken at {step}: {reason}. Fix the cause, then Retry; or "
                "Abort back to the original software.", colour=RED)
        elif self.done and not decided:
            self.message.value = note_html(
                f"No {self.name} decision is needed any more: the session is "
                f"{self.session.upgrade_state.value}.", colour=YELLOW)
        if self.done:
            self._settled = True
            self.operator.disabled = self.reason.disabled = True

    def _choose(self, answer: str) -> None:
        try:
            if self.decision is not None:
                raise DecisionError(f"{self.name} is decided already: {self.decision.answer}",
                                    "re-run the runbook to carry on")
            if self.session.broken:
                raise StepFailedError(f"the session is Broken at {self.session.broken[0]}",
                                      "Retry or Abort first")
            who, why = _who_why(self.operator, self.reason, f"{self.name}: {answer}")
            decision = make_decision(self.name, answer, who=who, why=why, source="widget")
            self.decision = self.session.record_decision(decision)
        except FtkitError as err:
            self.message.value = note_html(str(err), colour=RED, title="not recorded")
            return
        self.message.value = note_html(
            f"{self.name}: {answer} — recorded for {self.decision.who} ({self.decision.why})",
            colour=GREEN)
        self.refresh()

    async def wait(self, timeout_s: float = 3600) -> Decision | None:
        """Wait (top-level ``await`` in the cell) until decided; the decision, or None if
        the question went away (the session was aborted from the panel).

        On timeout nothing is changed: the system stays as it is, which is safe, and a
        :class:`DecisionError` says how to go on.
        """
        deadline = time.monotonic() + timeout_s
        while not self.done:
            if time.monotonic() >= deadline:
                for button in self.buttons.values():
                    button.disabled = True
                error = DecisionError(
                    f"no {self.name} decision within {timeout_s:g} s; the system is left as "
                    f"it is ({self.session.upgrade_state.value}, "
                    f"{self.session.operational_state.value})",
                    "re-run this cell (or the runbook) to decide, or run abort.ipynb to "
                    "abort the session; headless runs need mode auto with decisions")
                self.message.value = note_html(str(error), colour=RED, title="timed out")
                raise error
            await asyncio.sleep(0.05)
        return self.decision


def nobody_can_click() -> bool:
    """True when this cell runs where no person can answer a widget: the kernel's current
    request came from papermill/nbclient, which execute with ``allow_stdin`` off
    (JupyterLab and other frontends allow it). Outside a kernel (a script, a test that
    clicks programmatically) there is no such evidence: False."""
    from IPython import get_ipython

    kernel = getattr(get_ipython(), "kernel", None)
    get_parent = getattr(kernel, "get_parent", None)
    if get_parent is None:
        return False
    content = (get_parent() or {}).get("content") or {}
    return content.get("allow_stdin") is False


def check_mode(mode: str, decisions: Mapping[str, str] | None, *, operator: str,
               reason: str, path: bool = True, change_id: str | None = None
               ) -> DecisionProvider | None:
    """Refuse, before anything changes, a bad mode or decision, auto decisions that do not
    reach an end or a declared pause (``path``), and interactive mode in a run where
    nobody could click (papermill): it would only wait for the panel's timeout.
    Returns the mode's provider (None for interactive: the panel decides)."""
    provider = provider_for(mode, decisions, operator=operator, reason=reason)
    if mode != "plan" and change_id is not None:  # who, and which change: facts, no defaults
        check_identity(operator=operator, change_id=change_id, what="this run")
    if mode == "auto" and path:
        check_path({k: str(v) for k, v in (decisions or {}).items()})
    if mode == "interactive" and nobody_can_click():
        raise DecisionError(
            "mode is interactive, but this run has no frontend to click in (papermill)",
            "pass -p mode auto with -y 'decisions: {split: proceed, merge: proceed, commit: "
            "commit}', or -p mode plan; or open the runbook in JupyterLab")
    return provider


async def ask(session: Session | None, name: str, *, mode: str,
              decisions: Mapping[str, str] | None, operator: str, reason: str,
              timeout_s: float = 3600) -> Decision | None:
    """Get decision NAME the way MODE says and journal it; one call per decision.

    - A decision this session journaled already (a re-run, a resumed session) is
      returned as it was: nobody is asked twice.
    - Where the session does not stand at this decision (an earlier step ended it,
      or plan mode without a session) nothing is asked; plan mode returns the plan's
      answer, otherwise None.
    - ``auto``: from DECISIONS (a missing one raises DecisionError: never a default);
      ``interactive``: a :class:`DecisionPanel`, awaited up to ``timeout_s``.

    A failure (a missing answer, a timed-out panel) is shown with the session's state and
    the way on; this run stops there (later steps skip, the result cell fails the run).
    """
    try:
        provider = check_mode(mode, decisions, operator=operator, reason=reason, path=False)
        if session is None:
            return provider.decide(name) if provider is not None else None
        earlier = session.decision(name)
        if earlier is not None:
            display(HTML(note_html(f"{name}: {earlier.answer} — decided earlier by "
                                   f"{earlier.who} ({earlier.source}, {earlier.when})")))
            return earlier
        if session.broken or session.last_error is not None:
            display(HTML(note_html(f"{name}: not asked — the run stopped above "
                                   f"({session.next().kind} {session.next().name}).",
                                   colour=YELLOW)))
            return None
        if not session.needs_decision(name):
            return None
        if provider is None:
            panel = DecisionPanel(session, name)
            display(panel)
            lead_to(session, panel, name)  # scroll to it, focus it, say so on the sticky line
            return await panel.wait(timeout_s)
        answer = provider.decide(name)
        if answer.answer in DECISIONS[name].pauses:
            session.pause(answer)
            display(HTML(note_html(
                f"{name}: {answer.answer} — paused here on purpose by {answer.who}: "
                f"{DECISIONS[name].pauses[answer.answer]}. To go on, run again with "
                f"{name}: {' or '.join(DECISIONS[name].answers)}.", colour=YELLOW)))
            return None
        decision = session.record_decision(answer)
    except FtkitError as err:
        display(HTML(failure_html(session, err)))
        if session is None:
            raise  # a bad mode or answer, before anything: stop here
        session.halt(err)  # later steps skip; the result cell fails the run
        return None
    display(HTML(note_html(f"{name}: {decision.answer} — by {decision.who} "
                           f"({decision.source}): {decision.why}", colour=GREEN)))
    return decision
