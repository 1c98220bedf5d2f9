"""JupyterLab defaults the runbooks need, written into an environment's JupyterLab.

``python -m ftkit_widgets.labsettings`` (run by ``make install``) sets, in the
environment's ``share/jupyter/lab/settings/overrides.json`` (JupyterLab's defaults for
everyone using that environment; a person's own settings still win), the widget manager's
``saveState``: a saved runbook keeps the state of its live widgets, so that a notebook
saved while its kernel runs (a run abandoned mid-way) reopens showing its panels and views
instead of "Error displaying widget: model not found". A notebook saved after its kernel
stopped keeps the static renderings the page was handed instead
(:func:`ftkit_widgets.attention.kept`). Other keys of an existing ``overrides.json`` stay.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["OVERRIDES", "overrides_path", "write_overrides"]

#: the settings ftkit's runbooks need, by JupyterLab plugin id
OVERRIDES: dict[str, dict[str, Any]] = {
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True},
}


def overrides_path(prefix: str | Path = sys.prefix) -> Path:
    """Where JupyterLab run from environment PREFIX reads its setting defaults. Read-only."""
    return Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def write_overrides(*, prefix: str | Path = sys.prefix) -> Path:
    """Merge :data:`OVERRIDES` into PREFIX's ``overrides.json`` (created with its folders
    when missing; other plugins' and keys' values kept); writes that one file, replaced
    whole (a temporary file renamed). Returns its path."""
    path = overrides_path(prefix)
    current: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = {}
        current = loaded if isinstance(loaded, dict) else {}
    for plugin, values in OVERRIDES.items():
        own = current.get(plugin)
        current[plugin] = {**(own if isinstance(own, dict) else {}), **values}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


if __name__ == "__main__":  # pragma: no cover - what make install runs
    print(f"JupyterLab defaults for ftkit's runbooks: {write_overrides()}")
