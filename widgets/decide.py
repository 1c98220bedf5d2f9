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
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import ipywidgets as w
from IPython.display import HTML, display

from ftkit.decisions import (
    CHOICES,
    QUESTIONS,
    Answered,
    Decision,
    DecisionProvider,
    make_decision,
)
from ftkit.engine import Advanced
from ftkit.errors import DecisionError, FtkitError, StepFailedError
from ftkit.flow import DECISIONS, LAST, RECOVERY, Kind, Next, no_way_back
from ftkit.model import Request
from ftkit.process import Session
from ftkit.window import Expired

from .attention import alert, lead_to
from .render import (
    GREEN,
    GREY,
    RED,
    YELLOW,
    cost_text,
    esc,
    evidence_html,
    failure_html,
    mask_paths,
    note_html,
    resolved_html,
    status_html,
)
from .views import LiveHTML, show

__all__ = [
    "DecisionPanel",
    "RecoveryPanel",
    "ask",
    "at_decision",
    "carry_on",
    "check_mode",
    "in_voila",
    "nobody_can_click",
]

_STYLE = {"proceed": "success", "commit": "success", "stop": "warning", "abort": "danger"}
_WIDE = {"width": "auto"}  # a button as wide as what it says
_REASON_LAYOUT = {"width": "min(100%, 640px)"}  # a reason is a sentence: room to read it
#: A new panel's answer buttons are armed this long after it is shown: a click meant for
#: the panel before it (the same spot, a second later) lands on a disabled button.
ARM_S = 2.0
#: While a cell waits for the commit panel, its evidence and approvals are read again this
#: often (an approval is given from another account's process), in seconds.
EVIDENCE_S = 5.0
REASON_PLACEHOLDER = "why you decide this"
T = TypeVar("T")


def reason_field(suggestion: str = "") -> w.Text:
    """An empty Reason field: typed per decision, never carried over. SUGGESTION (the
    run's ``reason`` parameter) is offered in the placeholder, not as a value."""
    hint = f"{REASON_PLACEHOLDER} (e.g. {suggestion})" if suggestion.strip() else \
        REASON_PLACEHOLDER
    return w.Text(value="", description="Reason", placeholder=hint, layout=_REASON_LAYOUT)


class _Owner:
    """The thread (and its event loop) a panel was made in: the kernel's main one, whose
    cells opened the session's SQLite connections. JupyterLab may send widget messages to
    a kernel subshell, which ipykernel runs on a thread of its own; a click arriving there
    is handed to the owner's loop, so that the engine runs where the session lives."""

    def __init__(self) -> None:
        self.ident = threading.get_ident()
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    def run(self, action: Callable[[], None]) -> None:
        """Run ACTION now when on the owner's thread (or when it has no loop), else soon on
        the owner's loop."""
        loop = self.loop
        if threading.get_ident() == self.ident or loop is None or loop.is_closed():
            action()
        else:
            loop.call_soon_threadsafe(action)


