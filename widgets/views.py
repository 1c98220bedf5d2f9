"""Live views of a session: status bar, system picture, activity log, readiness table.

Each view is an ipywidgets container around HTML from :mod:`ftkit_widgets.render`; it
refreshes on every entry the session hears (``session.subscribe``, the one observer
channel). ``html()`` gives the current rendering as a string, which is
also offered as the ``text/html`` fallback of the widget (shown where widgets cannot be).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as w

from ftkit.drivers import Driver
from ftkit.errors import FtkitError
from ftkit.journal import Entry
from ftkit.process import Session

from .render import GREEN, RED, YELLOW, esc, note_html, status_html, system_html, table_html

__all__ = ["ActivityLog", "StatusBar", "SystemView", "readiness_table"]


class _HTMLView(w.VBox):
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

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        bundle["text/html"] = self.html()
        return bundle


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


def _log_row(entry: Entry) -> dict[str, str]:
    failed = entry.kind == "outcome" and entry.ok is False
    return {
        "time": entry.ts[11:19] if len(entry.ts) > 19 else entry.ts,
        "sim time": "" if entry.sim_time is None else f"{entry.sim_time / 60:.1f} min",
        "side": "remote (Upgrade side)" if entry.remote else "local",
        "kind": "error" if failed else entry.kind,
        "step": entry.step,
        "message": entry.message,
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


def readiness_table(results: Any) -> Any:
    """The readiness check with pass/warn/fail colours and remedies, ready to display.

    RESULTS is the DataFrame of :func:`ftkit.checks.readiness` (columns check, title,
    status, detail, remedy) or a list of :class:`~ftkit.checks.CheckResult`. Returns a
    pandas Styler (it renders as HTML in the notebook and the report).
    """
    import pandas as pd

    if isinstance(results, pd.DataFrame):
        frame = results
    else:
        frame = pd.DataFrame([{"check": r.check, "title": r.title, "status": str(r.status),
                               "detail": r.detail, "remedy": r.remedy}
                              for r in _sequence(results)],
                             columns=["check", "title", "status", "detail", "remedy"])
    counts = frame["status"].value_counts().to_dict() if len(frame) else {}
    caption = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("pass", "warn", "fail"))

    def colour(row: pd.Series) -> list[str]:
        tint = _STATUS_COLOURS.get(str(row["status"]), "")
        bg = {GREEN: "#e8f5e9", YELLOW: "#fff8e1", RED: "#ffebee"}.get(tint, "")
        return [f"background-color: {bg}; color: {tint}" if tint else "" for _ in row]

    return (frame.style.apply(colour, axis=1)
            .set_caption(f"Readiness check: {esc(caption)}")
            .set_properties(**{"text-align": "left", "white-space": "pre-wrap"})
            .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
            .hide(axis="index"))


def _sequence(results: Any) -> Sequence[Any]:
    return list(results)
