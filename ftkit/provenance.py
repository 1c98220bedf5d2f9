"""Whether a notebook handed to ``ftkit reports add`` is what ran: its facts checked against
the journal of the system it names, and the parameters given to ``add`` against those the
run used (docs/DOMAIN.md#13-records-are-complete-authentic-and-inert). Read-only: nothing
here writes a journal, a ledger or a file.

A notebook states facts twice: in its last :class:`~ftkit.archive.RunResult` (outcome,
outage, operator, account, decisions, change, session, the journal entry it cites) and in
papermill's record of its parameters. Anyone can edit a notebook file before adding it;
the journal is hash-chained and verified first (:meth:`ftkit.journal.Journal.verify`, its
sessions table included), so where the two disagree the journal is believed and the
notebook is refused, naming the first difference: ``operator: the notebook says alice,
the journal says mallory``.

Parameters given to ``add`` (``-p NAME VALUE``) never change what ran: one that says what
the run used is a check and passes; any other is refused (:func:`check_given`). An
auditor reads a ledger entry as what happened; a value typed in afterwards by whoever
archived the notebook is not that, and belongs in the change ticket, not in the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftkit.errors import ArchiveError, FtkitError

if TYPE_CHECKING:
    from ftkit.archive import LedgerEntry

__all__ = ["FACTS", "archived_end", "check_given", "cross_check_notebook", "journal_outage",
           "ran_parameters"]

#: The run's facts a notebook's result states (archive_run takes them from the result,
#: else from the parameters): ``-p`` may not change any of them.
FACTS = ("system", "change_id", "operator", "account", "outcome", "outage_s", "session",
         "decisions", "journal_entry", "journal_hash")

#: Outcomes that only a session's end reports: a notebook stating one cites a session.
_ENDED = frozenset({"committed", "aborted"})
#: Outcomes that state how a session ended.
_END_OUTCOMES = frozenset({*_ENDED, "stopped"})
_OUTAGE_TOLERANCE_S = 0.15  # both round to 0.1 s


def _refuse(message: str) -> ArchiveError:
    return ArchiveError(message, "nothing was archived; add the notebook the run wrote, "
                        "unedited (the journal is what happened: `ftkit status SYSTEM`)")


def _said(value: Any) -> str:
    if value is None or value == "":
        return "nothing"
    if isinstance(value, float):
        return f"{round(value, 1):g} s"
    return str(value)


def ran_parameters(nb: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters the run of notebook NB used, as papermill recorded them ({} if
    none); read-only."""
    meta = nb.get("metadata") or {}
    papermill = meta.get("papermill") if isinstance(meta, Mapping) else None
    params = papermill.get("parameters") if isinstance(papermill, Mapping) else None
    return dict(params) if isinstance(params, Mapping) else {}


def check_given(given: Mapping[str, Any], *, ran: Mapping[str, Any],
                result: Mapping[str, Any]) -> None:
    """Refuse (:class:`ArchiveError`) a parameter in GIVEN (``reports add -p``) that is not
    what the run used: one RAN (papermill's record) holds with another value, one the run
    did not pass (it used the runbook's default), or a fact RESULT states otherwise.
    Read-only; a parameter equal to what ran passes (a check)."""
    for name, value in given.items():
        if name in ran:
            used: Any = ran[name]
        elif name in FACTS and result.get(name) not in (None, ""):
            used = result[name]
        else:
            raise ArchiveError(
                f"-p {name} {_said(value)}: the run did not pass {name} (it used the "
                "runbook's default); parameters given to `reports add` never change what ran",
                "add it without -p; a note about the run belongs in the change ticket")
        if used != value and str(used) != str(value):
            raise ArchiveError(
                f"-p {name} {_said(value)}: the run used {name} {_said(used)}; parameters "
                "given to `reports add` never change what ran",
                "add it without -p (the record keeps what ran); to change what runs, run "
                "it again")


