"""What an archived run's record states at its top, and the evidence it keeps: gathered
once, when the run is archived, from the run's facts and its system's journal.

:func:`record_facts` gives plain JSON (the archive stores it in the notebook's
``metadata.ftkit_record``; :mod:`ftkit.report_html` renders it as the summary block at the
top of every runbook's record, and the custom actions' output as evidence at its end), so
the page stays one pure function of the archived notebook and every runbook gets the same
summary, whatever its cells say. Read-only: a system without a journal is never given one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["EVIDENCE_KEPT", "installed_versions", "record_facts", "utc_text"]

#: How many characters of one custom action's stdout (and of its stderr) a record keeps:
#: the end, as the journal does (a shorter bound: a record is read, not searched).
EVIDENCE_KEPT = 2000

#: Facts a governance step may add to the run's result or the archive's facts, shown when
#: present: (key, label).
_GOVERNANCE = (("approver", "Approver"), ("approved_by", "Approver"), ("window", "Window"))


def utc_text(value: Any) -> str:
    """An ISO-8601 time as ``YYYY-MM-DD HH:MM:SS UTC`` (its zone said); else as given."""
    text = "" if value is None else str(value)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{round(value, 1):g}"
    if isinstance(value, list | tuple):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_shown(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def installed_versions(driver: Any, names: list[str]) -> dict[str, str]:
    """``{name: version}`` of NAMES as installed on DRIVER's system disk now, both mirror
    members (``"a / b"`` when they differ, ``"-"`` when absent); read-only, ``{}`` when the
    system cannot say (what the engine journals as a session's "before")."""
    try:
        members = driver.status().boot_disk().members
    except Exception:  # a record is kept even if the system cannot say
        return {}
    seen: dict[str, set[str]] = {}
    for member in members.values():
        for name in names:
            seen.setdefault(name, set()).add(str(member.software.get(name, "-")))
    return {name: " / ".join(sorted(found)) for name, found in seen.items()}


def _journal_of(system: str) -> Any:
    """The journal of SYSTEM if it has one (read-only: nothing is created), else None."""
    if not system:
        return None
    from ftkit.drivers import connect
    from ftkit.errors import FtkitError
    from ftkit.journal import Journal

    try:
        driver = connect(system)
    except (FtkitError, OSError, ValueError):
        return None
    try:
        return Journal.find(driver)
    except (FtkitError, OSError):
        return None
    finally:
        with contextlib.suppress(Exception):
            driver.close()


def _session_rows(journal: Any, session_id: int, rows: list[list[str]]) -> list[dict[str, Any]]:
    """The session's rows appended to ROWS; its custom actions' output returned."""
    record = journal.session(session_id)
    data = record.data if isinstance(record.data, Mapping) else {}
    rows.append(["Session", f"{record.id}, started {utc_text(record.started)} by "
                 f"{record.operator or 'unknown'} for change {record.change_id or '-'}"
                 + (f", {record.outcome}" if record.outcome else ", not ended")])
    if record.reason:
        rows.append(["Reason", record.reason])
    handovers = []
    for entry in journal.entries(record.id, kinds=["warning"]):
        moved = entry.detail.get("handover") if isinstance(entry.detail, Mapping) else None
        if isinstance(moved, Mapping):
            was, now = moved.get("from") or {}, moved.get("to") or {}
            handovers.append(f"{was.get('operator') or '?'} ({was.get('change_id') or '-'}) → "
                             f"{now.get('operator') or '?'} ({now.get('change_id') or '-'}) "
                             f"at {utc_text(entry.ts)}")
    if handovers:
        rows.append(["Handed over", "; ".join(handovers)])
    if not any(r[0] == "Outage" for r in rows):  # a run that reported no result: the journal's
        measured = [float(e.detail["outage_s"]) for e in journal.entries(record.id, kinds=[
            "warning"]) if isinstance(e.detail, Mapping)
            and isinstance(e.detail.get("outage_s"), int | float)]
        rows.append(["Outage", f"{_shown(round(sum(measured), 1))} s (as measured in the "
                     f"journal: {_shown([round(m, 1) for m in measured])} s)" if measured
                     else "none measured in the journal"])
    packages = [p for p in data.get("packages") or [] if isinstance(p, Mapping)]
    if packages:
        before = data.get("installed_before")
        olds = before if isinstance(before, Mapping) else {}

        def change(package: Mapping[str, Any]) -> str:
            old, new = olds.get(package.get("name"), "?"), package.get("version")
            if record.outcome == "committed":
                return f"{package.get('name')} {old} → {new}"
            if record.outcome:  # aborted (or stopped): the original software stays
                return f"{package.get('name')} {old} → {old} ({new} not kept: {record.outcome})"
            return f"{package.get('name')} {old} → {new} (not ended yet)"

        rows.append(["Packages, before → after", "; ".join(change(p) for p in packages)])
        rows.append(["Package digests", "; ".join(
            f"{p.get('name')} {p.get('version')}: sha256 {p.get('digest')}" for p in packages)])
    config = data.get("config")
    if isinstance(config, Mapping) and config.get("digest"):
        source = str(config.get("source") or "").rsplit("/", 1)[-1]
        rows.append(["Configuration", f"{source or 'configuration'}: sha256 {config['digest']}"])
    evidence = []
    for entry in journal.entries(record.id, kinds=["action"]):
        detail = entry.detail if isinstance(entry.detail, Mapping) else {}
        evidence.append({
            "action": str(detail.get("action") or ""), "when": str(detail.get("when") or ""),
            "request": str(detail.get("request") or entry.step or ""),
            "side": str(detail.get("side") or ""), "exit_code": detail.get("exit_code"),
            "ok": bool(detail.get("ok")), "at": utc_text(entry.ts),
            "stdout": str(detail.get("stdout") or "")[-EVIDENCE_KEPT:],
            "stderr": str(detail.get("stderr") or "")[-EVIDENCE_KEPT:]})
    return evidence


def _session_of_run(journal: Any, facts: Mapping[str, Any]) -> int | None:
    """The session a run that reported no result wrote to: the system's last session, if
    it has an entry from the run's start on and is the run's change or operator's (read-only)."""
    sessions = journal.sessions()
    if not sessions:
        return None
    last = sessions[-1]
    entries = journal.entries(last.id)
    started = str(facts.get("started") or "")
    if not entries or not started or _instant(entries[-1].ts) < _instant(started):
        return None
    ours = {str(facts.get("change_id") or ""), str(facts.get("operator") or "")} - {""}
    return int(last.id) if ours & {last.change_id, last.operator} or any(
        isinstance(e.detail, Mapping) and isinstance(e.detail.get("handover"), Mapping)
        and ours & set((e.detail["handover"].get("to") or {}).values())
        for e in entries) else None


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def record_facts(facts: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    """The summary block and the evidence of one archived run (read-only), as JSON:
    ``{"summary": [[label, text], …], "evidence": [action output, …]}``.

    FACTS are the archive's facts of the run (change, system, operator, account, outcome,
    outage, started/ended, parameters); RESULT the runbook's last result. The session the
    result names (``session``) is read from the system's journal, when it has one: reason,
    who handed over to whom, packages with their digests, the configuration's digest and
    each custom action's output (masked when journaled, bounded here)."""
    given = facts.get("parameters")
    params: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    rows: list[list[str]] = []

    def row(label: str, value: Any) -> None:
        text = _shown(value)
        if text:
            rows.append([label, text])

    row("Change", facts.get("change_id") or "-")
    row("System", facts.get("system"))
    who = str(facts.get("operator") or "-")
    row("Operator", f"{who} (account {facts.get('account') or 'unknown'})")
    for key, label in _GOVERNANCE:
        value = result.get(key) or facts.get(key)
        if value and label not in {r[0] for r in rows}:
            row(label, value)
    row("Outcome", facts.get("outcome"))
    if facts.get("outage_s") is not None:
        outages = result.get("outages")
        each = (f" ({len(outages)} outage{'s' * (len(outages) != 1)}: {_shown(outages)} s)"
                if isinstance(outages, list) and outages else "")
        row("Outage", f"{_shown(facts.get('outage_s'))} s{each}")
    if result.get("lost_transactions") is not None:
        acked = result.get("acknowledged")
        row("Lost transactions", f"{result['lost_transactions']}"
            + (f" of {acked} acknowledged" if acked is not None else ""))
    row("Decisions", result.get("decisions"))
    row("Started", utc_text(facts.get("started")))
    row("Ended", utc_text(facts.get("ended")))
    evidence: list[dict[str, Any]] = []
    # the run's own session, else the one a read-only run (status) looked at, else (a run
    # that failed before its result) the session it wrote to, found in the journal
    session = result.get("session", result.get("observed_session"))
    named = isinstance(session, int) and not isinstance(session, bool)
    if named or (not result and facts.get("operator")):
        journal = _journal_of(str(facts.get("system") or ""))
        if journal is not None:
            try:
                session = session if named else _session_of_run(journal, facts)
                if session is not None:
                    evidence = _session_rows(journal, session, rows)
            except Exception:  # a record is kept even if its journal cannot be read
                rows.append(["Session", f"{session} (its journal could not be read)"])
            finally:
                journal.close()
    if not any(r[0] == "Reason" for r in rows):
        row("Reason", params.get("reason"))
    row("Parameters", "; ".join(f"{k} = {_shown(v)}" for k, v in params.items()))
    return {"summary": rows, "evidence": evidence}
