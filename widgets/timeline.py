"""The session's timeline: upgrade phases and application availability, with outages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ftkit.errors import FtkitError
from ftkit.model import UpgradeState
from ftkit.process import Session

from .render import esc

__all__ = ["Timeline", "phases", "timeline"]

_PHASE_COLOURS = {
    UpgradeState.IDLE: "#bdbdbd",
    UpgradeState.PREPARE_SPLIT: "#90caf9",
    UpgradeState.SPLIT: "#42a5f5",
    UpgradeState.PREPARE_MERGE: "#ffcc80",
    UpgradeState.MERGE: "#ffa726",
    UpgradeState.COMMIT: "#66bb6a",
    UpgradeState.ABORT: "#ef5350",
}


def phases(session: Session) -> list[tuple[str, float, float]]:
    """``(upgrade state, start, end)`` in simulated seconds, from the journal's state
    entries (read-only)."""
    if session.record is None:
        return []
    entries = [e for e in session.entries(kinds=["state"])
               if e.sim_time is not None and isinstance(e.detail, dict)]
    end = _end(session)
    out: list[tuple[str, float, float]] = []
    for entry in entries:
        state = str(entry.detail.get("upgrade_state", ""))
        t = float(entry.sim_time or 0.0)
        if out and out[-1][0] == state:
            continue
        if out:
            out[-1] = (out[-1][0], out[-1][1], t)
        out.append((state, t, end))
    return [p for p in out if p[2] > p[1]]


def _start(session: Session) -> float:
    data = session.record.data if session.record else {}
    return float(data.get("sim_start", 0.0))


def _end(session: Session) -> float:
    if session.record is not None and session.done:
        ends = [e.sim_time for e in session.entries(kinds=["info"])
                if e.sim_time is not None and isinstance(e.detail, dict)
                and "outcome" in e.detail]
        if ends:
            return float(ends[-1])
    return session.now()


@dataclass(frozen=True)
class Timeline:
    """The session's timeline as data and as SVG: phases as a band, applications
    available (green) and every outage (red, with its measured seconds). Displays as SVG
    (``_repr_svg_``); times are simulated minutes since the session started."""

    title: str
    phases: list[tuple[str, float, float]]  # upgrade state, start, end
    outages: list[tuple[float, float, str]]  # start, end, label
    end: float
    svg: str = field(repr=False)

    @property
    def labels(self) -> list[str]:
        """Every text the figure shows (phase names it has room for, outage labels)."""
        return re.findall(r">([^<>]+)</text>", self.svg)

    def _repr_svg_(self) -> str:
        return self.svg


def timeline(session: Session, *, show: bool = True) -> Timeline:
    """The session's :class:`Timeline`; with ``show`` it is displayed (SVG) once.

    Drawn as plain SVG, text kept as text: a few KB in the report, sharp at any zoom, and
    no plotting library to load in the kernel (matplotlib's import alone cost a run
    about 0.8 s of CPU). Read-only.
    """
    if session.record is None:
        raise FtkitError("no session to draw", "run the upgrade first")
    t0, t1 = _start(session), _end(session)

    def m(t: float) -> float:
        return (t - t0) / 60.0

    bands = [(state, m(start), m(end)) for state, start, end in phases(session)]
    total = 0.0
    outages: list[tuple[float, float, str]] = []
    for outage in session.outages():
        end = outage.end if outage.end is not None else t1
        seconds = end - outage.start
        total += seconds
        label = (f"outage {seconds:.0f} s" if outage.end is not None
                 else f"outage ongoing ({seconds:.0f} s so far)")
        outages.append((m(outage.start), m(end), label))
    outcome = session.record.outcome or session.upgrade_state.value
    title = (f"{session.target} — session {session.record.id}: {outcome}, "
             f"total outage {total:.0f} s")
    figure = Timeline(title=title, phases=bands, outages=outages, end=m(t1),
                      svg=_svg(title, bands, outages, m(t1)))
    if show:
        from IPython.display import display

        display({"image/svg+xml": figure.svg, "text/plain": title}, raw=True)
    return figure


_W, _LEFT, _RIGHT = 900, 120, 20  # width, plot's left and right margins (px)
_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 360, 720, 1440)


def _svg(title: str, bands: list[tuple[str, float, float]],
         outages: list[tuple[float, float, str]], end: float) -> str:
    """The timeline as an SVG document (deterministic: same data, same bytes)."""
    span = max(end * 1.01, 0.1)
    width = _W - _LEFT - _RIGHT

    def x(minutes: float) -> float:
        return round(_LEFT + minutes / span * width, 1)

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {_W} 215' "
           f"width='{_W}' height='215' font-family='sans-serif' font-size='11'>",
           f"<text x='{_W / 2}' y='16' text-anchor='middle' font-size='13'>{esc(title)}</text>",
           f"<text x='{_LEFT - 8}' y='55' text-anchor='end'>upgrade state</text>",
           f"<text x='{_LEFT - 8}' y='120' text-anchor='end'>applications</text>"]
    seen: dict[str, str] = {}
    for state, start, stop in bands:
        colour = seen.setdefault(state, _PHASE_COLOURS.get(state, "#9e9e9e"))
        left, right = x(start), max(x(stop), x(start) + 1)
        out.append(f"<rect x='{left}' y='36' width='{right - left:.1f}' height='30' "
                   f"fill='{colour}' stroke='white'/>")
        if right - left > 8 * len(state) * 0.75:
            out.append(f"<text x='{(left + right) / 2:.1f}' y='55' text-anchor='middle'>"
                       f"{esc(state)}</text>")
    out.append(f"<rect x='{x(0)}' y='102' width='{x(end) - x(0):.1f}' height='30' "
               "fill='#a5d6a7'/>")
    for start, stop, label in outages:
        left, right = x(start), max(x(stop), x(start) + 2)  # visible however short
        middle = (left + right) / 2
        out.append(f"<rect x='{left}' y='102' width='{right - left:.1f}' height='30' "
                   f"fill='#c62828'/><line x1='{middle:.1f}' y1='90' x2='{middle:.1f}' "
                   f"y2='102' stroke='#c62828'/><text x='{middle:.1f}' y='86' "
                   f"text-anchor='middle' fill='#c62828'>{esc(label)}</text>")
    step = next((s for s in _STEPS if span / s <= 10), _STEPS[-1])
    out.append(f"<line x1='{_LEFT}' y1='140' x2='{_W - _RIGHT}' y2='140' stroke='#757575'/>")
    tick = 0
    while tick <= span:
        out.append(f"<line x1='{x(tick)}' y1='140' x2='{x(tick)}' y2='144' "
                   f"stroke='#757575'/><text x='{x(tick)}' y='156' "
                   f"text-anchor='middle'>{tick:g}</text>")
        tick += step
    out.append(f"<text x='{_LEFT + width / 2:.0f}' y='174' text-anchor='middle'>"
               "simulated minutes since the session started</text>")
    legend = [*seen.items(), ("applications serving", "#a5d6a7"), ("outage", "#c62828")]
    left = _LEFT
    for name, colour in legend:
        out.append(f"<rect x='{left}' y='192' width='12' height='12' fill='{colour}'/>"
                   f"<text x='{left + 16}' y='202'>{esc(name)}</text>")
        left += 16 + 7 * len(name) + 18
    out.append("</svg>")
    return "".join(out)
