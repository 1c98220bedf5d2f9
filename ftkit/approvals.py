"""Two people at the point of no return: approvals of a session's Commit by accounts other
than the operator's.

An approval is given by ``ftkit approve SYSTEM --change CHG --by NAME [--reason …]`` run
by another account (:func:`ftkit.decisions.account`: ``$JUPYTERHUB_USER``, else the OS
user; a typed name is not enough). It is journaled in the system's journal as an ``info``
entry whose detail holds ``approval``: the account, the time, the name and reason given,
and the evidence the approver was shown (the soak's probes, the outage so far, the
transactions acknowledged and lost: :func:`ftkit.probes.evidence`). Commit's declared
guard (:data:`ftkit.flow.APPROVED`, registered in :mod:`ftkit.steps`) counts the
approvals of other accounts (:func:`refusal`); an auto run waits for them (:func:`wait`)
up to ``decision_timeout_min``. How many are needed: ``[approvals] commit = N`` in the
configuration, by default 1, and 0 on the simulator (``sim://``: the demo runs alone).
An approval expires with the change window when the session's configuration has one
(``window_end``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ftkit.decisions import account
from ftkit.errors import DecisionError, TransitionError
from ftkit.flow import DECISIONS, Question
from ftkit.model import UpgradeState

if TYPE_CHECKING:
    from ftkit.decisions import Decision
    from ftkit.journal import Entry, SessionRecord
    from ftkit.process import Session

__all__ = ["DEFAULT_TIMEOUT_MIN", "POLL_S", "approve", "approvers", "command", "given",
           "hold", "of_record", "readiness_row", "refusal", "required", "state", "wait"]

#: How long an auto run waits for an approval when the configuration says nothing.
DEFAULT_TIMEOUT_MIN = 30.0
#: How often a waiting run reads the journal again, in seconds.
POLL_S = 1.0
# the states an approval may be given in: at or before the commit decision
_OPEN = frozenset({UpgradeState.PREPARE_SPLIT, UpgradeState.SPLIT,
                   UpgradeState.PREPARE_MERGE, UpgradeState.MERGE})


def required(config: Any, target: str) -> int:
    """How many approvals Commit needs (read-only): ``[approvals] commit``, else 0 on the
    simulator and 1 on every other driver."""
    return _required(getattr(config, "approvals_commit", None), target)


def _required(said: Any, target: str) -> int:
    if isinstance(said, int | float) and not isinstance(said, bool):
        return int(said)
    return 0 if target.startswith("sim://") else 1


def readiness_row(config: Any, target: str) -> str:
    """What the readiness check (``commit-approvals``) and the plan say of Commit's
    approvals on TARGET under CONFIG (read-only): how many, from whom, how given, and
    whether people are told (``notify``)."""
    needed = required(config, target)
    if needed <= 0:
        why = ("[approvals] commit = 0" if getattr(config, "approvals_commit", None)
               is not None else "the simulator's default")
        return f"Commit needs no approval ({why})"
    told = len(getattr(config, "notify", ()) or ())
    return (f"Commit needs {needed} approval(s) from account(s) other than the operator's "
            f"({command(target, 'CHG')}), before or at the commit decision; "
            + (f"{told} notify URL(s) tell people when it waits" if told else
               "no notify URL: tell the approvers yourself"))


def command(target: str, change_id: str) -> str:
    """The exact command another account runs to approve (pure)."""
    return (f"ftkit approve {target} --change {change_id or '-'} --by YOUR-NAME "
            "--reason '…'")


def _operator_account(record: SessionRecord) -> str:
    return str(record.data.get("account") or "")


def _window_end(record: SessionRecord) -> datetime | None:
    """The end of the session's change window, when its configuration has one with an
    offset (read defensively: the window is declared elsewhere)."""
    config = record.data.get("config") if isinstance(record.data, dict) else None
    if not isinstance(config, Mapping):
        return None
    window = config.get("window")
    end = config.get("window_end") or (window.get("end") if isinstance(window, Mapping)
                                       else None)
    if not isinstance(end, str):
        return None
    try:
        moment = datetime.fromisoformat(end)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def given(entries: Iterable[Entry], record: SessionRecord, *, change_id: str = "",
          now: datetime | None = None, exclude: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The approvals journaled in ENTRIES that count for RECORD's Commit (read-only): one
    per account, none of the operator's account (nor of EXCLUDE), of the session's
    change, not expired."""
    operator = _operator_account(record)
    excluded = set(exclude)
    moment = now or datetime.now(UTC)
    out: dict[str, dict[str, Any]] = {}
    for entry in entries:
        detail = entry.detail if isinstance(entry.detail, dict) else {}
        approval = detail.get("approval")
        if not isinstance(approval, dict):
            continue
        who = str(approval.get("account") or "")
        if not who or who == operator or who in excluded or who in out:
            continue
        if approval.get("change_id") != (change_id or record.change_id):
            continue
        expires = approval.get("expires")
        if isinstance(expires, str) and datetime.fromisoformat(expires) <= moment:
            continue
        out[who] = approval
    return list(out.values())


