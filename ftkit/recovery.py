"""A lost journal recovered from the system's own state (``ftkit recover``).

The journal is the session's record; when it is lost (deleted, a disk replaced) the system
still shows where the upgrade stands: split or not, merged or not, which side serves the
applications, which Active Upgrade request it is part way through
(:attr:`~ftkit.model.SystemState.unfinished`) and how far each RDR resync has got.
:func:`seen` reads that (pure); :func:`adopt` starts a journal session in the state it
shows, so that the abort runbook or the upgrade runbook takes the system to a correct end
from wherever it stands:

==================================  ===========================  ==========================
the system shows                    recovered session            the way on
==================================  ===========================  ==========================
split, not merged                   Split / Ready                upgrade runbook (merge:
                                                                 proceed or abort), or the
                                                                 abort runbook
ExecuteMerge part way               PrepareMerge / Broken at     upgrade runbook (broken:
                                    ExecuteMerge                 retry), or abort runbook
merged                              Merge / Ready                upgrade runbook (commit:
                                                                 commit or abort), or abort
Commit's resync running             Commit / Broken at Commit    upgrade runbook (broken:
                                                                 retry), then Finish; Abort
                                                                 is refused
Commit's resync done, no Finish     Commit / Ready               upgrade runbook (Finish)
Abort part way (resync running)     Abort / Broken at Abort      abort runbook (it retries
                                                                 the Abort, then Finish)
Abort done, no Finish               Abort / Ready                abort runbook (Finish)
duplex, upgrade leftovers (a        Commit or Abort (the         as Commit or Abort above
resync running, the startup types   running side's software
the split saved), nothing           says which)
unfinished
healthy duplex Idle                 refused: nothing to recover  a new upgrade
==================================  ===========================  ==========================

A request the system is part way through is recovered Broken at that request (reason
"interrupted"), as a killed process's is: Retry carries it on from where the system
stands (every driver request is resumable), Abort aborts, and the operator says which.
The decisions the state implies (a split system was split on purpose) are journaled as
decided, source ``recovered``, so that nobody is asked them again; the others are asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ftkit.config import UpgradeConfig
from ftkit.drivers import Driver, connect
from ftkit.errors import FtkitError, TransitionError
from ftkit.flow import Question, answer_to
from ftkit.journal import Journal, Note
from ftkit.model import (
    MirrorState,
    ModuleState,
    OperationalState,
    Request,
    SystemState,
    UpgradeState,
)
from ftkit.process import Session

__all__ = ["Seen", "adopt", "seen", "unrecorded"]

S = UpgradeState


@dataclass(frozen=True)
class Seen:
    """Where an Active Upgrade stands, as the system itself shows it (pure data).

    ``state`` is the upgrade state a recovered session stands in (None: there is nothing
    to recover); ``interrupted`` the request the system is part way through (the session
    is Broken there); ``what`` one line saying what shows it; ``way_on`` what to run next;
    ``decided`` the decisions the state implies; ``facts`` what was read; ``upgrade`` the
    decisions a run of the upgrade runbook needs from here (None: it is not a way on) and
    ``abort`` whether the abort runbook is one."""

    state: UpgradeState | None
    what: str
    way_on: str
    interrupted: str | None = None
    decided: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    upgrade: str | None = None  # the decisions an upgrade runbook run needs (None: not a way)
    abort: bool = False  # the abort runbook is a way on


def _resyncs(st: SystemState) -> dict[str, int]:
    """Each resyncing mirror's progress in whole percent."""
    return {m.name: int(m.progress * 100) for m in st.mirrors.values()
            if m.state is MirrorState.RESYNCING}


def _facts(st: SystemState) -> dict[str, Any]:
    software: dict[str, dict[str, str]] = {}
    try:
        boot = st.boot_disk()
        software = {str(e): dict(m.software) for e, m in sorted(boot.members.items())}
    except LookupError:
        pass
    return {
        "split": st.split, "merged": st.merged, "production": st.production,
        "apps_on": st.apps_on, "apps_duplex": st.apps_duplex,
        "unfinished": st.unfinished.value if st.unfinished is not None else None,
        "resync_percent": _resyncs(st), "staged": sorted(st.staged),
        "critical": list(st.critical), "system_disk_software": software,
        "modules_down": sorted(m.id for m in st.modules.values()
                               if m.state is not ModuleState.ONLINE),
    }


