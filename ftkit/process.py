"""The Active Upgrade process: a declared state machine over a driver, kept in the journal.

Requests move the session through the vendor's upgrade states::

    Idle --PrepareSplit--> PrepareSplit --ExecuteSplit--> Split
    Split --PrepareMerge--> PrepareMerge --ExecuteMerge--> Merge
    Merge --Commit--> Commit --Finish--> Idle
    {PrepareSplit, Split, PrepareMerge, Merge} --Abort--> Abort --Finish--> Idle

Every request is written to the journal as an *intent* before anything is done and as
an *outcome* (with the new state, in the same transaction) afterwards.  A failure
never advances the state: the session goes Broken at the failing step, and offers
Retry (run the step again) or Abort.  A process killed half way leaves an intent with
no outcome; the next :func:`open_session` of that system finds it and :meth:`resume`
runs the step again — driver requests are resumable, and custom actions that already
succeeded are not run twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ftkit import engine, flow, results
from ftkit.checks import CheckResult, run_checks
from ftkit.config import UpgradeConfig, load_config
from ftkit.decisions import Decision, DecisionProvider, account, check_soak_minutes
from ftkit.drivers import Driver, Outage, Progress, clock_of, connect
from ftkit.errors import FtkitError, TransitionError
from ftkit.flow import DECISIONS, DONE, RECOVERY, REQUESTS, Kind, Next, Question, next_step
from ftkit.journal import Entry, Journal, SessionRecord
from ftkit.model import (
    OperationalState,
    PartnerState,
    Request,
    SystemState,
    UpgradeState,
)
from ftkit.packages import UpdatePackage, load_packages
from ftkit.redact import register_env_secrets
from ftkit.window import Controls

__all__ = [
    "DECISIONS",
    "REQUESTS",
    "Plan",
    "Session",
    "handover_refusal",
    "nothing_to_install",
    "observe",
    "open_session",
    "plan",
    "standing",
]

S = UpgradeState


@dataclass
class Plan:
    """What an upgrade would do, step by step, with nothing changed (plan mode)."""

    steps: list[dict[str, Any]]
    checks: list[CheckResult]
    decisions: list[Decision]

    def dataframe(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.steps)


Listener = Callable[[Entry], None]


@dataclass(frozen=True)
class LogFacts:
    """What the process reads from a session's activity log: the answers to its questions
    (``broken`` aside), the requests that succeeded, the minutes soaked and the
    transactions acknowledged meanwhile, and whether a soak stopped at the change
    window's end."""

    answers: dict[str, str]
    succeeded: frozenset[str]
    soak_minutes: float = 0.0
    soak_served: int = 0
    window_end: bool = False

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> LogFacts:
        """The facts of ENTRIES (a session's log, in order); one pass, read-only."""
        return cls({}, frozenset()).then(entries)

    def then(self, entries: Iterable[Entry]) -> LogFacts:
        """The facts of the log these facts are of, followed by ENTRIES (read-only)."""
        answers = dict(self.answers)
        succeeded = set(self.succeeded)
        minutes, served, window_end = self.soak_minutes, self.soak_served, self.window_end
        for entry in entries:
            kind = entry.kind
            detail = entry.detail if isinstance(entry.detail, dict) else {}
            if kind == "decision":
                if detail.get("name") in DECISIONS:
                    answers[str(detail["name"])] = str(detail.get("answer", ""))
            elif kind == "outcome":
                if entry.ok:
                    succeeded.add(entry.step)
            elif kind == "info":
                if "soak_minutes" in detail:
                    minutes += float(detail["soak_minutes"])
                    served += int(detail.get("transactions", 0))
            elif kind == "warning" and detail.get("window_end"):
                window_end = True
        return LogFacts(answers, frozenset(succeeded), minutes, served, window_end)

    def soaked(self, planned: float) -> bool:
        """True once PLANNED minutes were soaked (none planned: at once), or a soak
        stopped at the change window's end."""
        return planned <= 0 or self.soak_minutes >= planned or self.window_end