def approvers(session: Session) -> list[str]:
    """``NAME (account)`` of each approval that counts for SESSION's Commit (read-only)."""
    if session.record is None:
        return []
    return [f"{a.get('by')} ({a.get('account')})"
            for a in given(session.entries(kinds=["info"]), session.record)]


def of_record(entries: Iterable[Entry], record: SessionRecord) -> dict[str, Any] | None:
    """What ``ftkit status`` shows of RECORD's approvals (read-only): ``required`` (from
    the configuration the session began with) and ``given`` (those that count); None when
    it needs none and has none."""
    config = record.data.get("config") if isinstance(record.data, dict) else None
    said = (config or {}).get("approvals") if isinstance(config, Mapping) else None
    needed = _required(said.get("commit") if isinstance(said, Mapping) else None,
                       record.target)
    have = [{"by": str(a.get("by", "")), "account": str(a.get("account", "")),
             "when": str(a.get("when", "")), "reason": str(a.get("reason") or ""),
             "expires": a.get("expires")} for a in given(entries, record)]
    if not needed and not have:
        return None
    return {"required": needed, "given": have}


def state(session: Session) -> dict[str, Any]:
    """Where SESSION's Commit approvals stand, for the commit panel (read-only):
    ``required`` (``[approvals] commit``), ``given`` (``by``, ``account``, ``when``,
    ``reason`` of each that counts), ``operator`` (the account the session began with),
    ``own`` (True when the account looking is the operator's: it cannot approve) and
    ``command`` (what another account runs to approve)."""
    record = session.record
    needed = required(session.config, session.target)
    operator = (_operator_account(record) if record is not None else "") or account()
    have = [] if record is None else [
        {"by": str(a.get("by", "")), "account": str(a.get("account", "")),
         "when": str(a.get("when", "")), "reason": str(a.get("reason") or "")}
        for a in given(session.entries(kinds=["info"]), record)]
    return {"required": needed, "given": have, "operator": operator,
            "own": account() == operator,
            "command": command(session.target, record.change_id if record else "")}


def refusal(session: Session) -> tuple[str, str] | None:
    """Commit's guard: None when enough other accounts approved SESSION's change, else
    (why, remedy) naming who may approve and the command (read-only)."""
    needed = required(session.config, session.target)
    if needed <= 0 or session.record is None:
        return None
    # the account asking for the Commit is the operator's too (a session recovered
    # without the account it began with)
    have = given(session.entries(kinds=["info"]), session.record, exclude=[account()])
    if len(have) >= needed:
        return None
    operator = _operator_account(session.record) or account()
    return (f"Commit needs {needed} approval(s) from an account other than {operator} (the "
            f"operator's); {len(have)} given: the system stays merged, and Abort is still "
            "possible",
            f"any account but {operator} runs: "
            f"{command(session.target, session.record.change_id)}; then run again, or abort")


