"""Take the operator to what needs them, in JupyterLab (live runs only).

- :func:`lead_to` (a decision panel is shown): the panel scrolls into view and its first
  empty field (the Reason, usually) gets the focus.
- :func:`alert` (a step failed, the session is Broken): the Broken panel scrolls into
  view and JupyterLab raises an error notification.
- Both keep one line sticky at the top of the notebook: what the runbook is waiting for
  ("Waiting for: the split decision", "Running: Install …", "Broken at Install — decide
  Retry or Abort"), with a button that scrolls to it. The line follows the session's
  journal (``session.subscribe``).

The front end is a small anywidget module that is never displayed: its model lives as long
as the kernel and reaches the page through the DOM (the panel carries a CSS class it
looks for), so a saved notebook holds no output of it. The notification goes through
ipylab (JupyterLab's ``apputils:notify`` command). Where nobody can click — papermill,
``ftkit run``, a script — nothing here creates a widget: headless runs and their reports
are unchanged. A failure here never stops the upgrade: the page is a help, not a step.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ftkit.journal import Entry
from ftkit.model import Request
from ftkit.process import Session

__all__ = ["alert", "attention_line", "clicked", "kept", "lead_to", "lead_to_panel",
           "progressed", "say_on_line"]

log = logging.getLogger(__name__)

_ESM = r"""
const BAR = "ftkit-attention-bar";
const STYLE_ID = "ftkit-attention-style";
const CSS = `
.${BAR} { position: sticky; top: 0; z-index: 20; display: flex; align-items: center;
  gap: 8px; height: 28px; box-sizing: border-box; padding: 0 12px; margin: 0;
  font-family: var(--jp-ui-font-family); font-size: var(--jp-ui-font-size1);
  white-space: nowrap; overflow: hidden; color: var(--jp-ui-font-color0);
  background: var(--jp-layout-color1); border-bottom: 2px solid #1565c0;
  box-shadow: 0 1px 3px rgba(0,0,0,.15); }
.${BAR}[data-tone="wait"] { border-bottom-color: #1565c0; }
.${BAR}[data-tone="run"] { border-bottom-color: #9e9e9e; }
.${BAR}[data-tone="broken"] { border-bottom-color: #c62828; background: #fdecea; }
.${BAR}[data-tone="done"] { border-bottom-color: #2e7d32; }
.${BAR} .ftkit-attention-text { overflow: hidden; text-overflow: ellipsis; }
.${BAR} .ftkit-attention-text b { font-weight: 600; }
.ftkit-attention-here { outline: 2px solid #1565c0; outline-offset: 2px;
  transition: outline-color 1.5s ease-out; }
.ftkit-attention-here.ftkit-attention-faded { outline-color: transparent; }
.ftkit-dead-note { margin: 4px 0; padding: 6px 10px; border-left: 4px solid #c62828;
  background: #fdecea; color: #b71c1c; font-family: var(--jp-ui-font-family);
  font-size: var(--jp-ui-font-size1); }
.ftkit-dead-panel button, .ftkit-dead-panel input { opacity: .45; }
.${BAR} button { flex: none; cursor: pointer; font: inherit; padding: 1px 8px;
  border: 1px solid var(--jp-border-color1); border-radius: 2px;
  background: var(--jp-layout-color2); color: inherit; }
`;

function addStyle() {
  if (document.getElementById(STYLE_ID)) return;
  const style = document.createElement("style");
  style.id = STYLE_ID;
  style.textContent = CSS;
  document.head.appendChild(style);
}

// the notebook's scrolling element (JupyterLab 4), or the nearest one that scrolls
function scrollerOf(el) {
  const outer = el.closest(".jp-WindowedPanel-outer");
  if (outer) return outer;
  for (let node = el.parentElement; node; node = node.parentElement) {
    const overflow = getComputedStyle(node).overflowY;
    if ((overflow === "auto" || overflow === "scroll") && node.scrollHeight > node.clientHeight)
      return node;
  }
  return null;
}

function isVisible(el) { return el.getClientRects().length > 0; }

function runningCell(scroller) {
  const root = scroller || document;
  for (const prompt of root.querySelectorAll(".jp-CodeCell .jp-InputPrompt")) {
    if (prompt.textContent.includes("[*]") && isVisible(prompt))
      return prompt.closest(".jp-Cell");
  }
  return null;
}