@dataclass
class Session:
    """One Active Upgrade session of one system (see :func:`open_session`).

    What a face (runbook cell, widget, CLI, campaign worker) needs: where the session
    stands (:meth:`next`, :meth:`due`, :meth:`needs_decision`, the states), the activity
    log (:meth:`entries`), the decisions, :meth:`costs`, :meth:`facts`, :meth:`result`,
    one observer channel for displays (:meth:`subscribe`) — all read-only — and ONE way
    to change anything: :meth:`advance` (:func:`ftkit.engine.advance`). :meth:`run` and
    :meth:`abort_and_finish` are loops of it. Faces never touch the journal or the driver.
    """

    driver: Driver
    journal: Journal
    config: UpgradeConfig
    packages: list[UpdatePackage]
    change_id: str = ""
    operator: str = ""
    reason: str = ""
    progress: Progress | None = None
    record: SessionRecord | None = None
    resumed: bool = False
    last_error: FtkitError | None = field(default=None, repr=False)
    """Why this run stopped (a failed request or decision, a refused check), if it did:
    later steps of the run are not due, and the result says the run failed."""
    paused: Decision | None = field(default=None, repr=False)  # this run paused on purpose
    soak_minutes: float = 0.0  # this run's soak before the question that soaks first
    driving: bool = field(default=False, repr=False)  # run() drives: it syncs at its end
    driving_at_once: bool = field(default=False, repr=False)  # …with answers given already
    _listeners: list[Listener] = field(default_factory=list, repr=False)
    # (the log's length and last hash, what it says): LogFacts read once per log state
    _facts: tuple[tuple[int, str], LogFacts] | None = field(default=None, init=False,
                                                             repr=False, compare=False)

    def __post_init__(self) -> None:
        self.journal.subscribe(self._heard)
        register_env_secrets(self.config.secret_env)  # masked wherever they would show

    # --- the one way to change anything ------------------------------------------------

    def advance(self, decider: DecisionProvider | None = None, *,
                request: Request | str | None = None, expect: Next | None = None
                ) -> engine.Advanced:
        """Advance the session by one step: :func:`ftkit.engine.advance`."""
        return engine.advance(self, decider, request=request, expect=expect)

    def run(self, provider: DecisionProvider, *, soak_minutes: float = 0.0) -> str:
        """Advance to the end with PROVIDER's decisions (soaking SOAK_MINUTES before the
        commit decision); returns the outcome, or the upgrade state where a declared pause
        stopped it. Resumes where the session stands."""
        self.soak_minutes = check_soak_minutes(soak_minutes)  # before anything changes
        self.last_error = self.paused = None  # a new run
        self.driving = True
        self.driving_at_once = bool(getattr(provider, "at_once", False))
        try:
            while True:
                done = self.advance(provider)
                if done.did is Kind.DONE:
                    assert self.record is not None
                    return str(self.record.outcome)
                if done.did is Kind.PAUSED:
                    return self.upgrade_state.value
        finally:
            self.driving = self.driving_at_once = False
            if not self.done:
                engine.release(self)  # the run stops here; the next one may take over
            self.journal.sync()  # everything journaled is durable before the run returns

    def carry_on(self) -> list[engine.Advanced]:
        """Advance up to the next question or the end (soaking first where the flow soaks,
        up to this run's :attr:`soak_minutes`): what a runbook re-run does, from a button
        (Continue after a Retry). Returns what each step did."""
        self.last_error = self.paused = None
        did: list[engine.Advanced] = []
        while (step := self.advance()).did in (Kind.REQUEST, Kind.SOAK, Kind.BUSY):
            did.append(step)
        return did

    def abort_and_finish(self, *, who: str, why: str) -> str | None:
        """Abort the unfinished session and Finish it (the abort runbook): a loop of
        :meth:`advance`; returns the outcome, or None when there is no unfinished session
        (nothing is changed then). See :func:`ftkit.engine.abort_and_finish`."""
        return engine.abort_and_finish(self, who=who, why=why)

    def halt(self, error: FtkitError) -> None:
        """Stop this run here (a readiness check failed, a decision timed out…): later
        steps are not due and :meth:`result` reports the run failed. Changes nothing on
        the system or in the journal."""
        self.last_error = error

    def release(self) -> None:
        """Give up the controller lease; everything journaled is durable first."""
        engine.release(self)

    def close(self) -> None:
        """Release the lease and close the journal (the driver stays open)."""
        engine.release(self)
        self.journal.close()

    def readiness(self) -> list[CheckResult]:
        """The readiness check (a list of results; ``checks_frame`` makes it a table);
        changes nothing on the system, may run any number of times; journaled."""
        from ftkit.checks import summary

        results = run_checks(self.driver, self.config, self.packages,
                             in_session=self.record is not None,
                             stage_pending=self.upgrade_state is UpgradeState.IDLE)
        self.journal.log(self.record.id if self.record else None, "info",
                         f"readiness check: {summary(results)}",
                         step=Request.CHECK_READINESS, sim_time=self.now())
        return results

    # --- where it stands (read-only) ------------------------------------------------------

    @property
    def target(self) -> str:
        return self.driver.target

    @property
    def upgrade_state(self) -> UpgradeState:
        return UpgradeState(self.record.upgrade_state) if self.record else UpgradeState.IDLE

    @property
    def operational_state(self) -> OperationalState:
        if self.record is None:
            return OperationalState.READY
        return OperationalState(self.record.operational_state)

    @property
    def broken(self) -> tuple[str, str] | None:
        """``(step, reason)`` while Broken."""
        if self.record and self.record.broken:
            return self.record.broken_step or "", self.record.broken_reason or ""
        return None

    @property
    def started(self) -> bool:
        """True once the session has begun (PrepareSplit started)."""
        return self.record is not None

    @property
    def done(self) -> bool:
        """True once the session has ended (Finish ran): later runbook steps skip."""
        return self.record is not None and self.record.ended is not None

    def system(self) -> SystemState:
        """A snapshot of the whole system."""
        return self.driver.status()

    def now(self) -> float:
        """The system's clock, in seconds (simulated for ``sim://``)."""
        return clock_of(self.driver)

    def partner_state(self) -> PartnerState:
        """The other side's health as the running side sees it."""
        from ftkit.status import partner_state

        return partner_state(self.driver.status())

    def entries(self, *, kinds: Iterable[str] | None = None) -> list[Entry]:
        """This session's activity log, local and remote entries in order."""
        if self.record is None:
            return []
        return self.journal.entries(self.record.id, kinds=kinds)

    def decision(self, name: str) -> Decision | None:
        """The last decision ``name`` journaled in this session, else None."""
        found = None
        for entry in self.entries(kinds=["decision"]):
            detail = entry.detail if isinstance(entry.detail, dict) else {}
            if detail.get("name") == name:
                fields = Decision.__dataclass_fields__
                found = Decision(**{k: str(detail.get(k, "")) for k in fields})
        return found

    def decisions(self) -> list[Decision]:
        """The decisions of this session, one per question, in the declared order."""
        return [d for d in (self.decision(n) for n in (*DECISIONS, RECOVERY.name)) if d]

    def answers(self) -> dict[str, str]:
        """The journaled answers to the process's questions (``broken`` aside)."""
        return dict(self.log_facts().answers)

    def succeeded(self) -> set[str]:
        """The requests that have succeeded in this session."""
        return set(self.log_facts().succeeded)

    def soak_result(self) -> tuple[float, int]:
        """Minutes soaked on the merged system and the transactions acknowledged meanwhile."""
        facts = self.log_facts()
        return facts.soak_minutes, facts.soak_served

    def soaked(self) -> bool:
        """True once the session has soaked this run's :attr:`soak_minutes`, or a soak
        stopped at the change window's end."""
        return self.log_facts().soaked(self.soak_minutes)

    def log_facts(self) -> LogFacts:
        """What the process reads from this session's activity log (answers, requests
        succeeded, the soak), from one read of the journal; worked out again only once
        the log has grown (read-only)."""
        entries = self.entries()
        key = (len(entries), entries[-1].hash if entries else "")
        known = self._facts
        if known is not None and known[0] == key:
            return known[1]
        if known is not None and 0 < known[0][0] < key[0] and (
                entries[known[0][0] - 1].hash == known[0][1]):  # the log grew: read on
            facts = known[1].then(entries[known[0][0]:])
        else:
            facts = LogFacts.of(entries)
        self._facts = (key, facts)
        return facts

    @property
    def controls(self) -> Controls:
        """The change controls of this run: the configuration's ``[window]``, with the
        run's window parameters (:func:`open_session`) in place (read-only)."""
        return self.config.controls

    def standing(self) -> Next:
        """What the session needs next, from the journal and :mod:`ftkit.flow` alone
        (what :meth:`advance` does next)."""
        broken = self.broken
        facts = self.log_facts()
        return next_step(started=self.record is not None, ended=self.done,
                         state=self.upgrade_state, operational=self.operational_state.value,
                         broken_step=broken[0] if broken else None,
                         answers=dict(facts.answers), succeeded=facts.succeeded.__contains__,
                         soaked=facts.soaked(self.soak_minutes))

    def next(self) -> Next:
        """What this run does next: :meth:`standing`, or ``Kind.HALTED`` once the run
        stopped on an error (Broken aside: Retry/Abort), ``Kind.PAUSED`` once it paused."""
        if self.done:
            return DONE
        if self.last_error is not None and not self.broken:
            return Next(Kind.HALTED, getattr(self.last_error, "step", "") or "")
        if self.paused is not None:
            return Next(Kind.PAUSED, self.paused.name)
        return self.standing()

    def needs_decision(self, name: str) -> bool:
        """True when the session stands where ``name`` is decided and it is not decided yet
        (a re-run or a resumed session does not ask twice)."""
        return self.next() == Next(Kind.DECIDE, name)

    def due(self, request: str) -> bool:
        """True when ``request`` is the next thing to do from where the session stands: a
        request that is done, or that a decision ruled out, is not due."""
        if request not in REQUESTS:
            raise TransitionError(f"unknown request {request!r}",
                                  f"use one of: {', '.join(REQUESTS)}")
        return self.next() == Next(Kind.REQUEST, request)

    def costs(self, name: str) -> dict[str, list[tuple[Request, flow.Estimate]]]:
        """What each answer to question NAME (``broken`` too) runs up to the next question
        or the end, each request with its estimate, from the declared estimates and a look
        at the system: what a decision panel says a click costs."""
        st = self.driver.status()
        facts = {**plan_facts(st, self.config, self.packages), "merged": st.merged}
        if name == RECOVERY.name:
            return flow.recovery_leads_to(self.broken[0] if self.broken else "", facts)
        return {answer: flow.leads_to(name, answer, facts)
                for answer in DECISIONS[Question(name)].answers}

    def outages(self) -> list[Outage]:
        """Outages since this session started (measured from the transaction ledger)."""
        start = float((self.record.data if self.record else {}).get("sim_start", 0.0))
        return [o for o in self.driver.outages() if o.end is None or o.end > start]

    def facts(self) -> dict[str, Any]:
        """What the change record states about this session: :func:`ftkit.results.facts`."""
        return results.facts(self)

    def result(self, *, mode: str) -> Any:
        """The run's result for the archive: :func:`ftkit.results.result` (raises if the
        session did not end, or lost a transaction)."""
        return results.result(self, mode=mode)

    # --- the one observer channel (displays only) ------------------------------------------

    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(entry)`` after every journal entry of this system; returns an
        unsubscribe function. Widgets observe here; the engine never does (it reads the
        journal back). A callback that raises is logged and changes nothing."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    def _heard(self, entry: Entry) -> None:
        # a display refreshed on this entry sees the state it reports
        detail = entry.detail if isinstance(entry.detail, dict) else {}
        changes = entry.kind == "state" or "outcome" in detail or "change_id" in detail
        if changes and entry.session_id is not None and (
                self.record is None or entry.session_id == self.record.id):
            self.record = self.journal.written(entry.session_id)  # what it committed
        for callback in list(self._listeners):
            callback(entry)