def _apps(st: SystemState) -> str:
    if st.apps_on is None:
        return "the applications are down"
    if st.apps_duplex and not st.split:
        return "the applications run on the duplexed system"
    return f"the applications run on enclosure {st.apps_on}"


def _upgraded(st: SystemState) -> bool:
    """True when the side serving the applications has every staged package's version on
    its system disk (a commit leaves the new software; an abort the original)."""
    wanted = [label.rsplit(" ", 1) for label in st.staged if " " in label]
    if not wanted:
        return False
    try:
        members = st.boot_disk().members
    except LookupError:
        return False
    side = members.get(st.apps_on if st.apps_on is not None else -1)
    return side is not None and all(side.software.get(n) == v for n, v in wanted)


# the answers a state implies (the lost journal's, as far as the system shows them): the
# answer of each question that leads to the request that brought the system there
_SPLIT = {Question.SPLIT.value: answer_to(Question.SPLIT, Request.EXECUTE_SPLIT)}
_MERGED = {**_SPLIT, Question.MERGE.value: answer_to(Question.MERGE, Request.PREPARE_MERGE)}
_COMMITTED = {**_MERGED, Question.COMMIT.value: answer_to(Question.COMMIT, Request.COMMIT)}


def _way(upgrade: str | None, abort: bool, note: str = "") -> str:
    """The way on, in words: the upgrade runbook with the decisions UPGRADE (None: not a
    way on) and/or the abort runbook."""
    note = f" ({note})" if note else ""
    ways = []
    if upgrade is not None:
        ways.append(f"the upgrade runbook with decisions {upgrade}{note}")
    if abort:
        ways.append("the abort runbook" + ("" if upgrade is not None else note))
    return "; or ".join(ways)


def seen(st: SystemState) -> Seen:
    """Where an Active Upgrade stands on the system whose status is ST; pure (read-only)."""
    facts = _facts(st)
    resync = _resyncs(st)
    at = ", ".join(f"{name} {pct} %" for name, pct in resync.items())
    unfinished = st.unfinished
    leftovers = bool(st.saved_startup) or bool(resync and st.staged)
    if unfinished in (Request.COMMIT, Request.ABORT) or (not st.split and leftovers):
        if unfinished is None:  # nothing named unfinished: the serving side says which
            unfinished = Request.COMMIT if _upgraded(st) else Request.ABORT
        word = unfinished.value.lower()
        left = bool(resync) or st.split
        what = (f"the {word} is part way: RDR resync at {at}" if resync
                else f"the {word} is part way: the system is still split" if st.split
                else f"the {word}'s RDR resync is complete; Finish was not run")
        if st.unfinished is None:
            what = f"duplex, {what}, nothing named unfinished"
        what += f"; {_apps(st)}"
        if unfinished is Request.COMMIT:
            upgrade = "{broken: retry}" if left else "{}"
            return Seen(S.COMMIT, what, _way(upgrade, False, "Abort is refused once Commit "
                                             "has started" if left else "it runs Finish"),
                        Request.COMMIT if left else None, dict(_COMMITTED), facts, upgrade,
                        False)
        return Seen(S.ABORT, what, _way(None, True, "it carries the abort on, then Finishes"
                                        if left else "it runs Finish"),
                    Request.ABORT if left else None, dict(_SPLIT), facts, None, True)
    if unfinished is Request.EXECUTE_MERGE:
        upgrade = "{broken: retry, commit: commit}"
        return Seen(S.PREPARE_MERGE, f"the merge is part way; {_apps(st)}",
                    _way(upgrade, True, "Retry carries the merge on"), Request.EXECUTE_MERGE,
                    dict(_MERGED), facts, upgrade, True)
    if st.split and st.merged:
        upgrade = "{commit: commit}"
        return Seen(S.MERGE, f"merged: {_apps(st)} (the Upgrade side), the original side "
                    f"(enclosure {st.production}) kept for an abort",
                    _way(upgrade, True, "or commit: abort"), None, dict(_MERGED), facts,
                    upgrade, True)
    if st.split:
        upgrade = "{merge: proceed, commit: commit}"
        return Seen(S.SPLIT, f"split: the Production side is enclosure {st.production}; "
                    f"{_apps(st)}",
                    _way(upgrade, True, "or merge: abort; it checks the Install first"),
                    None, dict(_SPLIT), facts, upgrade, True)
    why = ("a healthy duplex Idle system" if st.duplex and not resync
           else f"duplex with an RDR resync at {at} and nothing of an upgrade" if resync
           else "Idle, not duplex (a module is down): repair it")
    return Seen(None, why, "start a new upgrade", None, {}, facts)


