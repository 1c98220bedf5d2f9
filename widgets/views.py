"""Live views of a session: status bar, system picture, activity log, readiness table.

Each view is an ipywidgets container around HTML from :mod:`ftkit_widgets.render`; it
refreshes on every entry the session hears (``session.subscribe``, the one observer
channel). ``html()`` gives the current rendering as a string, which is
also offered as the ``text/html`` fallback of the widget (shown where widgets cannot be).

A saved notebook keeps widget views only as references to models that live in the
kernel: reopened without them, JupyterLab shows "Error displaying widget: model not
found" and does not fall back to the ``text/html`` beside the view (the widget renderer
wins on rank and does not hand over). So :func:`show` displays a live widget under a
display id, and :meth:`LiveHTML.finish` replaces that display by the widget's static
rendering once nothing will change (an ended session, a finished bar, a decided panel
when the run ends): what the saved notebook keeps. Nothing is sent in between: an
updated display re-creates the widget's view in JupyterLab (a field being typed in
would lose its focus). A kernel that stops before that (a restart, a kernel that died)
cannot replace anything: so each live display also hands the page its current static
rendering (:meth:`LiveHTML.keep`, :func:`ftkit_widgets.attention.kept`), which the page
saves in its place once the kernel is gone; a notebook saved while its kernel runs keeps
the widgets' state (``make install`` sets JupyterLab's ``saveState``,
:mod:`ftkit_widgets.labsettings`).
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Sequence
from typing import Any

import ipywidgets as w
from IPython.display import display

from ftkit.drivers import Driver
from ftkit.errors import FtkitError
from ftkit.journal import Entry
from ftkit.process import Session

from .render import (
    GREEN,
    RED,
    YELLOW,
    clock,
    esc,
    mask_paths,
    note_html,
    status_html,
    system_html,
    table_html,
)

__all__ = ["ActivityLog", "Bar", "LiveHTML", "ReadinessTable", "StatusBar", "SystemView",
           "readiness_table", "show"]

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# what a panel whose kernel stopped says, in a saved notebook too (ftkit_widgets.attention
# says the same on the live page)
_STOPPED = ("<div class='ftkit-dead-note' style='margin:4px 0;padding:6px 10px;"
            "border-left:4px solid #c62828;background:#fdecea;color:#b71c1c'>This panel's "
            "kernel stopped — Run All to resume where the journal stands.</div>")


class LiveHTML:
    """A widget that also carries a static ``text/html`` rendering of itself (``html()``),
    which its display (:func:`show`) becomes once :meth:`finish` ran."""

    display_id: str | None = None
    finished: bool = False

    def html(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def static_bundle(self) -> dict[str, Any]:
        """The display as a reopened notebook shows it: ``text/html`` and ``text/plain``."""
        return {"text/html": f"<div class='ftkit-static'>{self.html()}</div>",
                "text/plain": type(self).__name__}

    #: a panel a person clicks in: what the page keeps of it, should its kernel stop while it
    #: is still live, says so (see :meth:`orphan_html`)
    asks: bool = False

    def orphan_html(self) -> str:
        """What the page saves in this display's place should its kernel stop before
        :meth:`finish` (a restart, a kernel that died): the static rendering, headed, for a
        panel not yet settled, by the line saying its kernel stopped. Read-only."""
        html = self.static_bundle()["text/html"]
        return _STOPPED + html if self.asks and not self.settled else html

    def _clicked(self, run: Any) -> None:
        """Run a click's work RUN, a long step it starts brought into view
        (:func:`ftkit_widgets.attention.clicked`)."""
        from .attention import clicked

        with clicked(self):
            run()

    def keep(self) -> None:
        """Hand the page this display's current :meth:`orphan_html` (live JupyterLab runs
        only; see :func:`ftkit_widgets.attention.kept`)."""
        from .attention import kept

        kept(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = w.Widget._repr_mimebundle_(self, **kwargs) or {}  # type: ignore[arg-type]
        if self.finished:
            bundle.pop(_WIDGET_VIEW, None)
        bundle.update(self.static_bundle())
        return bundle

    @property
    def settled(self) -> bool:
        """Nothing more to click or to follow here (:func:`finish_settled` finishes it)."""
        return False

    def finish(self) -> None:
        """Nothing will change any more: the display becomes its static rendering (what a
        saved notebook keeps, readable without the kernel)."""
        if self.finished:
            return
        self.finished = True
        if self.display_id is not None:
            _update(self.static_bundle(), self.display_id)


def _update(bundle: dict[str, Any], display_id: str) -> None:
    from IPython.display import update_display

    update_display(bundle, raw=True, display_id=display_id)


_SHOWN: list[weakref.ref[LiveHTML]] = []


def show(widget: LiveHTML) -> None:
    """Display WIDGET live, with its static rendering in the same display, kept current
    (see :class:`LiveHTML`)."""
    widget.display_id = f"ftkit-{uuid.uuid4().hex}"
    _SHOWN[:] = [r for r in _SHOWN if r() is not None and not r().finished]  # type: ignore[union-attr]
    _SHOWN.append(weakref.ref(widget))
    display(widget, display_id=widget.display_id)
    widget.keep()


def finish_settled(session: Session) -> None:
    """The run ends here (the result cell): every widget shown for SESSION that is settled
    (a decided panel, an answered failure) becomes its static rendering; what still waits
    for a click stays live."""
    for ref in list(_SHOWN):
        widget = ref()
        if widget is not None and widget.settled and session in (
                getattr(widget, "session", None), getattr(widget, "source", None)):
            widget.finish()


class Bar(LiveHTML, w.HBox):
    """One progress bar of a long step (``n`` of ``total`` simulated seconds), with the
    tqdm calls :class:`~ftkit_widgets.progress.Progress` makes (``refresh``, ``close``)
    and ``fail()``: red, "failed", never a green 100 %. Once closed its display is a
    static line (what a saved notebook keeps)."""

    def __init__(self, label: str, total: float) -> None:
        self.label, self.total, self.n = label, float(total), 0.0
        self.state = "running"
        self.bar = w.FloatProgress(min=0.0, max=max(self.total, 1e-9), value=0.0,
                                   layout={"width": "240px"})
        self.text = w.HTML()
        super().__init__(children=[w.HTML(f"{esc(label)}:"), self.bar, self.text],
                         layout={"align_items": "center", "gap": "8px"})
        self.refresh()

    def refresh(self) -> None:
        self.bar.max = max(self.total, 1e-9)
        self.bar.value = min(self.n, self.total)
        self.text.value = (f"{self.n / max(self.total, 1e-9) * 100:.0f}% · "
                           f"{self.n:.0f}/{self.total:.0f} s simulated")
        if self.display_id is not None:
            self.keep()

    def html(self) -> str:
        said, colour = {"failed": ("failed", RED),
                        "done": (f"done ({self.total:.0f} s simulated)", GREEN)}.get(
            self.state, (self.text.value, YELLOW))
        return f"<div style='color:{colour}'>{esc(self.label)}: {esc(said)}</div>"

    def close(self) -> None:
        """Ended: done if it reached its total, else failed (a step that broke)."""
        if self.state == "running":
            self.state = "done" if self.n >= self.total * (1 - 1e-6) else "failed"
            self.bar.bar_style = "success" if self.state == "done" else "danger"
        self.finish()

    def fail(self) -> None:
        """The step failed (also after its bar ran to its end): red, and said so."""
        self.state = "failed"
        self.bar.bar_style = "danger"
        self.text.value = "failed"
        if self.display_id is not None:
            _update(self.static_bundle(), self.display_id)
        self.finished = True


class _HTMLView(LiveHTML, w.VBox):
    """A VBox holding one HTML widget that ``refresh()`` re-renders."""

    def __init__(self) -> None:
        self._html = w.HTML()
        super().__init__(children=[self._html])

    def render(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def html(self) -> str:
        """The current rendering (also what the widget shows)."""
        return self._html.value

    def refresh(self, *_: Any) -> None:
        """Render again from the system and the journal; errors show in the widget."""
        try:
            self._html.value = self.render()
        except FtkitError as err:
            self._html.value = note_html(str(err), colour=RED, title="cannot read the system")
        if self.display_id is not None:
            self.keep()
        if self.settled:
            self.finish()  # the session ended: nothing more to show live

    @property
    def settled(self) -> bool:
        session = getattr(self, "session", getattr(self, "source", None))
        return isinstance(session, Session) and session.done


class StatusBar(_HTMLView):
    """Upgrade state, operational state (Broken: step and reason, in red), partner state
    and which side runs the applications; refreshes on every session change."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.refresh()
        session.subscribe(self.refresh)

    def render(self) -> str:
        return status_html(self.session)