def _load(config: UpgradeConfig | str | os.PathLike[str],
          packages: Iterable[UpdatePackage | str | os.PathLike[str]], *,
          window_start: str = "", window_end: str = ""
          ) -> tuple[UpgradeConfig, list[UpdatePackage]]:
    cfg = config if isinstance(config, UpgradeConfig) else load_config(config)
    if window_start or window_end:  # the run's window in place of the configuration's
        cfg = replace(cfg, controls=cfg.controls.with_window(window_start, window_end))
        cfg.controls.the_window()  # a bad window is refused before anything changes
    items = list(packages)
    paths = [Path(p) for p in items if not isinstance(p, UpdatePackage)]
    loaded = load_packages(paths) if paths else []
    return cfg, [p for p in items if isinstance(p, UpdatePackage)] + loaded


def nothing_to_install(status: SystemState | None, config: UpgradeConfig,
                       packages: Sequence[UpdatePackage]) -> tuple[str, str] | None:
    """(why, remedy) when no package is given, or every one of PACKAGES is installed
    already on every system disk of STATUS (None: the first only): an upgrade would split,
    merge — an outage — and commit for no change. Else None. Pure: the PrepareSplit guard
    and ``ftkit run``'s check before a kernel starts say the same."""
    if not packages:
        return ("nothing to install: no update package was given; an upgrade would only "
                "cost an outage", "name the update packages (-p packages [FILE.toml, …])")
    if status is None:
        return None
    disks = [m for m in status.mirrors.values()
             if m.name in set(config.system_disks)] or [status.boot_disk()]
    pending = [p for p in packages
               if {mem.software.get(p.name) for d in disks for mem in d.members.values()}
               != {p.version}]
    if not pending:
        return (f"nothing to install: {', '.join(p.label for p in packages)} already "
                "installed on every system disk; an upgrade would only cost an outage",
                "leave the installed packages out, or name newer ones")
    return None


