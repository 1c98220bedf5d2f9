"""Tests drive a session the way every face does: through the one engine
(:meth:`ftkit.process.Session.advance`). These helpers only spell common calls."""

from __future__ import annotations

from ftkit.decisions import Answered, make_decision
from ftkit.engine import Advanced
from ftkit.process import Session


def request(session: Session, name: str) -> Advanced:
    """Run request NAME now (refused, changing nothing, where the table does not allow it)."""
    return session.advance(request=name)


def finish(session: Session) -> str:
    """Run Finish; the session's outcome."""
    session.advance(request="Finish")
    assert session.record is not None
    return str(session.record.outcome)


def answer(session: Session, name: str, value: str, *, who: str = "tester",
           why: str = "test") -> Advanced:
    """Answer question NAME with VALUE and advance (the request it leads to runs)."""
    return session.advance(Answered(make_decision(name, value, who=who, why=why,
                                                  source="parameter")))


def resume(session: Session) -> None:
    """Run again what a killed process left half done (what any advance does first)."""
    from ftkit.flow import Kind

    while session.standing().kind is Kind.BUSY:
        session.advance()


def retry(session: Session) -> Advanced:
    """Retry the Broken (or interrupted) step: the ``broken: retry`` answer."""
    if session.broken is None:
        return session.advance()  # an interrupted step is run again by any advance
    return answer(session, "broken", "retry")