function lastCell(scroller) {
  const cells = (scroller || document).querySelectorAll(".jp-Cell");
  return cells.length ? cells[cells.length - 1] : null;
}

// scroll so that EL's cell shows whole below the bar (centred), or, when it is taller
// than the view, so that EL itself shows from its top
function reveal(el, scroller) {
  if (!scroller) { el.scrollIntoView({ block: "center" }); return; }
  const bar = scroller.querySelector(":scope > ." + BAR);
  const barHeight = bar ? bar.offsetHeight : 0;
  const view = scroller.getBoundingClientRect();
  const room = view.height - barHeight;
  const cell = el.closest(".jp-Cell") || el;
  const box = cell.getBoundingClientRect();
  let top;
  if (box.height <= room) {
    top = box.top - (view.top + barHeight + (room - box.height) / 2);
  } else {
    const own = el.getBoundingClientRect();
    top = own.height <= room ? own.bottom - view.bottom + 8 : own.top - (view.top + barHeight + 8);
  }
  scroller.scrollTop += top;
}

function focusField(el, hint) {
  const fields = Array.from(el.querySelectorAll("input[type=text], input:not([type]), textarea"))
    .filter((f) => !f.disabled && !f.readOnly && isVisible(f));
  const empty = fields.find((f) => f.value.trim() === "");
  const field = empty || (hint && el.querySelector("." + hint + " input, ." + hint + " textarea"));
  if (!field) return;
  field.focus({ preventScroll: true });
  if (!empty && field.select) field.select();
}

const DEAD = "this panel's kernel stopped — Run All to resume where the journal stands";
const DEAD_CLICK = "This panel's kernel stopped: a click here does nothing. Run All to " +
  "resume where the journal stands (nothing is done twice; decisions taken stand).";

// ftkit's panels whose widget models lost their kernel (a restart, a kernel that died):
// ipywidgets marks their views "jupyter-widgets-disconnected"
function deadPanels(root, token) {
  const mine = new RegExp("^ftkit-attention-(decision|broken)-" + token + "-\\d+$");
  return Array.from(root.querySelectorAll(".jupyter-widgets-disconnected")).filter((el) =>
    Array.from(el.classList).some((c) => mine.test(c)));
}

function markDead(panel) {
  if (panel.classList.contains("ftkit-dead-panel")) return;
  panel.classList.add("ftkit-dead-panel");
  const note = document.createElement("div");
  note.className = "ftkit-dead-note";
  note.setAttribute("role", "alert");
  note.textContent = DEAD.charAt(0).toUpperCase() + DEAD.slice(1) + ".";
  panel.insertBefore(note, panel.firstChild);
  // a disabled button hears no click: every control answers now, with the explanation
  panel.querySelectorAll("button, input").forEach((el) => { el.disabled = false; });
  // a click explains instead of doing nothing
  panel.addEventListener("click", (event) => {
    if (!event.target.closest("button, input")) return;
    event.preventDefault();
    event.stopPropagation();
    note.textContent = DEAD_CLICK;
  }, true);
}

const WIDGET_VIEW = "application/vnd.jupyter.widget-view+json";

// the page is saved while this kernel is gone (a restart, a kernel that died): every live
// display of this kernel is saved as the static rendering the kernel last handed over
// (model "statics": widget model id -> HTML), so that the notebook reopens without
// "Error displaying widget: model not found" (JupyterLab saves no state of a widget
// whose kernel is gone). NOTEBOOK is JupyterLab's notebook model.
function keepStatic(notebook, statics) {
  const cells = notebook.cells;
  for (let c = 0; c < cells.length; c++) {
    const outputs = cells.get(c).outputs;
    if (!outputs) continue;
    for (let i = 0; i < outputs.length; i++) {
      const data = outputs.get(i).data || {};
      const view = data[WIDGET_VIEW];
      const html = view && statics[view.model_id];
      if (!html) continue;
      outputs.set(i, { output_type: "display_data", metadata: {},
        data: { "text/html": html, "text/plain": data["text/plain"] || "" } });
    }
  }
}

