"""ftkit: Active Upgrade runbooks for duplexed fault-tolerant servers.

What a runbook needs is here; everything else is imported from its module::

    session = ftkit.open_session(system, config, packages, operator=..., reason=...)

The names load on first use, so commands that need none of them (``ftkit status``,
``ftkit sim ...``) start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ftkit.errors import FtkitError, StepFailedError, TransitionError

if TYPE_CHECKING:
    from ftkit.archive import Outcome, RunResult
    from ftkit.checks import readiness, run_checks
    from ftkit.decisions import Decision, ParameterDecisions, PlanDecisions, make_decision
    from ftkit.drivers import Driver, connect, register
    from ftkit.model import OperationalState, PartnerState, UpgradeState
    from ftkit.process import Session, open_session, plan

_LAZY = {
    "Outcome": "ftkit.archive",
    "RunResult": "ftkit.archive",
    "readiness": "ftkit.checks",
    "run_checks": "ftkit.checks",
    "Decision": "ftkit.decisions",
    "ParameterDecisions": "ftkit.decisions",
    "PlanDecisions": "ftkit.decisions",
    "make_decision": "ftkit.decisions",
    "Driver": "ftkit.drivers",
    "connect": "ftkit.drivers",
    "register": "ftkit.drivers",
    "OperationalState": "ftkit.model",
    "PartnerState": "ftkit.model",
    "UpgradeState": "ftkit.model",
    "Session": "ftkit.process",
    "open_session": "ftkit.process",
    "plan": "ftkit.process",
}

__all__ = ["FtkitError", "StepFailedError", "TransitionError", "__version__", *_LAZY]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ftkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
