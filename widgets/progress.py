"""Progress bars for long steps (installers, reboots, RDR resync), in simulated seconds."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Progress", "progress_bar"]


class Progress:
    """A ``progress(label, done, total)`` callback for :func:`ftkit.process.open_session`.

    One bar per label, closed once ``done`` reaches ``total``; a label that comes back
    later (a second reboot) gets a new bar. ``live=True`` uses ``tqdm.auto`` (a widget
    in JupyterLab, text in a terminal); ``live=False`` prints one line per finished step
    (headless runs: the archived report stays readable).
    """

    def __init__(self, *, live: bool = True) -> None:
        self.live = live
        self.bars: dict[str, Any] = {}
        self.finished: list[str] = []
        self.failed: list[str] = []
        self._last: tuple[str, Any] | None = None  # the bar closed last (label, bar)

    def _new(self, label: str, total: float) -> Any:
        if _in_kernel():
            return _bar(label, total)
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=" ".join(label.split()), leave=True,
                    bar_format="{desc}: {percentage:.0f}%|{bar}| {n:.0f}/{total:.0f} s simulated")

    def __call__(self, label: str, done: float, total: float) -> None:
        total = max(float(total), 1e-9)
        complete = done >= total * (1 - 1e-6)
        label = " ".join(label.split())
        if not self.live:
            # one line per finished part, readable in an archived report: its time, not
            # "done" — whether it succeeded is said after it (the step's outcome, or
            # "failed" from fail())
            if complete:
                print(f"{label}: {total:.0f} s simulated", file=sys.stdout, flush=True)
                self.finished.append(label)
                self._last = (label, None)
            return
        from .attention import progressed

        progressed(label, done, total)  # the sticky line says it too, in sight
        bar = self.bars.get(label)
        if bar is None:
            bar = self.bars[label] = self._new(label, total)
        if bar.total != total:
            bar.total = total
        bar.n = total if complete else min(float(done), total)
        bar.refresh()
        if complete:
            bar.close()
            del self.bars[label]
            self.finished.append(label)
            self._last = (label, bar)

    def close(self) -> None:
        """Close every bar still open (a step that failed half way)."""
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()

    def fail(self) -> None:
        """The step failed: its bars (those still open, else the one that just ran to its
        end before the step failed) turn red and say "failed", never green at 100%."""
        failing = list(self.bars.items()) or ([self._last] if self._last else [])
        for label, bar in failing:
            self.failed.append(label)
            if bar is None:
                print(f"{label}: failed", file=sys.stdout, flush=True)
                continue
            _mark_failed(bar, label)
        self.bars.clear()
        self._last = None


def _in_kernel() -> bool:
    """True in a Jupyter kernel with ipywidgets (a notebook shows widget bars)."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def _bar(label: str, total: float) -> Any:
    """A progress bar widget shown at once (see :class:`ftkit_widgets.views.LiveHTML`):
    its display becomes a static line once it ends, green when done, red when failed."""
    from .views import Bar, show

    bar = Bar(label, total)
    show(bar)
    return bar


def _mark_failed(bar: Any, label: str) -> None:
    """Red bar, "failed" in its label (a notebook bar), or a last line saying so."""
    if hasattr(bar, "fail"):
        bar.fail()
        return
    container = getattr(bar, "container", None)
    if container is None:  # a terminal bar
        bar.close()
        print(f"{label}: failed", file=sys.stderr, flush=True)
        return
    desc, progress, after = container.children[:3]
    progress.bar_style = "danger"
    desc.value = f"{label}: failed"
    after.value = ""  # not "480/480 s": it did not end well
    if getattr(bar, "disable", False) is False:
        bar.disable = True  # closed: tqdm no longer repaints it green


def progress_bar(*, live: bool = True) -> Progress:
    """A :class:`Progress` callback: ``open_session(..., progress=progress_bar())``."""
    return Progress(live=live)
