"""What a session says to the operator, in the operator's words: where the applications
run, the one-line state summary, the session's moments as ``t=mm:ss``, and why a run did
not end the session (the failing step, the state left, the way on). Read-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftkit.errors import FtkitError, StepFailedError

if TYPE_CHECKING:
    from ftkit.model import SystemState
    from ftkit.process import Session

__all__ = ["applications", "clock", "handed_over", "stopped", "summary"]


def clock(seconds: float) -> str:
    """A moment of the system's clock as ``t=26:10`` (minutes:seconds), as the runbook's
    summary and activity log show it."""
    minutes, secs = divmod(round(float(seconds)), 60)
    return f"t={minutes}:{secs:02d}"


def applications(st: SystemState) -> str:
    """Which side runs the critical applications: the roles are fixed at the split, so
    after the merge the applications run on the Upgrade side (docs/DOMAIN.md, sides)."""
    if st.apps_on is None:
        return "nowhere (outage)"
    if st.apps_duplex:
        return "duplex system"
    role = st.sides[st.apps_on].role
    label = "Upgrade" if st.merged else role.value
    return f"{label} side (enclosure {st.apps_on})"


def summary(session: Session) -> dict[str, Any]:
    """Upgrade, operational and partner state in one dict (read-only)."""
    broken = session.broken
    return {
        "system": session.target,
        "upgrade_state": session.upgrade_state.value,
        "operational_state": session.operational_state.value,
        "broken_step": broken[0] if broken else "",
        "broken_reason": broken[1] if broken else "",
        "partner_state": session.partner_state().value,
        "applications": applications(session.system()),
        "session": session.record.id if session.record else None,
    }


def handed_over(session: Session) -> str:
    """" (taken over from …)" when this run's operator is not the session's starter."""
    record = session.record
    if record is None or not record.operator or session.operator in ("", record.operator):
        return ""
    return f" (taken over from {record.operator})"


def stopped(session: Session) -> FtkitError:
    """Why this run did not end the session, as one error: the failing step and reason,
    the state the system is left in, and the way on (read-only)."""
    state = f"{session.upgrade_state.value} / {session.operational_state.value}"
    if session.broken:
        step, why = session.broken
        error = session.last_error
        said = f" — {error.message}" if error is not None and error.message != why else ""
        return StepFailedError(
            f"the run stopped: Broken at {step} ({why}{said}); the system is left in "
            f"{state}",
            "fix the cause, then Retry (or run again with decisions broken: retry), or "
            "Abort (abort.ipynb) back to the original software", step=step, reason=why)
    if session.last_error is not None:
        err = session.last_error
        return FtkitError(f"the run stopped: {err.message}; the system is left in "
                          f"{state}", err.remedy or "fix it, then run again")
    return FtkitError(f"the session did not end (it is {state})",
                      "run the runbook again to carry on, or run abort.ipynb")