def standing(target: str) -> dict[str, Any]:
    """Where TARGET's unfinished session stands, as :func:`ftkit.flow.check_path`'s
    keywords: ``decided`` (the answers it journaled) and ``broken`` (its Broken step, or
    None); empty when it has none, or the system cannot be reached from here. Read-only:
    what an auto run's decisions are checked against before anything changes."""
    try:
        driver = connect(target)
    except FtkitError:
        return {}
    try:
        journal = Journal.find(driver)
        if journal is None:
            return {}
        with journal:
            record = journal.current_session()
            if record is None:
                return {}
            decided = {str(e.detail["name"]): str(e.detail["answer"])
                       for e in journal.entries(record.id, kinds=["decision"])
                       if isinstance(e.detail, dict) and "name" in e.detail}
            return {"decided": decided,
                    "broken": (record.broken_step or "?") if record.broken else None}
    finally:
        driver.close()


def handover_refusal(record: SessionRecord, target: str, *, change_id: str,
                     operator: str) -> TransitionError | None:
    """Why resuming RECORD, TARGET's unfinished session, as CHANGE_ID by OPERATOR is a
    handover (the error to raise unless it is asked for explicitly), or None when it is
    the same change and operator. Pure: ``open_session`` and ``ftkit run``'s check before
    a kernel starts say the same."""
    differs = [f"{what} {mine!r} (the session's is {theirs!r})"
               for what, mine, theirs in (("change", change_id, record.change_id),
                                          ("operator", operator, record.operator))
               if mine and theirs and mine != theirs]
    if not differs:
        return None
    return TransitionError(
        f"session {record.id} of {target} belongs to change {record.change_id or '-'} run "
        f"by {record.operator or 'unknown'}; resuming it as {', '.join(differs)} is a "
        "handover",
        "give the session's change id and operator, or take it over explicitly with "
        "-p handover True (journaled with both)")


