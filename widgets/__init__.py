"""ftkit_widgets: ipywidgets shells over ftkit for the runbooks (``import ftkit_widgets as fw``).

Thin on purpose: every widget calls an ftkit function and shows the result, or the
:class:`~ftkit.errors.FtkitError` it raised, in the widget itself (ipywidgets' callback
dispatcher would swallow it). ftkit never imports this package.

Views: :class:`StatusBar`, :class:`SystemView`, :class:`ActivityLog`,
:func:`readiness_table`, :func:`timeline`, :func:`progress_bar`.
Decisions: :class:`DecisionPanel`, :class:`RecoveryPanel` (Retry/Abort), :func:`ask`,
:func:`check_mode`.
Runbook steps (one line per cell, safe to re-run): :func:`resolve`,
:func:`ensure_system`, :func:`overview`, :func:`resume`, :func:`check_readiness`,
:func:`require_ready`, :func:`step`, :func:`soak`, :func:`show_plan`,
:func:`show_failure`, :func:`show_log`, :func:`result`, :func:`abort_session`.
Status: :func:`inventory`, :func:`show_inventory`.
Campaigns: :func:`campaign_plan`, :class:`CampaignTable`, :func:`drive_campaign` (with its
:class:`ApprovalPanel`), :func:`campaign_result`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# ipywidgets (decide, runbook, views) loads on first use of a name that needs it; the
# modules whose name is also a function's (timeline, inventory) load now, so that the
# function, not the submodule, is what ``fw.timeline`` names.
from .inventory import inventory, show_inventory
from .progress import Progress, progress_bar
from .timeline import timeline

if TYPE_CHECKING:
    from .campaign import (
        ApprovalPanel,
        CampaignTable,
        campaign_plan,
        campaign_result,
        drive_campaign,
    )
    from .decide import DecisionPanel, RecoveryPanel, ask, check_mode
    from .runbook import (
        abort_session,
        check_readiness,
        ensure_system,
        overview,
        record_header,
        require_ready,
        resolve,
        result,
        resume,
        show_failure,
        show_log,
        show_plan,
        soak,
        step,
    )
    from .views import ActivityLog, StatusBar, SystemView, readiness_table

_LAZY = {
    **dict.fromkeys(("ApprovalPanel", "CampaignTable", "campaign_plan", "campaign_result",
                     "drive_campaign"), "campaign"),
    **dict.fromkeys(("DecisionPanel", "RecoveryPanel", "ask", "check_mode"), "decide"),
    **dict.fromkeys(("abort_session", "check_readiness", "ensure_system", "overview",
                     "record_header", "require_ready", "resolve", "result", "resume",
                     "show_failure", "show_log", "show_plan", "soak", "step"), "runbook"),
    **dict.fromkeys(("ActivityLog", "StatusBar", "SystemView", "readiness_table"), "views"),
}


def __getattr__(name: str) -> Any:
    """Import the submodule that defines NAME on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ActivityLog",
    "ApprovalPanel",
    "CampaignTable",
    "DecisionPanel",
    "Progress",
    "RecoveryPanel",
    "StatusBar",
    "SystemView",
    "abort_session",
    "ask",
    "campaign_plan",
    "campaign_result",
    "check_mode",
    "check_readiness",
    "drive_campaign",
    "ensure_system",
    "inventory",
    "overview",
    "progress_bar",
    "readiness_table",
    "record_header",
    "require_ready",
    "resolve",
    "result",
    "resume",
    "show_failure",
    "show_inventory",
    "show_log",
    "show_plan",
    "soak",
    "step",
    "timeline",
]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