// JupyterLab's document context of the notebook this kernel runs (absent under Voilà):
// once its kernel restarts, dies or is replaced, a save keeps static renderings
function watchSaves(model) {
  const context = model.widget_manager && model.widget_manager.context;
  if (!context || !context.saveState || !context.sessionContext) return () => {};
  let gone = false;
  const onStatus = (_, status) => {
    if (["restarting", "autorestarting", "dead"].includes(status)) gone = true;
  };
  const onKernel = () => { gone = true; };
  const onSave = (_, state) => {
    if (state !== "started" || !gone) return;
    try { keepStatic(context.model, model.get("statics") || {}); }
    catch (err) { console.error("ftkit: could not keep the static renderings", err); }
  };
  context.sessionContext.statusChanged.connect(onStatus);
  context.sessionContext.kernelChanged.connect(onKernel);
  context.saveState.connect(onSave);
  return () => {
    context.sessionContext.statusChanged.disconnect(onStatus);
    context.sessionContext.kernelChanged.disconnect(onKernel);
    context.saveState.disconnect(onSave);
  };
}

export default {
  initialize({ model }) {
    addStyle();
    let unwatch = () => {};
    try { unwatch = watchSaves(model); } catch (err) { console.error(err); }
    let bar = null;
    let scroller = null;
    let pinned = null;  // the element a "@here" target resolved to
    let timer = null;
    let dead = false;  // this kernel is gone: the line says so and stays so

    function resolve() {
      const target = model.get("target");
      if (!target) return null;
      if (target === "@running") return runningCell(scroller);
      if (target === "@last") return lastCell(scroller);
      if (target === "@here") return pinned;
      const found = document.getElementsByClassName(target);
      return found.length ? found[found.length - 1] : null;
    }

    // outline the element for a moment: the eye finds where the view moved to
    function highlight(el) {
      el.classList.remove("ftkit-attention-here", "ftkit-attention-faded");
      el.classList.add("ftkit-attention-here");
      setTimeout(() => el.classList.add("ftkit-attention-faded"), 600);
      setTimeout(() => el.classList.remove("ftkit-attention-here", "ftkit-attention-faded"), 2200);
    }

    function place(el) {
      const own = scrollerOf(el);
      if (!own) return;
      scroller = own;
      if (bar && bar.parentElement === own && own.firstElementChild === bar) return;
      for (const old of own.querySelectorAll(":scope > ." + BAR)) old.remove();
      if (!bar) {
        bar = document.createElement("div");
        bar.className = BAR;
        bar.setAttribute("role", "status");
        const text = document.createElement("span");
        text.className = "ftkit-attention-text";
        const go = document.createElement("button");
        go.className = "ftkit-attention-go";
        go.addEventListener("click", () => lead(false));
        bar.append(text, go);
      }
      own.insertBefore(bar, own.firstChild);
      draw();
    }

    function draw() {
      if (!bar || dead) return;
      bar.dataset.tone = model.get("tone");
      bar.querySelector(".ftkit-attention-text").innerHTML = model.get("line");
      const go = bar.querySelector(".ftkit-attention-go");
      go.textContent = model.get("button");
      go.style.display = model.get("button") && model.get("target") ? "" : "none";
    }

    // scroll to the target (waiting up to 10 s for it to render); focus its first empty
    // field when FOCUS
    function lead(focus) {
      clearTimeout(timer);
      const started = Date.now();
      const attempt = () => {
        if (model.get("target") === "@here" && !pinned) pinned = runningCell(scroller);
        const el = resolve();
        if (!el) {
          if (Date.now() - started < 10000) timer = setTimeout(attempt, 100);
          return;
        }
        place(el);
        if (!isVisible(el)) return;  // another tab is in front: the line waits there
        reveal(el, scroller);
        highlight(el);
        if (focus) focusField(el, model.get("focus"));
        // content-visibility estimates settle after a frame: check once more
        requestAnimationFrame(() => requestAnimationFrame(() => reveal(el, scroller)));
      };
      attempt();
    }

    // a panel whose kernel is gone says so, and so does the line (checked each second:
    // the page is told of a restart only through the views it disconnects)
    const deathWatch = setInterval(() => {
      const gone = deadPanels(document, model.get("token"));
      if (!gone.length) return;
      gone.forEach(markDead);
      if (dead || !bar || !bar.isConnected) return;  // another kernel's line took its place
      dead = true;
      bar.dataset.tone = "broken";
      bar.querySelector(".ftkit-attention-text").innerHTML =
        "<b>Stopped:</b> " + DEAD;
      bar.querySelector(".ftkit-attention-go").style.display = "none";
    }, 1000);

    const onLead = () => { pinned = null; lead(true); };
    model.on("change:lead", onLead);
    model.on("change:line", draw);
    model.on("change:tone", draw);
    model.on("change:button", draw);
    model.on("change:target", draw);
    // the page was (re)loaded while the kernel ran: put the line back where it was, and
    // lead again only to what still needs the operator
    if (["wait", "broken"].includes(model.get("tone"))) onLead();
    else if (model.get("anchor")) {
      const started = Date.now();
      const again = () => {
        const found = document.getElementsByClassName(model.get("anchor"));
        if (found.length) place(found[found.length - 1]);
        else if (Date.now() - started < 10000) timer = setTimeout(again, 200);
      };
      again();
    }
    return () => {
      unwatch();
      clearTimeout(timer);
      clearInterval(deathWatch);
      if (bar) bar.remove();
    };
  },
};
"""


def _frontend() -> bool:
    """True when a person may be looking: this code runs in a kernel whose current
    request came from a frontend that lets people answer (JupyterLab), not papermill."""
    from IPython import get_ipython

    from .decide import nobody_can_click

    return getattr(get_ipython(), "kernel", None) is not None and not nobody_can_click()


def _voila() -> bool:
    from .decide import in_voila

    return in_voila()


def attention_line(session: Session, *, waiting: str | None = None,
                   running: str | None = None, progress: str = "") -> tuple[str, str]:
    """``(tone, text)`` of the sticky line: what the runbook is waiting for or doing, with
    the running step's PROGRESS (``42% · about 14 min left``); the soak's progress when no
    step runs (``running`` None, ``progress`` given).

    Tone is ``run``, ``wait``, ``broken`` or ``done``. Read-only.
    """
    broken = session.broken
    if running:
        return "run", f"Running: {running} — {progress}" if progress else \
            f"Running: {running} …"
    if progress and not broken:
        return "run", f"Soaking: {progress}"
    if broken:
        return "broken", f"Broken at {broken[0]} — decide Retry or Abort"
    if waiting:
        return "wait", f"Waiting for: the {waiting} decision"
    if session.done and session.record is not None:
        return "done", f"Finished: {session.record.outcome}"
    nxt = session.next()
    if nxt.kind == "halted":
        return "broken", "Stopped: see the failure"
    if nxt.kind == "decide":
        return "wait", f"Next: the {nxt.name} decision"
    if nxt.name:
        return "run", f"Next: {nxt.name}"
    return "run", f"Upgrade state: {session.upgrade_state.value}"


_BUTTONS = {"run": "Show", "wait": "Go to it", "broken": "Go to it", "done": "Show result"}
_serial = itertools.count(1)
_TOKEN = secrets.token_hex(4)  # this kernel's: two runbooks open in one page stay apart


@dataclass
class _Watch:
    """What one session's sticky line follows: the panel waited for, the step running."""

    session: Session
    beacon: Any
    waiting: str | None = None
    panel: Any = None
    running: str | None = None
    target: str = ""
    unsubscribe: Any = field(default=None, repr=False)
    started_s: float = 0.0  # the system's clock when the running step began
    estimate_s: float = 0.0  # the plan's estimate of the running step
    progress: str = ""  # the running step's (or the soak's) progress, as the line says it
    notified: bool = False  # a failure notification is up (until the session is not Broken)
    clicked: str = ""  # a click runs steps: the class of the output they show in (clicked())
    where: str = "@running"  # where the running step shows: its cell, or a clicked panel's


    def heard(self, entry: Entry) -> None:
        try:
            lead = False
            if entry.kind == "intent":
                self.running = entry.step
                self.started_s = (entry.sim_time if entry.sim_time is not None
                                  else self.session.now())
                self.estimate_s = _estimate_s(self.session, entry.step)
                self.progress = ""
                self.where = self.clicked or "@running"
                # a long step a click started runs below the panel clicked in: the view
                # goes there on its own (a cell's step shows in the cell already running)
                lead = bool(self.clicked) and self.estimate_s >= LONG_S
            elif entry.kind == "outcome":
                self.running, self.progress = None, ""
            if self.notified and self.session.broken is None:
                self.notified = False  # resolved (Retry, Abort): the red toast goes too
                _app().commands.execute(_DISMISS, {})
            self.show()
            if lead:
                with self.beacon.hold_sync():
                    self.beacon.focus = ""
                    self.beacon.lead += 1
        except Exception:  # the page is a help: never let it stop the upgrade
            log.exception("attention: could not update the sticky line")

    def progressed(self, label: str, done: float, total: float) -> None:
        """A part of the running step (or the soak) moved on: the line says how far the
        step is against the plan's estimate and how long is left; during the merge, the
        outage so far. Said again only when its words change."""
        now = self.session.now()
        share = min(1.0, done / total) if total > 0 else 1.0
        if self.running:
            parts = []
            if self.estimate_s > 0:
                took = max(0.0, now - self.started_s)
                parts.append(f"{min(99.0, took / self.estimate_s * 100):.0f}% · about "
                             f"{_duration(max(0.0, self.estimate_s - took))} left")
            parts.append(f"{label} {share * 100:.0f}%")
            if self.running == Request.EXECUTE_MERGE.value:
                ongoing = [o for o in self.session.outages() if o.end is None]
                if ongoing:
                    parts.append(f"outage so far {now - ongoing[-1].start:.0f} s")
            text = " · ".join(parts)
        elif label == _SOAK and share < 1.0:
            text = (f"{share * 100:.0f}% · about {_duration(total - done)} left, then the "
                    "commit decision")
        else:
            text = ""
        if text != self.progress:
            self.progress = text
            self.show()

    def show(self) -> None:
        if self.waiting is not None and (
                self.session.decision(self.waiting) is not None
                or getattr(self.panel, "done", False)):
            self.waiting = None
        tone, text = attention_line(self.session, waiting=self.waiting, running=self.running,
                                    progress=self.progress)
        # the step running, the result, else the panel last led to (it offers the next step)
        target = ("@last" if tone == "done" else self.where if self.running
                  else "@running" if self.progress else self.target)
        from html import escape

        head, _, rest = text.partition(": ")
        line = (f"<b>{escape(head)}:</b> {escape(rest)}" if rest
                else f"<b>{escape(text)}</b>")
        beacon = self.beacon
        with beacon.hold_sync():
            beacon.line, beacon.tone, beacon.target = line, tone, target
            beacon.button = _BUTTONS.get(tone, "Show")