def cross_check_notebook(result: Mapping[str, Any], ran: Mapping[str, Any]) -> str:
    """Check what a notebook states (RESULT: its last result; RAN: its parameters) against
    the journal of the system it names (reason and packages too, where the result states
    them). Returns what was checked, in words ("" when the
    notebook names no session and no change outcome to check). Read-only.

    Raises :class:`ArchiveError` naming the first fact that differs (session, change,
    operator, account, outcome, outage, decisions, the journal entry it cites), a change
    outcome on a system without a journal here, or a journal that does not verify."""
    def claim(name: str) -> Any:
        value = result.get(name)
        return ran.get(name) if value in (None, "") else value

    system = str(claim("system") or "")
    outcome = str(result.get("outcome") or "").lower()
    session_id = result.get("session")
    change_id = str(claim("change_id") or "")
    cites = result.get("journal_hash") is not None
    if not system or not (session_id is not None or cites or outcome in _ENDED):
        return ""
    from ftkit.drivers import connect
    from ftkit.journal import Journal

    try:
        driver = connect(system)
    except FtkitError as err:
        raise _refuse(f"system: the notebook says {system}, which cannot be opened here to "
                      f"check it against its journal ({err.message})") from None
    try:
        journal = Journal.find(driver)
    finally:
        driver.close()
    if journal is None:
        raise _refuse(f"journal: the notebook reports {outcome or 'a session'} on {system}, "
                      "which has no journal here")
    with journal:
        journal.verify()  # a journal edited afterwards proves nothing (sessions included)
        return _against(journal, result, claim, session_id=session_id, change_id=change_id,
                        outcome=outcome)


def _against(journal: Any, result: Mapping[str, Any], claim: Any, *, session_id: Any,
             change_id: str, outcome: str) -> str:
    """The comparisons of :func:`cross_check_notebook`, in order, on an open JOURNAL."""
    if session_id is not None:
        found = [s for s in journal.sessions() if s.id == session_id]
        if not found:
            raise _refuse(f"session: the notebook says {session_id}, the journal of "
                          f"{journal.target} has no session {session_id}")
        record = found[0]
    else:
        found = [s for s in journal.sessions() if change_id and s.change_id == change_id]
        if not found:
            raise _refuse(f"change: the notebook reports {outcome or 'a session'} of change "
                          f"{change_id or '-'}, the journal of {journal.target} has no "
                          "session of it")
        record = found[-1]
    entries = journal.entries(record.id)
    if change_id and change_id != record.change_id:
        raise _refuse(f"change_id: the notebook says {change_id}, the journal says "
                      f"{record.change_id or 'nothing'} (session {record.id})")
    # what the session was when the notebook's run reported it: up to the entry it cites
    # (a pause reported before the session went on, an outage measured since, is not a lie)
    _cited(entries, result, record.id)
    cited = result.get("journal_entry")
    if isinstance(cited, int) and not isinstance(cited, bool):
        entries = [e for e in entries if e.id <= cited]
    handovers = [e.detail["handover"] for e in entries
                 if isinstance(e.detail, dict) and isinstance(e.detail.get("handover"), dict)]
    decisions = _decisions(entries)
    # who the journal says drove the session: who began it, took it over, decided in it,
    # or aborted it (the abort runbook may be run by anyone)
    operators = list(dict.fromkeys(o for o in (
        record.operator, *(str(h.get("to", {}).get("operator", "")) for h in handovers),
        *(str(e.detail.get("who", "")) for e in entries
          if e.kind in ("decision", "info") and isinstance(e.detail, dict)
          and (e.kind == "decision" or e.detail.get("action") == "abort"))) if o))
    operator = str(claim("operator") or "")
    if operator and operator not in operators:
        raise _refuse(f"operator: the notebook says {operator}, the journal says "
                      f"{', '.join(operators) or 'nothing'} (session {record.id})")
    accounts = {str(record.data.get("account") or ""),
                *(str(h.get("account") or "") for h in handovers),
                *(str(d.get("account") or "") for d in decisions)} - {""}
    account = str(result.get("account") or "")
    if account and accounts and account not in accounts:
        raise _refuse(f"account: the notebook says {account}, the journal says "
                      f"{', '.join(sorted(accounts))} (session {record.id})")
    # only an end is compared: a check, a plan, a failure claim none, and a pause is what
    # a session was before it went on (its cited entry, below, proves it was this one's)
    if outcome in _END_OUTCOMES:
        if record.ended is not None and outcome != record.outcome:
            raise _refuse(f"outcome: the notebook says {outcome}, the journal says "
                          f"{record.outcome} (session {record.id})")
        if record.ended is None:
            raise _refuse(f"outcome: the notebook says {outcome}, the journal says session "
                          f"{record.id} has not ended ({record.upgrade_state}, "
                          f"{record.operational_state})")
    reason = result.get("reason")
    if isinstance(reason, str) and reason and reason != record.reason:
        raise _refuse(f"reason: the notebook says {reason}, the journal says "
                      f"{record.reason or 'nothing'} (session {record.id})")
    _packages(result.get("packages"), record)
    if outcome not in _END_OUTCOMES and not isinstance(cited, int):
        return (f"checked against session {record.id} of {journal.target}'s journal "
                "(verified; it cites no entry: its outage and decisions then are unknown)")
    outage = result.get("outage_s")
    if isinstance(outage, int | float) and not isinstance(outage, bool):
        measured = journal_outage(entries)
        if abs(float(outage) - measured) > _OUTAGE_TOLERANCE_S:
            raise _refuse(f"outage: the notebook says {_said(float(outage))}, the journal "
                          f"says {_said(measured)} (session {record.id})")
    said = result.get("decisions")
    if isinstance(said, str):
        journaled = "; ".join(f"{d.get('name')}: {d.get('answer')} by {d.get('who')} "
                              f"({d.get('source')})" for d in decisions)
        if said != journaled:
            raise _refuse(f"decisions: the notebook says {said or 'none'}, the journal says "
                          f"{journaled or 'none'} (session {record.id})")
    return (f"checked against session {record.id} of {journal.target}'s journal "
            f"(verified)")


