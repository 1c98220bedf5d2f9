"""Where ftkit keeps its state: ``$FTKIT_HOME`` (twins; the journals of systems whose
driver names no folder of their own) and the reports folder.

``$FTKIT_HOME`` defaults to the user's state directory, never the repository; reports go
to ``$FTKIT_REPORTS`` or ``./reports``. Nothing here creates a directory except
:func:`journal_path`, which makes the ``journals/`` folder it points into.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

__all__ = ["ftkit_home", "journal_path", "reports_dir"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def ftkit_home() -> Path:
    """``$FTKIT_HOME``, else ``platformdirs.user_state_dir("ftkit")``; not created here."""
    env = os.environ.get("FTKIT_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs  # small, but only the default needs it

    return Path(platformdirs.user_state_dir("ftkit", appauthor=False))


def reports_dir() -> Path:
    """``$FTKIT_REPORTS``, else ``./reports`` (relative to the current directory)."""
    env = os.environ.get("FTKIT_REPORTS")
    if env:
        return Path(env).expanduser()
    return Path.cwd() / "reports"


def journal_path(target: str, *, create: bool = True) -> Path:
    """The journal file of TARGET under ``ftkit_home()/journals``; creates that folder
    unless ``create`` is False. Only for a system whose driver names no folder of its own
    (see :func:`ftkit.journal.journal_path_of`) or a target that cannot be reached.

    The name is the target made filename-safe plus a SHA-1 prefix of the exact target
    string, so ``sim://a/b`` and ``sim://a_b`` never share a journal.
    """
    safe = _UNSAFE.sub("_", target).strip("._-")[:60] or "target"
    digest = hashlib.sha1(target.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
    folder = ftkit_home() / "journals"
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{safe}-{digest}.db"