def approve(target: str, *, change_id: str, by: str, reason: str = "") -> dict[str, Any]:
    """Journal this account's approval of TARGET's unfinished session's Commit (one
    transaction) and return it. Refused with one line, nothing written: no unfinished
    session, another change id, a session past the commit decision, the operator's own
    account. A second approval by the same account returns the first."""
    from ftkit.decisions import _check_names, check_identity
    from ftkit.probes import evidence
    from ftkit.process import observe

    if not by.strip():
        raise DecisionError("an approval names who gives it", "pass --by YOUR-NAME")
    check_identity(operator=by, change_id=change_id, what="an approval")
    _check_names(reason=reason)
    session = observe(target)
    try:
        session.journal.verify()  # a tampered journal is never added to
        record = session.record
        if record is None or record.ended:
            raise TransitionError(f"{target} has no unfinished session to approve",
                                  "approve while the upgrade is under way, before Commit")
        if change_id != record.change_id:
            raise DecisionError(
                f"the session of {target} is change {record.change_id or '-'}, not "
                f"{change_id}", f"approve with --change {record.change_id or '-'}")
        state = UpgradeState(record.upgrade_state)
        answered = session.answers().get(Question.COMMIT)
        if state not in _OPEN or answered == "abort":
            raise TransitionError(
                f"session {record.id} of {target} is past the commit decision "
                f"({state.value}): there is nothing to approve", "nothing to do")
        me = account()
        operator = _operator_account(record)
        if me == operator:
            raise DecisionError(
                f"account {me} runs this change (operator {record.operator}): the operator's "
                "own account cannot approve it",
                f"another account runs: {command(target, change_id)}")
        for earlier in given(session.entries(kinds=["info"]), record):
            if earlier.get("account") == me:
                return earlier
        shown = evidence(session)
        end = _window_end(record)
        approval = {"account": me, "by": by, "reason": reason, "change_id": change_id,
                    "when": datetime.now(UTC).isoformat(timespec="seconds"),
                    "expires": end.isoformat() if end else None,
                    "decision": DECISIONS[Question.COMMIT].name.value, "evidence": shown}
        session.journal.log(
            record.id, "info",
            f"Commit approved by {by} (account {me}) for change {change_id}"
            + (f": {reason}" if reason else "") + f"; shown: {_said(shown)}",
            step=state.value, detail={"approval": approval}, sim_time=session.now())
        session.journal.sync()
        return approval
    finally:
        session.journal.close()
        session.driver.close()


def _said(shown: Mapping[str, Any]) -> str:
    return (f"probes {shown.get('probes_passed', 0)} passed, {shown.get('probes_failed', 0)} "
            f"failed; outage {shown.get('outage_s', 0):g} s; {shown.get('acknowledged', 0)} "
            f"transactions served, {shown.get('lost_transactions', 0)} lost")


def wait(session: Session, decision: Decision, *, timeout_min: float | None = None,
         sleep: Any = time.sleep) -> None:
    """Before Commit runs on DECISION: when approvals are missing, say so to people
    (:func:`ftkit.notify.pending`) and, for an auto run (a parameter's answer), read the
    journal again every :data:`POLL_S` until they are there or ``decision_timeout_min``
    passed (the guard then refuses). Writes only the notification's log entry."""
    from ftkit.notify import pending

    said = refusal(session)
    if said is None:
        return
    assert session.record is not None
    session.journal.sync()  # nothing waits for people while a step's outcome is not durable
    operator = _operator_account(session.record) or account()
    pending(session, what="approval",
            who=f"any account but {operator}",
            answer=command(session.target, session.record.change_id))
    if decision.source != "parameter":
        return
    if timeout_min is None:  # the commit decision's timeout ([window] decision_timeout_min)
        said_min = session.controls.timeout_min("commit")
        timeout_min = DEFAULT_TIMEOUT_MIN if said_min is None else float(said_min)
    deadline = time.monotonic() + timeout_min * 60
    while refusal(session) is not None and time.monotonic() < deadline:
        session.journal.check()
        sleep(POLL_S)
    if refusal(session) is None:
        session.journal.log(session.record.id, "info",
                            "Commit approved by " + ", ".join(approvers(session)),
                            step=UpgradeState.MERGE.value, sim_time=session.now())


def hold(session: Session, decision: Decision) -> None:
    """Refuse DECISION's Commit while approvals are missing: a ``warning`` journaled with
    who answered what (the answer itself is not recorded as decided, so a later run, or
    click, once approved asks again and commits), then TransitionError naming who may
    approve and the command. Nothing else changes: the system stays merged, abortable."""
    said = refusal(session)
    if said is None:
        return
    assert session.record is not None
    session.journal.log(
        session.record.id, "warning",
        f"{decision.name}: {decision.answer} by {decision.who} not carried out: {said[0]}",
        step=UpgradeState.MERGE.value, sim_time=session.now(),
        detail={"refused": {"decision": decision.name, "answer": decision.answer,
                            "who": decision.who, "account": decision.account,
                            "why": decision.why, "guard": "approvals"}})
    raise TransitionError(*said)