_STATE: dict[str, Any] = {"beacon": None, "app": None, "watch": None}
LONG_S = 60.0  # a step the plan estimates this long (system seconds) or more is "long"
_SOAK = "soak"  # the progress label of the soak (the simulator's and the host's wait)


def _duration(seconds: float) -> str:
    """``40 s``, ``14 min``, ``2.5 h`` (system time, simulated for ``sim://``)."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _estimate_s(session: Session, step: str) -> float:
    """The plan's estimate of request STEP, in seconds, as the system stands (0 when it
    has none); read-only."""
    from ftkit.flow import REQUESTS
    from ftkit.process import plan_facts

    try:
        st = session.system()
        facts = {**plan_facts(st, session.config, session.packages), "merged": st.merged}
        return 60.0 * sum(float(e.minutes) for e in REQUESTS[Request(step)].estimates(facts))
    except Exception:  # a step the table does not estimate: no percentage, only its parts
        return 0.0


def progressed(label: str, done: float, total: float) -> None:
    """A long step's progress (:class:`ftkit_widgets.progress.Progress`, live runs): the
    sticky line shows it. Does nothing before the line exists or where nobody can click."""
    watch: _Watch | None = _STATE["watch"]
    if watch is None:
        return
    try:
        watch.progressed(label, done, total)
    except Exception:  # the page is a help: never let it stop the upgrade
        log.exception("attention: could not show the progress")


def kept(widget: Any) -> None:
    """Hand the page WIDGET's current rendering for a stopped kernel
    (:meth:`ftkit_widgets.views.LiveHTML.orphan_html`): should this kernel stop while the
    widget is live (a restart, a kernel that died), a save of the notebook keeps that HTML
    in the widget's place, and the notebook reopens without "model not found" (JupyterLab
    keeps no widget state once the kernel is gone). Sent only when it changed. Does
    nothing where nobody can click; never raises."""
    try:
        if not _frontend():
            return
        beacon = _beacon()
        html = widget.orphan_html()
        if beacon.statics.get(widget.model_id) != html:
            beacon.statics = {**beacon.statics, widget.model_id: html}
    except Exception:  # the page is a help: never let it stop the upgrade
        log.exception("attention: could not keep a static rendering")


def _beacon() -> Any:
    if _STATE["beacon"] is None:
        import anywidget
        import traitlets as t

        class Beacon(anywidget.AnyWidget):  # type: ignore[misc]
            """The sticky line's model (never displayed)."""

            _esm = _ESM
            line = t.Unicode("").tag(sync=True)
            tone = t.Unicode("").tag(sync=True)
            target = t.Unicode("").tag(sync=True)
            button = t.Unicode("").tag(sync=True)
            focus = t.Unicode("").tag(sync=True)
            anchor = t.Unicode("").tag(sync=True)  # the last panel led to: the line's notebook
            token = t.Unicode(_TOKEN).tag(sync=True)  # this kernel's panels' class names
            lead = t.Int(0).tag(sync=True)
            # widget model id -> its static rendering, what the page saves in its place
            # should this kernel stop (kept())
            statics = t.Dict().tag(sync=True)

        _STATE["beacon"] = Beacon()
    return _STATE["beacon"]


