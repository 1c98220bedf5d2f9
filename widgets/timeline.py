"""The session's timeline: upgrade phases and application availability, with outages."""

from __future__ import annotations

from typing import Any

from ftkit.errors import FtkitError
from ftkit.process import Session

__all__ = ["phases", "timeline"]

_PHASE_COLOURS = {
    "Idle": "#bdbdbd",
    "PrepareSplit": "#90caf9",
    "Split": "#42a5f5",
    "PrepareMerge": "#ffcc80",
    "Merge": "#ffa726",
    "Commit": "#66bb6a",
    "Abort": "#ef5350",
}


def phases(session: Session) -> list[tuple[str, float, float]]:
    """``(upgrade state, start, end)`` in simulated seconds, from the journal's state
    entries (read-only)."""
    if session.record is None:
        return []
    entries = [e for e in session.journal.entries(session.record.id, kinds=["state"])
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
        ends = [e.sim_time for e in session.journal.entries(session.record.id, kinds=["info"])
                if e.sim_time is not None and isinstance(e.detail, dict)
                and "outcome" in e.detail]
        if ends:
            return float(ends[-1])
    return float(session.driver.status().now)


def timeline(session: Session, *, show: bool = True) -> Any:
    """A matplotlib Figure of the session: phases as a band, applications available
    (green) and every outage (red, with its measured seconds).

    With ``show`` the figure is displayed once, as SVG (text kept as text: smaller than a
    PNG of the same legibility, and sharp at any zoom); the Figure is returned either
    way. Drawn without pyplot or a GUI backend (a Figure and the SVG/Agg canvases only),
    so a kernel does not pay for loading them.
    """
    from matplotlib.figure import Figure

    if session.record is None:
        raise FtkitError("no session to draw", "run the upgrade first")
    t0, t1 = _start(session), _end(session)
    span = max(t1 - t0, 1.0)

    def m(t: float) -> float:
        return (t - t0) / 60.0

    fig = Figure(figsize=(10, 3.0), layout="constrained")
    ax = fig.subplots()
    seen: dict[str, str] = {}
    for state, start, end in phases(session):
        colour = seen.setdefault(state, _PHASE_COLOURS.get(state, "#9e9e9e"))
        width = max(m(end) - m(start), span / 60 / 400)
        ax.broken_barh([(m(start), width)], (1.6, 0.8), facecolors=colour, edgecolor="white")
        if width > span / 60 / 25:
            ax.text(m(start) + width / 2, 2.0, state, ha="center", va="center", fontsize=8)
    ax.broken_barh([(0, m(t1))], (0.2, 0.8), facecolors="#a5d6a7")
    total = 0.0
    for outage in session.outages():
        end = outage.end if outage.end is not None else t1
        seconds = end - outage.start
        total += seconds
        width = max(m(end) - m(outage.start), span / 60 / 200)  # visible however short
        ax.broken_barh([(m(outage.start), width)], (0.2, 0.8), facecolors="#c62828")
        label = (f"outage {seconds:.0f} s" if outage.end is not None
                 else f"outage ongoing ({seconds:.0f} s so far)")
        ax.annotate(label, xy=(m(outage.start) + width / 2, 1.0),
                    xytext=(m(outage.start) + width / 2, 1.35), ha="center", fontsize=8,
                    color="#c62828", arrowprops={"arrowstyle": "-", "color": "#c62828"})
    ax.set_yticks([0.6, 2.0], ["applications", "upgrade state"])
    ax.set_ylim(0, 2.6)
    ax.set_xlim(0, m(t1) * 1.01 + 0.1)
    ax.set_xlabel("simulated minutes since the session started")
    outcome = session.record.outcome or session.upgrade_state.value
    ax.set_title(f"{session.target} — session {session.record.id}: {outcome}, "
                 f"total outage {total:.0f} s", fontsize=10)
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=c, label=s) for s, c in seen.items()]
    handles += [Patch(facecolor="#a5d6a7", label="applications serving"),
                Patch(facecolor="#c62828", label="outage")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.32),
              ncol=len(handles), fontsize=8, frameon=False)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if show:
        from IPython.display import SVG, display

        display(SVG(figure_svg(fig)))
    return fig


def figure_svg(fig: Any) -> str:
    """FIG as a compact SVG document: text as text (not paths), no date, no clip ids
    that change per run, so the same figure gives the same bytes."""
    import io

    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "ftkit",
                                "svg.id": "timeline"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()