def open_session(system: str | Driver, config: UpgradeConfig | str | os.PathLike[str],
                 packages: Iterable[UpdatePackage | str | os.PathLike[str]] = (), *,
                 change_id: str = "", operator: str = "", reason: str = "",
                 progress: Progress | None = None, handover: bool = False,
                 window_start: str = "", window_end: str = "",
                 soak_minutes: float = 0.0) -> Session:
    """The session of ``system``: the unfinished one if there is one (resumed, never a
    second); else, when CHANGE_ID names a session that ended, that one (a rerun of a
    finished change reports it and runs nothing); else a new one that starts at
    PrepareSplit. The journal is verified first: a tampered one is refused.

    Resuming the unfinished session under another change id or operator is a handover:
    refused (TransitionError, nothing changed) unless ``handover`` is True, and then
    journaled with both.

    WINDOW_START and WINDOW_END (the runbook's parameters) give the change window in place
    of the configuration's ``[window]`` (ftkit/window.py); SOAK_MINUTES is the soak this
    run plans (what the merge's fit to the window counts)."""
    cfg, pkgs = _load(config, packages, window_start=window_start, window_end=window_end)
    driver = connect(system) if isinstance(system, str) else system
    journal = Journal.of(driver)
    journal.verify()  # a tampered journal is never resumed (nor added to)
    while True:
        record = journal.current_session()
        if record is None or _controlled(journal, driver, record, change_id=change_id,
                                         operator=operator, handover=handover):
            break
        # the run we read it from ended it before we took the lock: read again
    if record is None and change_id:
        # a rerun of a change that ended is reported, never run again
        ended = [s for s in journal.sessions() if s.change_id == change_id and s.ended]
        if ended:
            session = Session(driver=driver, journal=journal, config=cfg, packages=pkgs,
                              change_id=change_id, operator=operator, reason=reason,
                              progress=progress, record=ended[-1],
                              soak_minutes=soak_minutes)
            journal.log(None, "info", f"change {change_id} ran already: session "
                        f"{ended[-1].id} ended {ended[-1].outcome}; nothing is run again",
                        sim_time=session.now())
            return session
    session = Session(driver=driver, journal=journal, config=cfg, packages=pkgs,
                      change_id=change_id, operator=operator, reason=reason,
                      progress=progress, record=record, resumed=record is not None,
                      soak_minutes=check_soak_minutes(soak_minutes))
    if record is not None:
        if handover_refusal(record, driver.target, change_id=change_id,
                            operator=operator) is not None:
            journal.log(record.id, "warning",
                        f"handover of session {record.id}: change {record.change_id or '-'} / "
                        f"{record.operator or 'unknown'} → change {change_id or '-'} / "
                        f"{operator or 'unknown'} (account {account()})",
                        detail={"handover": {"from": {"change_id": record.change_id,
                                                      "operator": record.operator},
                                             "to": {"change_id": change_id,
                                                    "operator": operator},
                                             "account": account()}},
                        sim_time=session.now())
        journal.log(record.id, "info",
                    f"session {record.id} (change {record.change_id or '-'}) reopened by "
                    f"{operator or 'unknown'} in {record.upgrade_state}/"
                    f"{record.operational_state}", sim_time=session.now())
    return session