_SHOW = f"ftkit:show-attention-{_TOKEN}"  # the notification's "Show" runs it
# JupyterLab's command that dismisses a notification, every one when given no id (ipylab
# sends commands without waiting for an answer, so the notification's id is not known)
_DISMISS = "apputils:dismiss-notification"


def _show_again(**_: Any) -> None:
    """Lead to what the sticky line points at once more (the notification's Show)."""
    watch: _Watch | None = _STATE["watch"]
    if watch is not None:
        watch.beacon.lead += 1


def _app() -> Any:
    if _STATE["app"] is None:
        from ipylab import JupyterFrontEnd

        app = JupyterFrontEnd()
        app.commands.add_command(_SHOW, _show_again, label="Show what the runbook waits for")
        _STATE["app"] = app
    return _STATE["app"]


def _watch(session: Session) -> _Watch:
    watch: _Watch | None = _STATE["watch"]
    if watch is None or watch.session is not session:
        if watch is not None and watch.unsubscribe is not None:
            watch.unsubscribe()
        watch = _Watch(session=session, beacon=_beacon())
        watch.unsubscribe = session.subscribe(watch.heard)
        _STATE["watch"] = watch
        if not _voila():
            _app()  # created early, so that a later notification finds it ready
    return watch


def _mark(widget: Any, role: str) -> tuple[str, str]:
    """Give WIDGET (and its Reason field) CSS classes the front end finds it by."""
    name = f"ftkit-attention-{role}-{_TOKEN}-{next(_serial)}"
    widget.add_class(name)
    widget._ftkit_mark = name  # what clicked() leads to: the output inside it
    output = getattr(widget, "output", None)
    if output is not None and hasattr(output, "add_class"):
        output.add_class(f"{name}-output")
    reason = getattr(widget, "reason", None)
    hint = ""
    if reason is not None and hasattr(reason, "add_class"):
        hint = f"{name}-reason"
        reason.add_class(hint)
    return name, hint