class SystemView(_HTMLView):
    """A picture of the two enclosures, their modules, RDR mirrors, network teams and data
    disks, and where the applications run. Give a session (refreshes on its changes) or
    a driver (call ``refresh()``)."""

    def __init__(self, source: Session | Driver) -> None:
        super().__init__()
        self.source = source
        self.refresh()
        if isinstance(source, Session):
            source.subscribe(self.refresh)

    def render(self) -> str:
        return system_html(self.source)


_KIND_COLOURS = {"error": RED, "warning": YELLOW, "decision": "#1565c0", "outcome": GREEN}
LOG_COLUMNS = ("time", "sim time", "side", "kind", "step", "message")


def _when(ts: str) -> str:
    """An entry's time as a person reads it: date, time and the UTC offset."""
    return f"{ts[:10]} {ts[11:19]} UTC" if ts.endswith("Z") and len(ts) >= 19 else ts


def _log_row(entry: Entry) -> dict[str, str]:
    failed = entry.kind == "outcome" and entry.ok is False
    return {
        "time": _when(entry.ts),
        "sim time": "" if entry.sim_time is None else clock(entry.sim_time),
        "side": "remote (Upgrade side)" if entry.remote else "local",
        "kind": "error" if failed else entry.kind,
        "step": entry.step,
        "message": mask_paths(entry.message),
    }