def unrecorded(st: SystemState, target: str) -> TransitionError | None:
    """The error to raise when the system whose status is ST shows an upgrade under way
    but its journal has no unfinished session (the caller found none): the way on is
    ``ftkit recover`` first. None when the system shows none. Pure (read-only)."""
    found = seen(st)
    if found.state is None:
        return None
    return TransitionError(
        f"{target} shows an upgrade under way ({found.what}) but its journal has no "
        "unfinished session: the journal was lost",
        f"run ftkit recover {target} --operator NAME --reason WHY (a session in the state "
        "the system shows), then this runbook again")


def adopt(system: str | Driver, *, operator: str, reason: str) -> Session:
    """Start a journal session from the system's own state when its journal was lost
    (``ftkit recover``), in the state :func:`seen` reads: journaled as recovered, with
    what was seen and the decisions that state implies (source ``recovered``), so that the
    abort runbook or the upgrade runbook takes the system to a correct end. Refused, with
    nothing changed, when the journal does not verify (tampered), has an unfinished
    session, or the system shows no upgrade to recover. One transaction."""
    driver = connect(system) if isinstance(system, str) else system
    st = driver.status()
    journal = Journal.of(driver)
    try:
        journal.verify()  # a tampered journal is never added to
    except FtkitError:
        journal.close()
        raise
    if journal.current_session() is not None:
        journal.close()
        raise TransitionError(f"{driver.target} has an unfinished session in its journal",
                              "resume it or abort it; recover is for a lost journal")
    found = seen(st)
    if found.state is None:
        journal.close()
        raise TransitionError(f"{driver.target} shows no upgrade under way ({found.what}): "
                              "there is nothing to recover", found.way_on)
    broken = found.interrupted
    now = float(st.now)
    decisions = [{"name": name, "answer": answer, "who": "unknown (journal lost)",
                  "why": f"implied by the system's state ({found.state.value})",
                  "source": "recovered", "where": f"ftkit recover by {operator}",
                  "sim_time": now}
                 for name, answer in found.decided.items()]
    state = f"{found.state.value} / " + (f"Broken at {broken}" if broken
                                          else OperationalState.READY.value)
    record = journal.adopt_session(
        begin={"change_id": "", "operator": operator, "reason": f"recovered: {reason}",
               "data": {"recovered": found.facts, "sim_start": now}},
        seen=Note("warning", f"journal lost; recovered from the system's own state: "
                  f"{found.what}", detail={"recovered": found.facts}, sim_time=now),
        decisions=decisions, upgrade_state=found.state.value,
        operational_state=(OperationalState.BROKEN if broken else OperationalState.READY).value,
        broken_step=broken,
        broken_reason=f"interrupted: {found.what}" if broken else None,
        message=f"recovered from the system's own state: {state}; the way on: "
                f"{found.way_on}")
    config = UpgradeConfig(description="recovered session", system_disks=())
    return Session(driver=driver, journal=journal, config=config, packages=[],
                   operator=operator, reason=reason, record=record, resumed=True)