def _packages(said: Any, record: Any) -> None:
    """Where the notebook's result lists packages (``name``, ``version``, and ``digest``
    where given), they are the ones the session began with (its journaled data)."""
    if not isinstance(said, list) or not all(isinstance(p, Mapping) for p in said):
        return
    journaled = [p for p in record.data.get("packages") or [] if isinstance(p, Mapping)]

    def spelt(package: Mapping[str, Any], digest: bool) -> str:
        text = f"{package.get('name')} {package.get('version')}"
        return f"{text} ({package.get('digest')})" if digest else text

    digest = all(p.get("digest") for p in said)
    ours = sorted(spelt(p, digest) for p in said)
    theirs = sorted(spelt(p, digest) for p in journaled)
    if ours != theirs:
        first = next((o for o in ours if o not in theirs), None) or "fewer packages"
        raise _refuse(f"packages: the notebook says {first}, the journal says "
                      f"{', '.join(theirs) or 'none'} (session {record.id})")


def _decisions(entries: list[Any]) -> list[dict[str, Any]]:
    """The session's last decision per question, in the declared order (as
    :meth:`ftkit.process.Session.decisions` lists them)."""
    from ftkit.flow import DECISIONS, RECOVERY

    last: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.kind == "decision" and isinstance(entry.detail, dict):
            last[str(entry.detail.get("name"))] = entry.detail
    return [last[str(n)] for n in (*DECISIONS, RECOVERY.name) if str(n) in last]


def journal_outage(entries: list[Any]) -> float:
    """The session's total outage as its ENTRIES journaled it (each outage's last measured
    length, once per outage), rounded to 0.1 s; read-only."""
    measured: dict[float, float] = {}
    for entry in entries:
        detail = entry.detail if isinstance(entry.detail, dict) else {}
        if "outage_start" in detail and detail.get("outage_s") is not None:
            measured[round(float(detail["outage_start"]), 3)] = float(detail["outage_s"])
    return round(sum(measured.values()), 1)


def _cited(entries: list[Any], result: Mapping[str, Any], session_id: int) -> None:
    """The journal entry the notebook cites (``journal_entry``/``journal_hash``) is one of
    the session's, with that hash."""
    cited_id, cited_hash = result.get("journal_entry"), result.get("journal_hash")
    if cited_id is None and cited_hash is None:
        return
    match = [e for e in entries if e.id == cited_id]
    if not match or match[0].hash != cited_hash:
        where = (f"entry {cited_id} is {match[0].hash[:12]}…" if match else
                 f"session {session_id} has no entry {cited_id}")
        raise _refuse(f"journal entry: the notebook cites entry {cited_id} "
                      f"({str(cited_hash)[:12]}…), the journal's {where}")


def archived_end(reports: Path, system: str, change_id: str) -> LedgerEntry | None:
    """The ledger entry under REPORTS of the end of CHANGE_ID's session on SYSTEM (the
    entry citing that session's last journal entry), else None; read-only. What ``ftkit
    run`` says instead of running a change that ran already."""
    from ftkit.archive import _ledger_tail
    from ftkit.drivers import connect
    from ftkit.journal import Journal

    try:
        driver = connect(system)
    except FtkitError:
        return None
    try:
        journal = Journal.find(driver)
    finally:
        driver.close()
    if journal is None:
        return None
    with journal:
        ended = [s for s in journal.sessions() if s.change_id == change_id and s.ended]
        if not ended:
            return None
        cited = journal.head_entry(ended[-1].id)["journal_hash"]
    return _ledger_tail(Path(reports), str(cited), key="journal_hash")[1]
