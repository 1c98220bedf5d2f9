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

    def _new(self, label: str, total: float) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=label, leave=True,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s simulated")

    def __call__(self, label: str, done: float, total: float) -> None:
        total = max(float(total), 1e-9)
        complete = done >= total * (1 - 1e-6)
        if not self.live:
            # one line per finished step: readable in an archived report
            if complete:
                print(f"{label}: done ({total:.0f} s simulated)", file=sys.stdout, flush=True)
                self.finished.append(label)
            return
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

    def close(self) -> None:
        """Close every bar still open (a step that failed half way)."""
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def progress_bar(*, live: bool = True) -> Progress:
    """A :class:`Progress` callback: ``open_session(..., progress=progress_bar())``."""
    return Progress(live=live)
