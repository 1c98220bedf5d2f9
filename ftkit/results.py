"""What a run states about its session, for the change record: the facts (outcome, each
measured outage, transactions acknowledged and lost, decisions) and the run's
:class:`~ftkit.archive.RunResult`. Read-only, except that what the record cites is made
durable first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftkit.errors import FtkitError
from ftkit.flow import DECISIONS, Question
from ftkit.narrate import handed_over, stopped
from ftkit.window import window_facts

if TYPE_CHECKING:
    from ftkit.archive import RunResult
    from ftkit.process import Session

__all__ = ["facts", "result"]


def facts(session: Session) -> dict[str, Any]:
    """What the change record states about SESSION (read-only): outcome, each measured
    outage, total outage, acknowledged and lost transactions, decisions."""
    outages = session.outages()
    record = session.record
    return {
        "session": record.id if record else None,
        "outcome": record.outcome if record else None,
        "outages_s": [round(o.seconds, 1) for o in outages if o.seconds is not None],
        "outage_at_s": [round(o.start, 1) for o in outages if o.seconds is not None],
        "outage_s": round(sum((o.seconds or 0.0) for o in outages), 1),
        "acknowledged": session.driver.acknowledged(),
        "lost_transactions": session.driver.lost_transactions(),
        "decisions": session.decisions(),
        **window_facts(session),  # the change window (met?) and the outage budget
        **_controls(session),
    }


def _controls(session: Session) -> dict[str, Any]:
    """The change controls' facts, only where the session has them (read-only): who
    approved the Commit (``approved_by``, ``NAME (account)``) and the soak's evidence
    (``evidence``: probes passed/failed, outage, transactions served and lost)."""
    from ftkit.approvals import approvers
    from ftkit.probes import evidence

    out: dict[str, Any] = {}
    approved = approvers(session)
    if approved:
        out["approved_by"] = approved
    shown = evidence(session)
    if shown["probes_passed"] or shown["probes_failed"]:
        out["evidence"] = shown
    return out


def result(session: Session, *, mode: str) -> RunResult:
    """The run's result (outcome, measured outage, lost transactions). Raises if the
    session did not end, or lost a transaction."""
    from ftkit.archive import RunResult

    record = session.record
    if session.last_error is not None and not session.done:
        raise stopped(session)
    if session.paused is not None and record is not None and not session.done:
        paused = session.paused
        how = " or ".join(DECISIONS[Question(paused.name)].answers)
        known = facts(session)
        held = paused.answer not in DECISIONS[Question(paused.name)].pauses
        session.journal.sync()  # what a record cites is durable first
        return RunResult(
            outcome="paused", system=session.target, change_id=record.change_id,
            operator=session.operator or record.operator, outage_s=known["outage_s"],
            message=f"session {record.id}{handed_over(session)} paused "
                    f"{'' if held else 'on purpose '}in "
                    f"{session.upgrade_state.value} ({paused.name}: {paused.answer}"
                    f"{f': {paused.why}' if held else ''}); to go "
                    f"on, run again with {paused.name}: {how}"
                    f"{' (in a new window)' if held else ''}, or run the abort runbook",
            # the session's last entry as paused: what `reports add` checks it against
            extra={"mode": mode, "session": record.id, **_controls_extra(known),
                   **session.journal.head_entry(record.id)})
    if record is None:
        what = ("nothing to abort: no unfinished session" if mode == "abort"
                else "no session")
        return RunResult(outcome="stopped", system=session.target,
                         change_id=session.change_id, operator=session.operator,
                         message=f"{what}; nothing on the system changed",
                         extra={"mode": mode})
    if not session.done:
        raise stopped(session)
    session.journal.check()  # the record is only as good as the journal it comes from
    known = facts(session)
    if known["lost_transactions"]:
        raise FtkitError(f"{known['lost_transactions']} acknowledged transactions are "
                         "missing from the data disks",
                         "stop and investigate before anything else; see the activity log")
    session.journal.sync()  # what a record cites is durable first
    return RunResult(
        outcome=str(record.outcome), system=session.target,
        change_id=record.change_id or session.change_id,
        operator=session.operator or record.operator, outage_s=known["outage_s"],
        message=f"session {record.id}{handed_over(session)}: {record.outcome}, outage "
                f"{known['outage_s']:g} s, {known['lost_transactions']} transactions lost",
        extra={"mode": mode, "session": record.id,
               "lost_transactions": known["lost_transactions"],
               "acknowledged": known["acknowledged"], "outages": known["outages_s"],
               "decisions": "; ".join(f"{d.name}: {d.answer} by {d.who} ({d.source})"
                                      for d in known["decisions"]),
               **_controls_extra(known),
               **{key: known[key] for key in ("approved_by", "evidence") if key in known},
               # this session's last entry, on disk: the ledger entry carries it
               # (cross-checked by reports verify)
               **session.journal.head_entry(record.id)},
    )


def _controls_extra(known: dict[str, Any]) -> dict[str, Any]:
    """The change window and outage budget, as the ledger entry carries them (pure)."""
    return {key: known[key] for key in ("window", "outage_budget") if key in known}