class ActivityLog(_HTMLView):
    """The journal's entries of the session (time, local/remote side, kind, step,
    message), newest last; grows live through ``session.subscribe``.

    ``limit`` keeps the last entries only. ``close()`` unsubscribes.
    """

    def __init__(self, session: Session, *, limit: int = 200) -> None:
        super().__init__()
        self.session = session
        self.limit = limit
        self._rows: list[dict[str, str]] = []
        self._session_id = session.record.id if session.record else None
        self._rows = [_log_row(e) for e in session.entries()]
        self.refresh()
        self._unsubscribe = session.subscribe(self._append)

    def _append(self, entry: Entry) -> None:
        if self._session_id is None and self.session.record is not None:
            self._session_id = self.session.record.id
        if entry.session_id is not None and entry.session_id != self._session_id:
            return
        self._rows.append(_log_row(entry))
        self.refresh()

    @property
    def rows(self) -> list[dict[str, str]]:
        """The rows shown (a copy)."""
        return list(self._rows[-self.limit:])

    def render(self) -> str:
        if not self._rows:
            return note_html("no activity yet in this session")
        return table_html(self._rows[-self.limit:], LOG_COLUMNS, colours=_KIND_COLOURS,
                          colour_key="kind")

    def close(self) -> None:
        self._unsubscribe()
        super().close()


_STATUS_COLOURS = {"pass": GREEN, "warn": YELLOW, "fail": RED}
_READINESS_COLUMNS = ("check", "title", "status", "detail", "remedy")


class ReadinessTable:
    """The readiness check as an HTML table (``_repr_html_``, ``to_html()``): one row per
    check tinted by its status, the counts in its caption. Plain HTML, so showing it
    loads no pandas and the report stays small."""

    def __init__(self, rows: Sequence[dict[str, str]]) -> None:
        self.rows = list(rows)

    @property
    def caption(self) -> str:
        """``Readiness check: 12 pass, 2 warn, 0 fail``."""
        counts = {s: sum(1 for r in self.rows if r["status"] == s) for s in _STATUS_COLOURS}
        return "Readiness check: " + ", ".join(f"{counts[s]} {s}"
                                               for s in ("pass", "warn", "fail"))

    def __repr__(self) -> str:
        return self.caption

    def to_html(self) -> str:
        """The table as an HTML fragment."""
        table = table_html(self.rows, _READINESS_COLUMNS, colours=_STATUS_COLOURS,
                           colour_key="status", wrap=("title", "detail", "remedy"))
        head = (f"<caption style='text-align:left;font-weight:600;padding:2px 8px'>"
                f"{esc(self.caption)}</caption>")
        return table.replace("<thead>", head + "<thead>", 1)

    def _repr_html_(self) -> str:
        return self.to_html()


def readiness_table(results: Any) -> ReadinessTable:
    """The readiness check with pass/warn/fail colours and remedies, ready to display.

    RESULTS is a list of :class:`~ftkit.checks.CheckResult` or the DataFrame of
    :func:`ftkit.checks.readiness` (columns check, title, status, detail, remedy; read
    through ``to_dict``, so pandas is not imported here). Read-only.
    """
    if hasattr(results, "to_dict") and hasattr(results, "columns"):
        records = results.to_dict("records")
    else:
        records = [{"check": r.check, "title": r.title, "status": str(r.status),
                    "detail": r.detail, "remedy": r.remedy} for r in _sequence(results)]
    rows = [{c: "" if r.get(c) is None else str(r.get(c)) for c in _READINESS_COLUMNS}
            for r in records]
    return ReadinessTable(rows)


def _sequence(results: Any) -> Sequence[Any]:
    return list(results)