def _lead(watch: _Watch, target: str, hint: str) -> None:
    watch.target = target
    with watch.beacon.hold_sync():
        watch.show()
        watch.beacon.focus = hint
        if not target.startswith("@"):
            watch.beacon.anchor = target
        watch.beacon.lead += 1


@contextmanager
def clicked(panel: Any) -> Iterator[None]:
    """A click in PANEL runs steps (on the session's thread, inside this block): a long
    step it starts (:data:`LONG_S` or more by the plan's estimate) brings the view on its
    own to PANEL's output, where the step's progress shows, and the sticky line's button
    leads there while it runs. Does nothing for a panel never led to, or where nobody can
    click; never raises."""
    watch: _Watch | None = _STATE["watch"]
    mark = getattr(panel, "_ftkit_mark", "")
    if watch is None or not mark:
        yield
        return
    before, watch.clicked = watch.clicked, f"{mark}-output"
    try:
        yield
    finally:
        watch.clicked = before


def lead_to(session: Session, panel: Any, decision: str) -> None:
    """A decision panel was just displayed: scroll it into view, focus its first empty
    field, and say on the sticky line that the runbook waits for DECISION. Does nothing
    where nobody can click."""
    try:
        if not _frontend():
            return
        watch = _watch(session)
        watch.waiting, watch.panel = decision, panel
        _lead(watch, *_mark(panel, "decision"))
    except Exception:  # the page is a help: never let it stop the upgrade
        log.exception("attention: could not lead to the %s panel", decision)