def _arm_later(arm: Callable[[], None]) -> None:
    """Call ARM after :data:`ARM_S` on the kernel's event loop (where the panel's clicks
    arrive); at once where no loop runs (a script, a unit test that clicks)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        arm()
        return
    loop.call_later(ARM_S, arm)


def _inside(output: w.Output, action: Callable[[], T]) -> T:
    """ACTION's result, what it displays going to OUTPUT; its exception raised here. (An
    ``Output`` used as a context manager in a kernel shows an exception as a traceback and
    swallows it: a refusal would pass for a success.)"""
    caught: list[Exception] = []
    with output:
        try:
            return action()
        except Exception as err:  # re-raised below, outside the Output
            caught.append(err)
    raise caught[0]


def _who_why(operator: w.Text, reason: w.Text, what: str) -> tuple[str, str]:
    who, why = operator.value.strip(), reason.value.strip()
    missing = [n for n, v in (("operator", who), ("reason", why)) if not v]
    if missing:
        raise DecisionError(f"{what}: enter the {' and the '.join(missing)} first",
                            "every decision is recorded with who made it and why")
    return who, why


def at_decision() -> str:
    """``21:14 (UTC+01:00)``: the wall-clock time now, with its UTC offset."""
    now = datetime.now().astimezone()
    offset = now.strftime("%z") or "+0000"
    return f"{now:%H:%M} (UTC{offset[:3]}:{offset[3:]})"


def _runs(rows: list[tuple[str, Any]]) -> str:
    return ", ".join(dict.fromkeys(r for r, _e in rows if r is not LAST)) or "nothing more"


class RecoveryPanel(LiveHTML, w.VBox):
    """Retry and Abort for a Broken session (docs/DOMAIN.md#operational-state): Retry runs
    the failed step again after the cause is fixed; Abort returns to the original software.
    Each button says what it costs (:meth:`ftkit.process.Session.costs`).

    Who and why are journaled with the choice. ``last`` is ``"retry"`` or ``"abort"``
    after a successful click; then both buttons stay disabled, the failure (``error``,
    shown at the top when given) folds into one "Resolved" line, and the next step is a
    button (``next_button``): "Finish the abort", or "Continue" (the requests due, up to
    the next decision, which is asked here). Progress of what a click runs shows in
    ``output``, inside the panel. Inside a :class:`DecisionPanel` (``follow=False``) the
    runbook's next cells carry on instead.
    """

    asks = True

    def __init__(self, session: Session, *, operator: w.Text | None = None,
                 reason: w.Text | None = None, error: BaseException | None = None,
                 follow: bool = True) -> None:
        self.session = session
        self.last: str | None = None
        self.error = error
        self.follow = follow
        self.operator = operator or w.Text(value=session.operator, description="Operator",
                                           placeholder="your name")
        self.reason = reason or reason_field(session.reason)
        self.failure = w.HTML(failure_html(session, error) if error is not None else "")
        self.state = w.HTML()
        self.retry_button = w.Button(description="Retry", button_style="warning",
                                     icon="repeat", layout=_WIDE,
                                     tooltip="run the failed step again")
        self.abort_button = w.Button(description=Request.ABORT, button_style="danger", icon="undo",
                                     layout=_WIDE, tooltip="return to the original software")
        self.next_button = w.Button(button_style="primary", icon="forward", layout=_WIDE)
        self.next_button.layout.display = "none"
        self.message = w.HTML()
        self.output = w.Output()
        owner = _Owner()
        self.retry_button.on_click(lambda _b: owner.run(lambda: self._clicked(
            lambda: self._act("retry"))))
        self.abort_button.on_click(lambda _b: owner.run(lambda: self._clicked(
            lambda: self._act("abort"))))
        self.next_button.on_click(lambda _b: owner.run(lambda: self._clicked(self._next)))
        self._next_action = ""
        own = operator is None
        fields = [self.failure, self.state, self.operator, self.reason] if own else []
        super().__init__(children=[*fields, w.HBox([self.retry_button, self.abort_button]),
                                   self.message, self.next_button, self.output])
        self._label_buttons()
        if own:
            self._show_state()
            self._unsubscribe = session.subscribe(self._show_state)
        self.reason.observe(self._typed, names="value")
        self.operator.observe(self._typed, names="value")

    @property
    def settled(self) -> bool:
        """Answered, and its next step (if it offers one) taken."""
        if self.last is None:
            return False
        offered = self.next_button.layout.display != "none"
        return not offered or (self._next_action == "continue" and self.next_button.disabled)

    def _label_buttons(self) -> None:
        try:
            costs = self.session.costs(RECOVERY.name) if self.session.broken else {}
        except FtkitError:
            costs = {}
        step = self.session.broken[0] if self.session.broken else ""
        if "retry" in costs:
            self.retry_button.description = (f"Retry {step} — {cost_text(costs['retry'])}"
                                              if costs["retry"] else f"Retry {step}")
        if "abort" in costs:
            self.abort_button.description = f"Abort — {cost_text(costs['abort'])}"

    def _show_state(self, *_: Any) -> None:
        try:
            self.state.value = status_html(self.session)
        except FtkitError as err:
            self.state.value = note_html(str(err), colour=RED)
        if self.display_id is not None and not self.finished:
            self.keep()

    def _typed(self, _change: Any) -> None:
        """A refusal for a missing operator or reason goes once they are typed."""
        if "enter the" in self.message.value and self.operator.value.strip() \
                and self.reason.value.strip():
            self.message.value = ""

    def html(self) -> str:
        done = (f"<div>{self.last.capitalize()} chosen.</div>" if self.last else
                "<div>Retry or Abort: not answered yet.</div>")
        return (self.failure.value + self.state.value + done + self.message.value)

    def _act(self, action: str) -> None:
        session = self.session
        if self.last is not None:  # disabled in the browser; a programmatic click is refused
            return
        step = session.broken[0] if session.broken else ""
        try:
            who, why = _who_why(self.operator, self.reason, action.capitalize())
        except DecisionError as err:
            self.message.value = note_html(str(err), colour=RED, title="not recorded")
            return
        try:
            decision = make_decision(RECOVERY.name, action, who=who, why=why,
                                     source="widget")
            self._set_busy(True)
            self.message.value = note_html(f"{action.capitalize()} running…", colour=YELLOW)
            _inside(self.output, lambda: session.advance(Answered(decision),
                                                         expect=Next(Kind.RECOVER, step)))
        except Exception as err:  # FtkitError, or else: shown, never lost in the log console
            _bars_failed(session)
            self.message.value = failure_html(session, err)
        else:
            self._resolved(action, who, step)
        finally:
            if self.last is None:
                self._set_busy(False)

    def _resolved(self, action: str, who: str, step: str) -> None:
        self.last = action
        self._set_busy(True)  # answered: neither button applies any more
        when = at_decision()
        if self.error is not None:
            self.failure.value = resolved_html(
                self.failure.value, self.error,
                f"{'retried' if action == 'retry' else 'aborted'} by {who} at {when}")
        if action == "retry":
            done = f"Retry succeeded at {when}: {step} ran again."
        else:
            done = (f"Aborted at {when}: the applications run on the original software. "
                    "Finish ends the session once the resync is complete.")
        self.message.value = note_html(done, colour=GREEN)
        if not self.follow:
            return
        if self.session.due(LAST):
            self._offer("finish", "Finish the abort — no outage")
        elif not self.session.done:
            self._offer("continue", "Continue")

    def _offer(self, action: str, label: str) -> None:
        self._next_action = action
        self.next_button.description = label
        self.next_button.disabled = False
        self.next_button.layout.display = ""

    def _next(self) -> None:
        self.next_button.disabled = True
        if self._next_action == "finish":
            self._finish()
        else:
            carry_on(self.session, self.output, self.message)

    def _finish(self) -> None:
        session = self.session
        try:
            _inside(self.output, session.carry_on)  # the Finish due after the abort
        except FtkitError as err:
            _bars_failed(session)
            self.message.value = failure_html(session, err)
            self.next_button.disabled = False
            return
        record = session.record
        if not session.done or record is None:  # say what the journal says, never more
            self.message.value = note_html(
                f"The session did not finish: it is {session.upgrade_state.value} / "
                f"{session.operational_state.value}. Run the runbook again to carry on.",
                colour=RED)
            self.next_button.disabled = False
            return
        self.message.value = note_html(
            f"Session {record.id} finished: {record.outcome}. The system is Idle again, on "
            "the original software. Run All again to bring this record up to date.",
            colour=GREEN)
        self.next_button.layout.display = "none"
        self.finish()

    def _set_busy(self, busy: bool) -> None:
        self.retry_button.disabled = busy
        self.abort_button.disabled = busy


def _bars_failed(session: Session) -> None:
    fail = getattr(session.progress, "fail", None)
    if callable(fail):
        fail()


def carry_on(session: Session, output: w.Output, message: w.HTML) -> None:
    """Run what :meth:`ftkit.process.Session.next` says is due, up to the next decision
    (asked in OUTPUT with a :class:`DecisionPanel` that carries on again once decided) or
    the end, soaking before the commit decision as the runbook's ``soak`` cell asked; a
    failure shows there with Retry and Abort. What a runbook re-run would do, from a
    button."""
    try:
        for did in _inside(output, session.carry_on):
            if did.did is Kind.SOAK:
                with output:
                    display(HTML(note_html(f"Soaked {did.minutes:g} min on the upgraded "
                                           f"software: {did.served} transactions "
                                           "acknowledged meanwhile.", colour=GREEN)))
        nxt = session.next()
    except FtkitError as err:
        _bars_failed(session)
        message.value = ""
        with output:
            show(recovery := RecoveryPanel(session, error=err))
        alert(session, err, recovery)  # notify, scroll to it, say so on the sticky line
        return
    if nxt.kind == "decide":
        message.value = note_html(f"Next: the {nxt.name} decision, below.", colour=GREEN)
        panel = DecisionPanel(session, nxt.name)
        panel.on_decided.append(lambda: _decided(session, panel, output))
        with output:
            show(panel)
        lead_to(session, panel, nxt.name)
    elif session.done and session.record is not None:
        message.value = note_html(f"Session {session.record.id} finished: "
                                  f"{session.record.outcome}.", colour=GREEN)
    else:
        message.value = note_html(f"The session is {session.upgrade_state.value} / "
                                  f"{session.operational_state.value}.", colour=YELLOW)


def _decided(session: Session, panel: DecisionPanel, output: w.Output) -> None:
    """A panel shown by a button was answered (its click advanced): carry on, or show the
    failure of the request the answer led to with Retry and Abort."""
    if panel.error is not None:
        with output:
            show(recovery := RecoveryPanel(session, error=panel.error))
        alert(session, panel.error, recovery)
        return
    carry_on(session, output, panel.message)


def _in_order(answers: Mapping[str, Any], costs: Mapping[str, list[tuple[Any, Any]]]
              ) -> list[str]:
    """The answers as the panel lays them out: declared order, except that an answer that
    starts an outage or is the point of no return (merge's proceed, commit's commit) goes
    last, so that it is not where the previous panel's first button was."""
    def grave(answer: str) -> bool:
        return no_way_back(answers[answer]) or any(
            float(getattr(e, "outage_s", 0) or 0) for _r, e in costs.get(answer, []))

    declared = list(answers)
    first = declared[0]
    if grave(first):
        return [*declared[1:], first]
    return declared


class DecisionPanel(LiveHTML, w.VBox):
    """Ask the operator one decision (``split``, ``merge`` or ``commit``).

    Shows the question, the session's state (live until decided, then stamped "at
    decision, HH:MM"), Operator and Reason fields (Reason empty: typed per decision, the
    session's reason offered as its placeholder) and one button per allowed answer (armed
    :data:`ARM_S` after the panel is shown; an answer that starts the outage or passes the
    point of no return laid out last), each saying what it costs and runs, from
    the declared estimates (:meth:`ftkit.process.Session.costs`); the commit panel shows
    the evidence (measured outage, soak, probes, transactions lost) and the approvals Commit
    needs (who gave them; while missing, who may and the command; read again on each
    refresh, on a refused click and every :data:`EVIDENCE_S` while :meth:`wait` waits),
    and marks Commit as the point of no return. A click journals the decision
    (``source="widget"``) and sets ``decision``; an empty operator or reason is refused
    with a message (gone once they are typed) and nothing is recorded. While the session
    is Broken the panel shows Retry and Abort instead. ``on_decided`` callbacks run after a
    recorded click.
    """

    asks = True

    def __init__(self, session: Session, name: str, *, reason: str | None = None) -> None:
        if name not in CHOICES:
            raise DecisionError(f"unknown decision {name!r}", f"use one of: {', '.join(CHOICES)}")
        self.session = session
        self.name = name
        self.decision: Decision | None = None
        self.on_decided: list[Callable[[], None]] = []
        self._settled = False
        self.question = w.HTML(f"<b>{esc(QUESTIONS[name])}</b>")
        self.state = w.HTML()
        self.evidence = w.HTML()  # the commit decision's evidence and approvals
        self.operator = w.Text(value=session.operator, description="Operator",
                               placeholder="your name")
        self.reason = reason_field(session.reason if reason is None else reason)
        try:
            costs = session.costs(name)
        except FtkitError:
            costs = {}
        spec = DECISIONS[name]
        self.buttons = {}
        lines = []
        self.armed = False  # the answer buttons: disabled until ARM_S after it is shown
        for answer in _in_order(spec.answers, costs):
            cost = cost_text(costs[answer]) if costs.get(answer) else ""
            if no_way_back(spec.answers[answer]):
                cost += "; the point of no return"
            label = f"{answer.capitalize()} — {cost}" if cost else answer.capitalize()
            self.buttons[answer] = w.Button(description=label,
                                            button_style=_STYLE.get(answer, ""),
                                            layout=_WIDE, tooltip=spec.help.get(answer, ""))
            lines.append(f"<li><b>{esc(answer.capitalize())}</b>: "
                         f"{esc(spec.help.get(answer, ''))} (runs "
                         f"{esc(_runs(costs.get(answer, [])))}"
                         f"{'; ' + esc(cost) if cost else ''})</li>")
        self.help = w.HTML(f"<ul style='margin:2px 0'>{''.join(lines)}</ul>")
        owner = _Owner()
        for answer, button in self.buttons.items():
            button.on_click(lambda _b, a=answer: owner.run(
                lambda: self._clicked(lambda: self._choose(a))))
        self.choices = w.HBox(list(self.buttons.values()),
                              layout={"flex_flow": "row wrap"})
        self.recovery = RecoveryPanel(session, operator=self.operator, reason=self.reason,
                                      follow=False)
        self.message = w.HTML()
        self.output = w.Output()  # what the click runs shows here, inside the panel
        self.advanced: Advanced | None = None  # what the click's advance did
        self._answering = False
        self.error: FtkitError | None = None  # why the request the answer led to failed
        super().__init__(children=[self.question, self.state, self.evidence, self.operator,
                                   self.reason, self.choices, self.help, self.recovery,
                                   self.message, self.output])
        self.reason.observe(self._typed, names="value")
        self.operator.observe(self._typed, names="value")
        self._unsubscribe: Callable[[], None] = lambda: None
        self.refresh()
        if not self._settled:
            self._unsubscribe = session.subscribe(self.refresh)
            _arm_later(self._arm)

    def _arm(self) -> None:
        self.armed = True
        self.refresh()

    @property
    def settled(self) -> bool:
        return self._settled and (self.recovery.last is None or self.recovery.settled)

    @property
    def done(self) -> bool:
        """Decided, or the question no longer applies (the session was aborted, say)."""
        if self.decision is not None:
            return True
        session = self.session
        if session.paused is not None and session.paused.name == self.name:
            return True  # held by a declared rule or an expired timeout (ftkit/flow.py)
        return bool(session.done or (
            session.record is not None and not session.broken
            and session.upgrade_state is not DECISIONS[self.name].asked_in))

    def html(self) -> str:
        decided = (f"<div><b>Decided</b>: {esc(self.decision.answer)} by "
                   f"{esc(self.decision.who)} ({esc(self.decision.why)})</div>"
                   if self.decision and "<b>Decided</b>" not in self.message.value else "")
        help_ = "" if self.done else self.help.value
        return (self.question.value + self.state.value + self.evidence.value + decided
                + help_ + self.recovery.message.value + self.message.value)

    def _typed(self, _change: Any) -> None:
        """A refusal for a missing operator or reason goes once they are typed."""
        if "enter the" in self.message.value and self.operator.value.strip() \
                and self.reason.value.strip():
            self.message.value = ""

    def refresh(self, *_: Any) -> None:
        """Show the choices, or Retry/Abort while Broken, or what was decided. The state is
        live until the panel is decided (or moot); then it is stamped with the time."""
        self._refresh()
        if self.display_id is not None and not self.finished:
            self.keep()

    def _refresh(self) -> None:
        if self._settled or self._answering:
            return
        try:
            self.state.value = status_html(self.session)
        except FtkitError as err:
            self.state.value = note_html(str(err), colour=RED)
        self._show_evidence()
        broken = self.session.broken is not None
        decided = self.decision is not None
        recovered = self.recovery.last is not None
        self.choices.layout.display = "none" if broken or self.done else ""
        self.help.layout.display = self.choices.layout.display
        self.recovery.layout.display = "" if (broken or recovered) and not decided else "none"
        for button in self.buttons.values():
            button.disabled = decided or broken or not self.armed
        if broken and not decided:
            step, reason = self.session.broken or ("", "")
            self.message.value = note_html(
                f"The session is Broken at {step}: {mask_paths(reason)}. Fix the cause, then "
                "Retry; or Abort back to the original software.", colour=RED)
        elif recovered and not decided:
            self.message.value = ""  # the recovery panel says how it was resolved
        elif self.done and not decided:
            self.message.value = note_html(
                f"No {self.name} decision is needed any more: the session is "
                f"{self.session.upgrade_state.value}.", colour=GREY)
        if self.done:
            self._settled = True
            self._unsubscribe()
            self.operator.disabled = self.reason.disabled = True
            when = "at decision" if decided else "when the question went away"
            self.state.value = (f"<div style='color:{GREY};font-size:12px'>Status {when}, "
                                f"{esc(at_decision())}:</div>" + self.state.value)
            if self.session.done:
                self.finish()
            return

    def _show_evidence(self) -> None:
        """The evidence and the approval state, read again (an approval is given from
        another account's process, so the panel reads it when it refreshes or refuses)."""
        if not DECISIONS[self.name].soak:
            return
        try:
            self.evidence.value = evidence_html(self.session)
        except FtkitError as err:
            self.evidence.value = note_html(str(err), colour=RED)

    def _choose(self, answer: str) -> None:
        try:
            if self.decision is not None:
                raise DecisionError(f"{self.name} is decided already: {self.decision.answer}",
                                    "re-run the runbook to carry on")
            if self.session.broken:
                raise StepFailedError(f"the session is Broken at {self.session.broken[0]}",
                                      "Retry or Abort first")
            if not self.armed:  # disabled in the browser; a click that got through anyway
                raise DecisionError(f"{self.name}: this panel was shown a moment ago",
                                    "read it, type the reason, then click")
            who, why = _who_why(self.operator, self.reason, f"{self.name}: {answer}")
            decision = make_decision(self.name, answer, who=who, why=why, source="widget")
        except FtkitError as err:
            self.message.value = note_html(str(err), colour=RED, title="not recorded")
            return
        for button in self.buttons.values():
            button.disabled = True  # one answer: a second click runs nothing
        leads = DECISIONS[self.name].answers.get(answer)
        self.message.value = note_html(f"{self.name}: {answer} — {leads} running…",
                                       colour=YELLOW)
        self._answering = True  # the state moves under the click: judge it once, after
        try:  # one call into the engine: the answer is journaled with its request's intent
            self.advanced = _inside(self.output, lambda: self.session.advance(
                Answered(decision), expect=Next(Kind.DECIDE, self.name)))
        except FtkitError as err:
            _bars_failed(self.session)
            self.error = err
            self.decision = self.session.decision(self.name)  # journaled if it stood
            if self.decision is None:  # refused, nothing recorded: the panel still asks
                self.error = self.session.last_error = None  # a later click may carry on
                for button in self.buttons.values():
                    button.disabled = not self.armed
                self._show_evidence()  # the approvals as they stand now
                self.message.value = note_html(str(err), colour=RED, title="not recorded")
                return
            self.message.value = failure_html(self.session, err)
        else:
            self.decision = decision
            # said once: the static rendering adds no second "Decided" line (html())
            self.message.value = note_html(
                f"{answer} by {decision.who} ({decision.why}), journaled; {leads} done.",
                colour=GREEN, title="Decided")
        finally:
            self._answering = False
        self.refresh()
        for callback in self.on_decided:
            callback()

    async def wait(self, timeout_s: float = 3600) -> Decision | None:
        """Wait (top-level ``await`` in the cell) until decided; the decision, or None if
        the question went away (the session was aborted from the panel).

        On timeout nothing is changed: the system stays as it is, which is safe, and a
        :class:`DecisionError` says how to go on.
        """
        deadline = time.monotonic() + timeout_s
        look = time.monotonic() + EVIDENCE_S
        while not self.done:
            if time.monotonic() >= look and not (self._answering or self._settled):
                self._show_evidence()  # an approval given meanwhile, from another account
                look = time.monotonic() + EVIDENCE_S
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


def in_voila() -> bool:
    """True in a kernel Voilà started for a page (``ftkit app``): Voilà gives its kernels
    ``SERVER_SOFTWARE=voila/<version>``. Read-only."""
    import os

    return os.environ.get("SERVER_SOFTWARE", "").startswith("voila/")


def nobody_can_click() -> bool:
    """True when this cell runs where no person can answer a widget: the kernel's current
    request came from papermill/nbclient, which execute with ``allow_stdin`` off
    (JupyterLab and other frontends allow it). Outside a kernel (a script, a test that
    clicks programmatically) there is no such evidence: False."""
    from IPython import get_ipython

    if in_voila():
        return False  # Voilà runs the cells as nbclient does, in a page people click in
    kernel = getattr(get_ipython(), "kernel", None)
    get_parent = getattr(kernel, "get_parent", None)
    if get_parent is None:
        return False
    content = (get_parent() or {}).get("content") or {}
    return content.get("allow_stdin") is False


def check_mode(mode: str, decisions: Mapping[str, str] | None, *, operator: str,
               reason: str, path: bool = True, change_id: str | None = None,
               system: str | None = None, others: Mapping[str, Any] | None = None
               ) -> DecisionProvider | None:
    """Refuse, before anything changes, a bad mode or decision, auto decisions that do not
    reach an end or a declared pause (``path``; from where SYSTEM's unfinished session
    stands, when there is one), interactive mode in a run where nobody could click
    (papermill): it would only wait for the panel's timeout, and any of the run's OTHER
    parameters out of type or bounds (``time_scale``, ``scenario``, ``soak_minutes``, …).
    Returns the mode's provider (None for interactive: the panel decides)."""
    from ftkit.preflight import check_decisions, check_value  # the one check ftkit run makes

    for name, value in (others or {}).items():
        check_value(name, value)
    provider = check_decisions(mode, decisions, operator=operator, reason=reason,
                               change_id=change_id, system=system, path=path)
    if mode == "interactive" and nobody_can_click():
        raise DecisionError(
            "mode is interactive, but this run has no frontend to click in (papermill)",
            "pass -p mode auto with -y 'decisions: {split: proceed, merge: proceed, commit: "
            "commit}', or -p mode plan; or open the runbook in JupyterLab")
    return provider


async def ask(session: Session | None, name: str, *, mode: str,
              decisions: Mapping[str, str] | None, operator: str, reason: str,
              timeout_s: float = 3600, picture: bool = False) -> Decision | None:
    """Get decision NAME the way MODE says and advance with it: the answer is journaled
    in the intent of the request it leads to, which runs in this cell (one call per
    decision; with ``picture`` the system picture after it).

    - A decision this session journaled already (a re-run, a resumed session) is
      returned as it was: nobody is asked twice.
    - Where the session does not stand at this decision (an earlier step ended it,
      or plan mode without a session) nothing is asked; plan mode returns the plan's
      answer, otherwise None.
    - ``auto``: from DECISIONS (a missing one raises DecisionError: never a default);
      ``interactive``: a :class:`DecisionPanel`, awaited up to ``timeout_s``. A declared
      pause (``merge: later``) stops the run here on purpose.

    A failure (a missing answer, a timed-out panel, a request that failed) is shown with
    the session's state and the way on; this run stops there (later steps skip, the result
    cell fails the run).
    """
    from ftkit.notify import decision_pending

    from .runbook import _done, _failed, done_earlier_html

    try:
        provider = check_mode(mode, decisions, operator=operator, reason=reason, path=False)
        if session is None:
            return provider.decide(name) if provider is not None else None
        earlier = session.decision(name)
        if earlier is not None:
            display(HTML(note_html(f"{name}: {earlier.answer} — decided earlier by "
                                   f"{earlier.who} ({earlier.source}, {earlier.when})")))
            led = DECISIONS[name].answers.get(earlier.answer)
            if led is not None and (evidence := done_earlier_html(session, led)) is not None:
                display(HTML(evidence))  # what the answer ran, as the journal holds it
            return earlier
        if session.broken or session.last_error is not None:
            display(HTML(note_html(f"{name}: not asked — the run stopped above "
                                   f"({session.next()}).", colour=YELLOW)))
            return None
        if not session.needs_decision(name):
            return None
        if provider is None and in_voila():
            # Voilà shows a cell's outputs once it ends: the panel cannot block its cell
            # there. It is shown, the later cells find nothing due, and its click carries
            # the session on (the same engine), asking each next decision in its turn.
            panel = DecisionPanel(session, name, reason=reason or None)
            panel.on_decided.append(lambda: _decided(session, panel, panel.output))
            show(panel)
            lead_to(session, panel, name)
            return None
        if provider is None:
            if session.advance(expect=Next(Kind.DECIDE, name)).did is not Kind.DECIDE:
                return session.decision(name)  # a declared rule answered (ftkit/flow.py)
            panel = DecisionPanel(session, name, reason=reason or None)
            show(panel)
            decision_pending(session, name)  # people hear of it (the configuration's notify)
            lead_to(session, panel, name)  # scroll to it, focus it, say so on the sticky line
            before = session.now()
            minutes = session.controls.timeout_min(name)  # decision_timeout_min
            try:
                answer = await panel.wait(timeout_s if minutes is None else minutes * 60)
            except DecisionError:
                if minutes is None:
                    raise
                # expired: its buttons are off; the declared outcome, journaled
                did = session.advance(Expired(minutes), expect=Next(Kind.DECIDE, name))
                for button in panel.buttons.values():
                    button.disabled = True  # no button stays live after the expiry
                display(HTML(note_html(f"{name}: no decision within {minutes:g} min — "
                                       f"{did.decision.why if did.decision else did.did}; "
                                       f"now {session.upgrade_state.value}.", colour=YELLOW)))
                return None
            if panel.error is not None:
                session.halt(panel.error)
                return answer
            if answer is not None and panel.advanced is not None:
                _done(session, panel.advanced.name, before, picture=picture)
            return answer  # None: the question went away (aborted from the panel)
    except FtkitError as err:
        display(HTML(failure_html(session, err)))
        if session is None:
            raise  # a bad mode or answer, before anything: stop here
        session.halt(err)  # later steps skip; the result cell fails the run
        return None
    before = session.now()
    try:
        did = session.advance(provider, expect=Next(Kind.DECIDE, name))
    except FtkitError as err:
        if session.broken:  # the answer stood; the request it led to failed
            _failed(session, err, live=False)
        else:
            display(HTML(failure_html(session, err)))
        return session.decision(name)
    spec = DECISIONS[name]
    if did.did is Kind.PAUSED and did.decision is not None:
        display(HTML(note_html(
            f"{name}: {did.decision.answer} — paused here on purpose by {did.decision.who}: "
            f"{spec.pauses.get(did.decision.answer, did.decision.why)}. To go on, run again with "
            f"{name}: {' or '.join(spec.answers)}.", colour=YELLOW)))
        return None
    decision = did.decision
    if decision is None:  # not the step expected: nothing done
        return None
    display(HTML(note_html(f"{name}: {decision.answer} — by {decision.who} "
                           f"({decision.source}): {decision.why}", colour=GREEN)))
    _done(session, did.name, before, picture=picture)
    return decision