def _controlled(journal: Journal, driver: Driver, record: SessionRecord, *, change_id: str,
                operator: str, handover: bool) -> bool:
    """Take the controller lock of RECORD's unfinished session (a handover refused first,
    unless HANDOVER): True when it is still unfinished once held; False, the lock given back,
    when the run that held it ended it meanwhile. A refusal closes the journal and raises;
    nothing is written into the session before this returns True."""
    refusal = handover_refusal(record, driver.target, change_id=change_id, operator=operator)
    try:
        if refusal is not None and not handover:
            raise refusal
        engine.claim(journal, operator=operator, change_id=change_id)
    except FtkitError:
        journal.close()
        raise
    now = journal.current_session()
    if now is not None and now.id == record.id:
        return True
    journal.release()
    return False


def observe(system: str | Driver) -> Session:
    """A look at ``system``'s session for status displays: the unfinished one, else the
    last one, else none. Writes nothing (unlike :func:`open_session`, which journals the
    reopening); call no request on it: it has no configuration or packages."""
    driver = connect(system) if isinstance(system, str) else system
    journal = Journal.of(driver)
    sessions = journal.sessions()
    record = journal.current_session() or (sessions[-1] if sessions else None)
    config = UpgradeConfig(description="status view (no configuration)", system_disks=())
    return Session(driver=driver, journal=journal, config=config, packages=[], record=record)


def plan_facts(st: SystemState, config: UpgradeConfig,
               packages: list[UpdatePackage]) -> dict[str, Any]:
    """The figures the declared estimates read, from a read-only look at the system."""
    svc = [st.services[c] for c in config.critical_services if c in st.services]
    restart_s = max((s.stop_s for s in svc), default=0) + 10 + max(
        (s.start_s for s in svc), default=0)
    total_gb = sum(m.size_gb for m in st.mirrors.values())
    return {
        "packages": [(p.label, p.duration_min) for p in packages],
        "needs_reboot": any(p.needs_reboot for p in packages),
        "merge_outage_s": restart_s,
        "restart_outage_s": restart_s,
        "resync_min": total_gb * 1024 / 250 / 60,
        # an abort once split resynchronises the Upgrade side's disks from the Production
        # side's, as long as a commit's resync; before the split there is nothing to resync
        "upgrade_resync_min": total_gb * 1024 / 250 / 60,
        "split": st.split,
    }


def plan(system: str | Driver, config: UpgradeConfig | str | os.PathLike[str],
         packages: Iterable[UpdatePackage | str | os.PathLike[str]] = (), *,
         provider: DecisionProvider, window_start: str = "", window_end: str = ""
         ) -> Plan:
    """What an upgrade would do, from a read-only look at the system; changes nothing.
    Its readiness check shows the change window (WINDOW_START, WINDOW_END in place of the
    configuration's) and whether the plan fits it."""
    cfg, pkgs = _load(config, packages, window_start=window_start, window_end=window_end)
    driver = connect(system) if isinstance(system, str) else system
    checks = run_checks(driver, cfg, pkgs, stage_pending=True)
    decisions = [provider.decide(name) for name in DECISIONS]
    answers = {d.name: d.answer for d in decisions}
    steps, _stop = flow.walk(answers, plan_facts(driver.status(), cfg, pkgs))
    return Plan(steps, checks, decisions)