def lead_to_panel(panel: Any, waiting: str) -> None:
    """A panel that is no session's (the campaign's approval panel) was just displayed:
    scroll it into view, focus its first empty field, and say on the sticky line that the
    runbook is waiting for WAITING. Does nothing where nobody can click; never raises."""
    try:
        if not _frontend():
            return
        target, hint = _mark(panel, "decision")
        beacon = _beacon()
        with beacon.hold_sync():
            _line(beacon, "wait", f"Waiting for: {waiting}", target)
            beacon.focus, beacon.anchor = hint, target
            beacon.lead += 1
    except Exception:  # the page is a help: never let it stop the run
        log.exception("attention: could not lead to a panel")


def say_on_line(text: str, *, tone: str = "run") -> None:
    """The sticky line says TEXT (``Head: the rest``), its button leading to the running
    cell (a runbook that is no session's: the campaign). Does nothing where nobody can
    click, or where no line was shown; never raises."""
    try:
        if not _frontend() or _STATE["beacon"] is None:
            return
        beacon = _beacon()
        with beacon.hold_sync():
            _line(beacon, tone, text, "@running" if tone == "run" else "@last")
    except Exception:  # the page is a help: never let it stop the run
        log.exception("attention: could not update the sticky line")


def _line(beacon: Any, tone: str, text: str, target: str) -> None:
    from html import escape

    head, _, rest = text.partition(": ")
    beacon.line = (f"<b>{escape(head)}:</b> {escape(rest)}" if rest
                   else f"<b>{escape(text)}</b>")
    beacon.tone, beacon.target = tone, target
    beacon.button = _BUTTONS.get(tone, "Show")


def _notice(session: Session, error: BaseException) -> str:
    """The notification's text: where the upgrade stands, why, and the way on; at most
    140 characters (what a JupyterLab toast shows); registered secrets and this machine's
    paths masked."""
    from ftkit.redact import mask_paths, scrub

    broken = session.broken
    what = mask_paths(scrub(getattr(error, "message", None) or str(error))).rstrip(". ")
    head = f"Broken at {broken[0]}: " if broken else "The upgrade stopped: "
    tail = " Retry or Abort in the runbook." if broken else " See the runbook."
    room = 140 - len(head) - len(tail)
    what = what[:room - 1] + "…" if len(what) + 1 > room else what + "."
    return head + what + tail


def alert(session: Session, error: BaseException, panel: Any = None) -> None:
    """A step failed: raise a JupyterLab notification, scroll the Broken panel (PANEL,
    the Retry/Abort buttons; else the failing cell) into view and say on the sticky line
    what is needed. Does nothing where nobody can click."""
    try:
        if not _frontend():
            return
        watch = _watch(session)
        watch.running = None
        target, hint = _mark(panel, "broken") if panel is not None else ("@here", "")
        _lead(watch, target, hint)
        if _voila():
            return  # no JupyterLab shell to notify in: the line and the panel say it
        watch.notified = True
        _app().commands.execute("apputils:notify", {
            "message": _notice(session, error),
            "type": "error",
            "options": {"autoClose": False, "actions": [
                {"label": "Show", "commandId": _SHOW, "caption": "scroll to Retry and Abort",
                 "displayType": "accent"}]},
        })
    except Exception:  # the page is a help: never let it stop the upgrade
        log.exception("attention: could not raise the failure")
