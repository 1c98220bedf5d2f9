"""ftkit: Active Upgrade runbooks for duplexed fault-tolerant servers.

What a runbook needs is here; everything else is imported from its module::

    session = ftkit.open_session(system, config, packages, operator=..., reason=...)
"""

from __future__ import annotations

from ftkit.archive import Outcome, RunResult
from ftkit.decisions import Decision, ParameterDecisions, PlanDecisions, make_decision
from ftkit.drivers import Driver, connect, register
from ftkit.errors import FtkitError, StepFailedError, TransitionError
from ftkit.model import OperationalState, PartnerState, UpgradeState
from ftkit.process import Session, open_session, plan

__all__ = [
    "Decision",
    "Driver",
    "FtkitError",
    "OperationalState",
    "Outcome",
    "ParameterDecisions",
    "PartnerState",
    "PlanDecisions",
    "RunResult",
    "Session",
    "StepFailedError",
    "TransitionError",
    "UpgradeState",
    "__version__",
    "connect",
    "make_decision",
    "open_session",
    "plan",
    "register",
]
__version__ = "0.1.0"
