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

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftkit import flow
from ftkit.actions import run_actions, succeeded
from ftkit.checks import CheckResult, failed, merge_checks, run_checks
from ftkit.config import UpgradeConfig, load_config
from ftkit.decisions import Decision, DecisionProvider, account, check_soak_minutes
from ftkit.drivers import Driver, Outage, Progress, connect
from ftkit.errors import (
    DecisionError,
    FtkitError,
    StepFailedError,
    TransitionError,
)
from ftkit.flow import DECISIONS, RECOVERY, REQUESTS, Next, RequestSpec, next_step, requests_from
from ftkit.home import ftkit_home
from ftkit.journal import Entry, Journal, Note, SessionRecord
from ftkit.model import ModuleState, OperationalState, PartnerState, SystemState, UpgradeState
from ftkit.packages import UpdatePackage, ensure_supported, load_packages
from ftkit.redact import register_env_secrets

__all__ = [
    "DECISIONS",
    "REQUESTS",
    "Plan",
    "RequestSpec",
    "Session",
    "adopt",
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


@dataclass
class Session:
    """One Active Upgrade session of one system (see :func:`open_session`).

    What a face (runbook widget, CLI, fleet controller) needs is offered here: where the
    session stands (:meth:`next`, :meth:`due`, :meth:`needs_decision`), the requests, the
    decisions, :meth:`resume_with`, :meth:`abort_and_finish`, :meth:`facts` and
    :meth:`result`, the activity log (:meth:`entries`) and one observer channel
    (:meth:`subscribe`). Faces never touch the journal or the driver themselves.
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
    _listeners: list[Listener] = field(default_factory=list, repr=False)
    _came_from: UpgradeState = field(default=UpgradeState.IDLE, repr=False)
    last_error: FtkitError | None = field(default=None, repr=False)
    paused: Decision | None = field(default=None, repr=False)  # this run paused on purpose
    """Why this run stopped (a failed request or decision, a refused check), if it did:
    later steps of the run are not due, and the result says the run failed."""
    soak_minutes: float = 0.0  # this run's soak before the commit decision (carry_on's)
    _notes: list[Note] = field(default_factory=list, repr=False)  # for the step's outcome
    _decided: Decision | None = field(default=None, repr=False)  # for the next intent
    _driving: bool = field(default=False, repr=False)  # run() drives: it syncs at its end

    def __post_init__(self) -> None:
        self.journal.subscribe(self._heard)
        register_env_secrets(self.config.secret_env)  # masked wherever they would show

    # --- what the operator sees ------------------------------------------------------

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

    def system(self) -> SystemState:
        """A snapshot of the whole system (read-only)."""
        return self.driver.status()

    def now(self) -> float:
        """The system's clock, in seconds (simulated for ``sim://``); read-only."""
        return float(self.driver.status().now)

    def partner_state(self) -> PartnerState:
        """The other side's health as the running side sees it."""
        from ftkit.status import partner_state

        return partner_state(self.driver.status())

    def apps_side(self) -> str:
        """Which side runs the critical applications, in the operator's words."""
        st = self.driver.status()
        if st.apps_on is None:
            return "nowhere (outage)"
        if st.apps_duplex:
            return "duplex system"
        role = st.sides[st.apps_on].role
        label = "Upgrade" if st.merged else role.value
        return f"{label} side (enclosure {st.apps_on})"

    def summary(self) -> dict[str, Any]:
        """Upgrade, operational and partner state in one dict (read-only)."""
        broken = self.broken
        return {
            "system": self.target,
            "upgrade_state": self.upgrade_state.value,
            "operational_state": self.operational_state.value,
            "broken_step": broken[0] if broken else "",
            "broken_reason": broken[1] if broken else "",
            "partner_state": self.partner_state().value,
            "applications": self.apps_side(),
            "session": self.record.id if self.record else None,
        }

    @property
    def started(self) -> bool:
        """True once the session has begun (PrepareSplit started); read-only."""
        return self.record is not None

    def soak_due(self) -> bool:
        """True when the next thing is a decision the flow soaks before (commit)."""
        nxt = self.next()
        return nxt.kind == "decide" and DECISIONS[nxt.name].before == "soak"

    @property
    def done(self) -> bool:
        """True once the session has ended (Finish ran): later runbook steps skip."""
        return self.record is not None and self.record.ended is not None

    def entries(self, *, kinds: Iterable[str] | None = None) -> list[Entry]:
        """This session's activity log, local and remote entries in order (read-only)."""
        if self.record is None:
            return []
        return self.journal.entries(self.record.id, kinds=kinds)

    def decision(self, name: str) -> Decision | None:
        """The last decision ``name`` journaled in this session, else None (read-only)."""
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

    def _answers(self) -> dict[str, str]:
        answers: dict[str, str] = {}
        for entry in self.entries(kinds=["decision"]):
            detail = entry.detail if isinstance(entry.detail, dict) else {}
            if detail.get("name") in DECISIONS:
                answers[str(detail["name"])] = str(detail.get("answer", ""))
        if self._decided is not None:  # taken by run(), journaled with the next intent
            answers[self._decided.name] = self._decided.answer
        return answers

    def _succeeded(self, request: str) -> bool:
        return any(e.step == request and e.ok for e in self.entries(kinds=["outcome"]))

    def halt(self, error: FtkitError) -> None:
        """Stop this run here (a readiness check failed, a decision timed out…): later
        steps are not due and :meth:`result` reports the run failed. Changes nothing on
        the system or in the journal."""
        self.last_error = error

    def next(self) -> Next:
        """What the session needs next, derived from :mod:`ftkit.flow` (read-only).
        ``Next("halted")`` once this run stopped on an error (Broken aside: Retry/Abort)."""
        broken = self.broken
        if self.last_error is not None and not broken and not self.done:
            return Next("halted", getattr(self.last_error, "step", "") or "")
        if self.paused is not None and not self.done:
            return Next("paused", self.paused.name)
        ok = {e.step for e in self.entries(kinds=["outcome"]) if e.ok}
        return next_step(started=self.record is not None, ended=self.done,
                         state=self.upgrade_state, operational=self.operational_state.value,
                         broken_step=broken[0] if broken else None, answers=self._answers(),
                         succeeded=ok.__contains__)

    def needs_decision(self, name: str) -> bool:
        """True when the session stands where ``name`` is decided and it is not decided yet.

        Read-only; what a runbook cell asks before it asks the operator (a re-run or a
        resumed session does not ask twice).
        """
        return self.next() == Next("decide", name)

    def due(self, request: str) -> bool:
        """True when ``request`` is the next thing to do from where the session stands.

        Read-only. Follows the journaled decisions, so that a runbook whose cells each run
        one request can be re-run or resumed at any point: a request that is done, or that
        a decision ruled out, is not due.
        """
        if request not in REQUESTS:
            raise TransitionError(f"unknown request {request!r}",
                                  f"use one of: {', '.join(REQUESTS)}")
        return self.next() == Next("request", request)

    def costs(self, name: str) -> dict[str, list[tuple[str, flow.Estimate]]]:
        """What each answer to decision NAME (or ``broken``: Retry/Abort) runs up to the next
        decision or the end, each request with its estimate (minutes, outage), from the
        declared estimates and a read-only look at the system (:func:`ftkit.flow.leads_to`).
        Read-only: what a decision panel says a click costs."""
        st = self.driver.status()
        facts = {**plan_facts(st, self.config, self.packages), "merged": st.merged}
        if name != RECOVERY.name:
            return {answer: flow.leads_to(name, answer, facts)
                    for answer in DECISIONS[name].answers}
        step = self.broken[0] if self.broken else ""
        retry = ([(step, row) for row in REQUESTS[step].estimates(facts)]
                 if step in REQUESTS else [])
        abort = [(r, row) for r in ("Abort", "Finish") for row in REQUESTS[r].estimates(facts)]
        return {"retry": retry, "abort": abort}

    def soak_result(self) -> tuple[float, int]:
        """Minutes soaked on the merged system and the transactions acknowledged meanwhile
        (read-only)."""
        minutes, served = 0.0, 0
        for entry in self.entries(kinds=["info"]):
            detail = entry.detail if isinstance(entry.detail, dict) else {}
            if "soak_minutes" in detail:
                minutes += float(detail["soak_minutes"])
                served += int(detail.get("transactions", 0))
        return minutes, served

    def soaked_minutes(self) -> float:
        """Minutes this session has soaked on the merged system so far (read-only)."""
        return self.soak_result()[0]

    # --- the one observer channel -----------------------------------------------------

    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(entry)`` after every journal entry of this system, once the
        session's state reflects it; returns an unsubscribe function. Widgets observe here.
        A callback that raises is logged and changes nothing."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    def _heard(self, entry: Entry) -> None:
        if entry.session_id is not None and (self.record is None
                                             or entry.session_id == self.record.id):
            self.record = self.journal.session(entry.session_id)
        for callback in list(self._listeners):
            callback(entry)

    # --- readiness ---------------------------------------------------------------------

    def readiness(self) -> list[CheckResult]:
        """The readiness check (a list of results; ``checks_frame`` makes it a table);
        changes nothing on the system, may run any number of times; journaled."""
        from ftkit.checks import summary

        results = run_checks(self.driver, self.config, self.packages,
                             in_session=self.record is not None,
                             stage_pending=self.upgrade_state is UpgradeState.IDLE)
        self.journal.log(self.record.id if self.record else None, "info",
                         f"readiness check: {summary(results)}", step="CheckReadiness",
                         sim_time=self.now())
        return results

    # --- decisions ---------------------------------------------------------------------

    def decide(self, name: str, provider: DecisionProvider) -> Decision:
        """Ask ``provider`` and journal the answer (a provider that cannot answer stops
        this run: :attr:`last_error`)."""
        try:
            decision = provider.decide(name)
        except FtkitError as err:
            self.last_error = err
            raise
        return self.record_decision(decision)

    def record_decision(self, decision: Decision) -> Decision:
        """Journal a decision made elsewhere (a widget click); who/what/why/when/where."""
        sid = self.record.id if self.record else None
        if sid is not None:
            self.control()
        if sid is None:
            self.journal.log(None, "info", f"decision {decision.name}: {decision.answer}",
                             detail=decision.to_dict())
        else:
            self.journal.decision(sid, **_decision_fields(decision), sim_time=self.now())
        return decision

    def _record_decided(self) -> None:
        """Journal the answer run() took if no intent carried it (a refused or failed start)."""
        decided, self._decided = self._decided, None
        if decided is not None:
            self.record_decision(decided)

    # --- the state machine ------------------------------------------------------------

    def _refuse(self, spec: RequestSpec) -> None:
        """Raise TransitionError when SPEC may not start now; changes nothing."""
        if self.record is None and spec.name != "PrepareSplit":
            raise TransitionError(f"{spec.name} needs a session", "start with PrepareSplit")
        state = self.upgrade_state
        if not spec.allowed_from(state):
            if state in spec.refusals:
                raise TransitionError(*spec.refusals[state])
            raise TransitionError(f"{spec.name} is not allowed in {state.value}",
                                  f"the next request is one of: "
                                  f"{', '.join(requests_from(state))}")
        broken = self.broken
        if broken and broken[0] != spec.name and spec.name != "Abort":
            raise TransitionError(f"the session is Broken at {broken[0]}: {broken[1]}",
                                  "Retry that step or Abort")
        if self.operational_state is OperationalState.BUSY:
            raise TransitionError(f"the session is Busy with {spec.name}",
                                  "wait, or resume it if the process running it died")
        if state in spec.sources:  # a fresh start (a retry was guarded when it first ran)
            for guard in spec.guards:
                refusal = getattr(self, guard)()
                if refusal is not None:
                    raise TransitionError(*refusal)

    def release(self) -> None:
        """Give up the controller lease (the end of a run that leaves the session open:
        paused, failed, or driven step by step); the next run may take it. Everything
        journaled is durable when it returns (Journal.sync)."""
        self.journal.release()
        self.journal.sync()

    def close(self) -> None:
        """Release the lease and close the journal (the driver stays open)."""
        self.release()
        self.journal.close()

    def _guard_something_to_install(self) -> tuple[str, str] | None:
        """An upgrade whose every package is installed already would split, merge (an
        outage) and commit for no change: refused before the split."""
        return nothing_to_install(self.driver.status(), self.config, self.packages)

    def _guard_enclosures_up(self) -> tuple[str, str] | None:
        """Commit resyncs onto the old side and cannot be aborted once started."""
        down = [m for m in self.driver.status().modules.values()
                if m.state is not ModuleState.ONLINE]
        if not down:
            return None
        names = ", ".join(f"{m.kind.upper() if m.kind == 'cpu' else 'I/O'} module "
                          f"{m.id} {m.state.value}" for m in down)
        return (f"Commit refused while an enclosure is down ({names}): the commit "
                "resynchronises onto it and cannot be aborted once started",
                "repair or replace the module, then commit; or abort (once the original "
                "side is back) to return to the original software")

    def control(self) -> None:
        """Become the one controller of this system's session (or renew the lease): raises
        SessionBusyError naming the process that drives it while that process lives.
        Every request, decision, resume and abort calls it first."""
        self.journal.claim(f"{self.operator or 'unknown'} ({self.change_id or 'no change id'})")

    def _run(self, request: str, work: Callable[[], str | None]) -> None:
        """Validate, write the intent with Busy (one transaction), do the work, record the
        outcome with the new state (one transaction; for Finish, the session's end too).

        ``work`` returns the session's outcome when it ends the session (Finish)."""
        spec = REQUESTS[request]
        try:
            self.journal.check()  # still there, still verifying: else stop before acting
            self.control()
            self._refuse(spec)
            came_from = self.upgrade_state
            entered = spec.entered(came_from)
            begin = None
            if self.record is None:
                ensure_supported(self.packages)  # refused before the split, naming the rule
                begin = {"change_id": self.change_id, "operator": self.operator,
                         "reason": self.reason,
                         "data": {"account": account(),  # the authenticated one, as claimed
                                  "config": self.config.to_dict(),
                                  "packages": [p.to_dict() for p in self.packages],
                                  "sim_start": self.now()}}
            now = self.now()
        except FtkitError:
            self._record_decided()  # the answer is journaled even when its request is refused
            raise
        decided, self._decided = self._decided, None
        try:  # the answer that leads here (run()), the intent and Busy: one transaction
            self.record, intent = self.journal.start(
                self.record.id if self.record else None, begin=begin, step=request,
                message=f"{request}: {spec.description}", upgrade_state=entered.value,
                sim_time=now, decision=None if decided is None else _decision_fields(decided))
        except FtkitError:
            self._decided = decided
            self._record_decided()
            raise
        assert intent is not None
        sid = self.record.id
        self._came_from = came_from
        self._notes = []
        try:
            ended = work()
        except Exception as exc:  # whatever it is, the session goes Broken, never stays Busy
            err = exc if isinstance(exc, FtkitError) else StepFailedError.unexpected(
                exc, step=request)
            step = getattr(err, "step", "") or request
            reason = getattr(err, "reason", "") or err.message
            self.journal.outcome(
                sid, intent, ok=False, message=f"{request} failed: {err}",
                detail={"error": type(exc).__name__, "step": step},
                sim_time=self.now(), upgrade_state=entered.value,
                operational_state=OperationalState.BROKEN.value,
                broken_step=request, broken_reason=reason, notes=self._step_notes(request),
            )
            raise StepFailedError(f"{request} failed: {err.message}",
                                  err.remedy or "Retry the step or Abort",
                                  step=request, reason=reason) from exc
        # the step's last notes, its outcome, the new state (and for Finish the session's
        # end and the lease given up): one transaction. It waits for the disk unless run()
        # goes straight on to the next request, whose synced intent makes it durable before
        # the system is asked anything (a power cut between leaves what a kill leaves)
        self.journal.outcome(sid, intent, ok=True, message=f"{request} done",
                             sim_time=self.now(), upgrade_state=spec.target.value,
                             operational_state=OperationalState.READY.value, end=ended,
                             release=ended is not None, notes=self._step_notes(request),
                             sync=not (self._driving and ended is None
                                       and self._next_after(spec).kind == "request"))

    def _next_after(self, spec: RequestSpec) -> Next:
        """What comes next once SPEC succeeded (read-only; pure over the journal)."""
        ok = {e.step for e in self.entries(kinds=["outcome"]) if e.ok} | {spec.name}
        return next_step(started=True, ended=False, state=spec.target,
                         operational=OperationalState.READY.value, broken_step=None,
                         answers=self._answers(), succeeded=ok.__contains__)

    def _note(self, kind: str, message: str, **fields: Any) -> None:
        """Keep a note of what the running step observed after its last driver request;
        it is written in the step's outcome transaction (or before the next custom
        action), in order."""
        self._notes.append(Note(kind, message, **fields))

    def _step_notes(self, step: str) -> list[Note]:
        """The notes kept for the step's outcome, then its outages not yet journaled."""
        notes, self._notes = self._notes, []
        return notes + self._outage_notes(step)

    def _flush_notes(self) -> None:
        """Write the kept notes now (one transaction), before the driver acts again."""
        if self._notes and self.record is not None:
            notes, self._notes = self._notes, []
            self.journal.log_many(self.record.id, notes)

    def run_request(self, request: str) -> None:
        """Run REQUEST (its declared method); what a runbook cell, Retry and resume call."""
        if request not in REQUESTS:
            raise TransitionError(f"unknown request {request!r}",
                                  f"use one of: {', '.join(REQUESTS)}")
        try:
            getattr(self, REQUESTS[request].method)()
        except FtkitError as err:
            self.last_error = err
            raise

    # --- custom actions ---------------------------------------------------------------

    def _actions(self, spec: RequestSpec, when: str) -> None:
        """Run SPEC's custom actions at WHEN (:func:`ftkit.actions.run_actions`), each
        result journaled; those that succeeded before a kill are not run again."""
        if spec.actions is None:
            return
        assert self.record is not None
        sid, request = self.record.id, spec.actions.value

        def log(message: str, *, remote: bool, detail: dict[str, Any]) -> None:
            self.journal.log(sid, "action", message, step=request, remote=remote,
                             sim_time=self.now(), detail=detail)

        run_actions(self.driver, self.config, request=request, when=when, log=log,
                    state=(spec.target if when == "after" else self._came_from).value,
                    done=succeeded(self.entries(kinds=["action"]), request=request, when=when),
                    before_each=self._flush_notes)

    def _step(self, request: str, body: Callable[[], Any]) -> None:
        """Run REQUEST with BODY between its declared before- and after-actions."""
        spec = REQUESTS[request]

        def work() -> str | None:
            self._actions(spec, "before")
            ended = body()
            self._actions(spec, "after")
            return ended

        self._run(request, work)

    # --- the requests -----------------------------------------------------------------

    def prepare_split(self) -> None:
        """PrepareSplit: stage the packages and re-run the readiness check."""

        def body() -> None:
            for pkg in self.packages:
                self.driver.stage(pkg.label, pkg.digest)
            bad = failed(run_checks(self.driver, self.config, self.packages, in_session=True))
            if bad:
                first = bad[0]
                raise StepFailedError(
                    f"readiness check failed: {first.title}: {first.detail}",
                    first.remedy or "fix it, then Retry", step="PrepareSplit",
                    reason=f"{len(bad)} readiness check(s) failed: "
                           + ", ".join(r.check for r in bad))

        self._step("PrepareSplit", body)

    def execute_split(self) -> None:
        """ExecuteSplit: the Production side keeps running; the Upgrade side is isolated."""
        ip = str(self.config.upgrade_ip or "")
        self._step("ExecuteSplit", lambda: self.driver.split(
            critical=list(self.config.critical_services), upgrade_ip=ip,
            progress=self.progress))

    def install(self) -> None:
        """Install every package on the Upgrade side, reboot it once if needed, verify."""

        def body() -> None:
            assert self.record is not None
            for pkg in self.packages:  # progress notes: the Install intent is synced
                self.journal.log(self.record.id, "info", f"installing {pkg.label}",
                                 step="Install", remote=True, sim_time=self.now(), sync=False)
                self.driver.install(pkg.to_dict() | {"timeout_min": pkg.timeout_min},
                                    progress=self.progress)
            st = self.driver.status()
            upgrade = st.sides[1 - (st.production or 0)]
            if upgrade.reboot_pending or upgrade.os is not PartnerState.OS_UP:
                self.journal.log(self.record.id, "info", "rebooting the Upgrade side",
                                 step="Install", remote=True, sim_time=self.now(), sync=False)
                self.driver.reboot_upgrade_side(progress=self.progress)
            self._verify_upgrade_side()

        self._step("Install", body)

    def _verify_upgrade_side(self) -> None:
        assert self.record is not None
        bad = failed(merge_checks(self.driver, self.config, self.packages))
        if bad:
            raise StepFailedError(f"Upgrade side not ready: {bad[0].detail}",
                                  bad[0].remedy or "Retry", step="Install",
                                  reason=bad[0].check)
        self._note("info", "Upgrade side verified: OS Up, "
                   + ", ".join(p.label for p in self.packages) + " installed",
                   step="Install", remote=True, sim_time=self.now())

    def prepare_merge(self) -> None:
        """PrepareMerge: the Upgrade side is up, healthy and has every package."""
        self._step("PrepareMerge", self._verify_upgrade_side)

    def execute_merge(self) -> None:
        """ExecuteMerge: the one brief outage; measured from the transaction ledger."""
        self._step("ExecuteMerge", lambda: self.driver.merge(
            critical=list(self.config.critical_services), progress=self.progress))

    def soak(self, minutes: float) -> int:
        """Watch the merged system under real load before the commit decision; returns the
        transactions acknowledged meanwhile."""
        minutes = check_soak_minutes(minutes)
        assert self.record is not None
        before = self.driver.acknowledged()
        self.driver.wait(minutes * 60, progress=self.progress)
        served = self.driver.acknowledged() - before
        self.journal.log_many(self.record.id, [
            *self._outage_notes("Merge"),
            Note("info", f"soaked {minutes:g} min on the upgraded software; {served} "
                 "transactions acknowledged meanwhile", step="Merge", sim_time=self.now(),
                 detail={"soak_minutes": minutes, "transactions": served})])
        return served

    def commit(self) -> None:
        """Commit: back up event logs, then resync the old side; no outage.

        Refused, with nothing changed, while an enclosure is down (a declared guard): the
        commit resyncs onto the old side and cannot be aborted once started.
        """

        def body() -> None:
            self._backup_event_logs()
            self.driver.commit(progress=self.progress)

        self._step("Commit", body)

    def abort(self) -> None:
        """Abort back to the original software (one restart outage if after merge)."""
        self._step("Abort", lambda: self.driver.abort(progress=self.progress))

    def finish(self) -> str:
        """Finish: back to Idle; ends the session with its outcome, in the same
        transaction as Finish's outcome."""
        came_from = self.upgrade_state

        def body() -> str:
            assert self.record is not None
            self.driver.finish()
            lost = self.driver.lost_transactions()
            if lost:
                self._note("error", f"{lost} acknowledged transactions lost",
                           step="Finish", sim_time=self.now())
            return flow.outcome(came_from, self._answers())

        self._step("Finish", body)  # its outcome ends the session and gives the lease up
        assert self.record is not None
        return str(self.record.outcome)

    def retry(self) -> None:
        """Run the Broken (or interrupted) step again."""
        broken = self.broken
        step = broken[0] if broken else None
        pending = self.journal.pending_intent(self.record.id) if self.record else None
        if step is None and pending is not None:
            step = pending.step
        if step is None:
            raise TransitionError("nothing to retry: the session is not Broken",
                                  "carry on with the next request")
        if pending is not None and self.record is not None:
            self.journal.outcome(self.record.id, pending.id, ok=False,
                                 message=f"{pending.step} interrupted (the process ended)",
                                 sim_time=self.now(),
                                 upgrade_state=self.upgrade_state.value,
                                 operational_state=OperationalState.BROKEN.value,
                                 broken_step=pending.step, broken_reason="interrupted")
        self.run_request(step)

    def recover(self, provider: DecisionProvider) -> str:
        """Answer a Broken session with PROVIDER's ``broken`` decision (journaled with who
        and why): ``retry`` runs the failed step again, ``abort`` aborts. Returns the answer.

        A missing answer in auto mode is an error naming both choices (never a default).
        """
        broken = self.broken
        if broken is None:
            raise TransitionError("nothing to recover: the session is not Broken",
                                  "carry on with the next request")
        step, why = broken
        try:
            decision = self.decide(RECOVERY.name, provider)
        except DecisionError:
            raise StepFailedError(
                f"the session is Broken at {step}: {why}",
                "fix the cause, then run again with decisions broken: retry; or broken: "
                "abort (or the abort runbook) to return to the original software",
                step=step, reason=why) from None
        self.last_error = None  # answered: this run carries on from here
        if decision.answer == "retry":
            self.retry()
        else:
            self.run_request(RECOVERY.answers["abort"])
        return decision.answer

    def resume(self) -> str | None:
        """Finish what a killed process left half done; returns the step re-run, if any."""
        if self.record is None or self.done:
            return None
        self.control()
        pending = self.journal.pending_intent(self.record.id)
        if pending is None:
            if self.operational_state is OperationalState.BUSY:
                self.journal.set_state(self.record.id, upgrade_state=self.upgrade_state.value,
                                       operational_state=OperationalState.READY.value,
                                       message="resumed: no step was half done")
            return None
        self.journal.log(self.record.id, "warning",
                         f"resuming: {pending.step} was interrupted; running it again",
                         step=pending.step, sim_time=self.now())
        self.retry()
        return pending.step

    def resume_with(self, provider: DecisionProvider | None) -> tuple[str | None, str | None]:
        """Carry on an unfinished session: re-run a step a killed process left half done;
        a Broken session is answered by PROVIDER's ``broken`` decision (journaled).

        Returns ``(step re-run, recovery answer)``. Without a provider (the operator
        decides on a panel) a Broken session raises StepFailedError with the way on.
        """
        step = self.resume()
        answer = None
        if self.broken:
            where, why = self.broken
            if provider is None:
                raise StepFailedError(f"the session is Broken at {where}: {why}",
                                      "Retry or Abort (see below)", step=where, reason=why)
            answer = self.recover(provider)
        return step, answer

    def abort_and_finish(self, *, who: str, why: str) -> str | None:
        """Abort the unfinished session and Finish it (the abort runbook); returns the
        outcome, or None when there is no unfinished session (nothing is changed then).

        A step a killed process left half done is run again first; if it fails, the
        session is Broken there and is aborted from there. An Abort that itself broke is
        retried. Once Commit has started, Abort is refused (TransitionError): complete the
        commit instead. Who and why are journaled before anything is done.
        """
        if self.record is None or self.done:
            return None
        self.control()
        self.journal.log(self.record.id, "info",
                         f"Abort requested by {who} (abort runbook): {why or '-'}",
                         detail={"action": "abort", "who": who, "why": why,
                                 "source": "parameter"})
        try:
            self.resume()
        except FtkitError:
            if not self.broken:
                raise
        nxt = self.next()
        if nxt == Next("recover", "Abort"):
            self.retry()
        elif self.upgrade_state is not S.ABORT:
            self.abort()
        if self.next() == Next("request", "Finish"):
            self.finish()
        assert self.record is not None
        return self.record.outcome

    def pause(self, decision: Decision) -> None:
        """Stop here on purpose (a declared pause such as ``merge: later``): journaled with
        who and why, and not recorded as the decision, so a later run asks it again."""
        assert self.record is not None
        self.control()
        self.paused = decision
        meaning = DECISIONS[decision.name].pauses[decision.answer]
        self.journal.log(self.record.id, "info",
                         f"paused before the {decision.name} decision ({decision.name}: "
                         f"{decision.answer}) by {decision.who}: {meaning}",
                         detail={"pause": decision.name, "answer": decision.answer,
                                 "who": decision.who, "why": decision.why},
                         sim_time=self.now())

    def run(self, provider: DecisionProvider, *, soak_minutes: float = 0.0) -> str:
        """Drive the session to its end with ``provider``'s decisions; returns the outcome.

        Resumes where the session stands: a resumed run skips what is already done. Each
        step is what :meth:`next` derives from the declared flow.
        """
        soak_minutes = check_soak_minutes(soak_minutes)  # before anything changes
        self.last_error = self.paused = None  # a new run
        self._driving = True
        try:
            return self._drive(provider, soak_minutes)
        finally:
            self._driving = False
            self._record_decided()  # an answer taken and not acted on is still journaled
            if not self.done:
                self.release()  # the run stops here; the next one may take over
            self.journal.sync()  # everything journaled is durable before the run returns

    def carry_on(self) -> tuple[float, int]:
        """Run what is due up to the next decision or the end, soaking first (up to this
        run's :attr:`soak_minutes`) where the flow soaks before that decision: what a
        runbook re-run does, from a button (Continue after a Retry). Returns the minutes
        soaked now and the transactions acknowledged meanwhile."""
        self.last_error = self.paused = None
        while (nxt := self.next()).kind == "request":
            self.run_request(nxt.name)
        return self._soak_before(nxt, self.soak_minutes)

    def _soak_before(self, nxt: Next, soak_minutes: float) -> tuple[float, int]:
        """Soak the rest of SOAK_MINUTES when NXT is a decision the flow soaks before."""
        if nxt.kind != "decide" or DECISIONS[nxt.name].before != "soak":
            return 0.0, 0
        left = soak_minutes - self.soaked_minutes()
        return (left, self.soak(left)) if left > 0 else (0.0, 0)

    def _drive(self, provider: DecisionProvider, soak_minutes: float) -> str:
        self.resume()
        while True:
            nxt = self.next()
            if nxt.kind != "request":
                self._record_decided()  # an answer leads to a request; else journal it alone
            if nxt.kind == "done":
                assert self.record is not None
                return str(self.record.outcome)
            if nxt.kind == "recover":
                self.recover(provider)
            elif nxt.kind == "decide":
                spec = DECISIONS[nxt.name]
                self._soak_before(nxt, soak_minutes)
                answer = provider.decide(nxt.name)
                if answer.answer in spec.pauses:
                    self.pause(answer)
                    return self.upgrade_state.value
                self.control()
                # journaled with the intent of the request it leads to (one transaction)
                self._decided = answer
            elif nxt.kind == "request":
                self.run_request(nxt.name)
            else:
                raise TransitionError(f"the session is {self.operational_state.value} in "
                                      f"{self.upgrade_state.value}",
                                      "wait for the process running it, or resume it")

    # --- measurements -------------------------------------------------------------------

    def outages(self) -> list[Outage]:
        """Outages since this session started (measured from the ledger)."""
        start = float((self.record.data if self.record else {}).get("sim_start", 0.0))
        return [o for o in self.driver.outages() if o.end is None or o.end > start]

    def facts(self) -> dict[str, Any]:
        """What the change record states about this session (read-only): outcome, each
        measured outage, total outage, acknowledged and lost transactions, decisions."""
        outages = self.outages()
        return {
            "session": self.record.id if self.record else None,
            "outcome": self.record.outcome if self.record else None,
            "outages_s": [round(o.seconds, 1) for o in outages if o.seconds is not None],
            "outage_at_s": [round(o.start, 1) for o in outages if o.seconds is not None],
            "outage_s": round(sum((o.seconds or 0.0) for o in outages), 1),
            "acknowledged": self.driver.acknowledged(),
            "lost_transactions": self.driver.lost_transactions(),
            "decisions": self.decisions(),
        }

    def _handed_over(self) -> str:
        """" (taken over from …)" when this run's operator is not the session's starter."""
        record = self.record
        if record is None or not record.operator or self.operator in ("", record.operator):
            return ""
        return f" (taken over from {record.operator})"

    def result(self, *, mode: str) -> Any:
        """The run's :class:`~ftkit.archive.RunResult` (outcome, measured outage, lost
        transactions). Raises if the session did not end, or lost a transaction."""
        from ftkit.archive import RunResult

        record = self.record
        if self.last_error is not None and not self.done:
            raise self.stopped()
        if self.paused is not None and record is not None and not self.done:
            how = ", ".join(a for a in DECISIONS[self.paused.name].answers)
            return RunResult(
                outcome="paused", system=self.target, change_id=record.change_id,
                operator=self.operator or record.operator, outage_s=self.facts()["outage_s"],
                message=f"session {record.id}{self._handed_over()} paused on purpose in "
                        f"{self.upgrade_state.value} ({self.paused.name}: "
                        f"{self.paused.answer}); to go on, run again with "
                        f"{self.paused.name}: {how.replace(', ', ' or ')}",
                extra={"mode": mode, "session": record.id})
        if record is None:
            what = ("nothing to abort: no unfinished session" if mode == "abort"
                    else "no session")
            return RunResult(outcome="stopped", system=self.target, change_id=self.change_id,
                             operator=self.operator,
                             message=f"{what}; nothing on the system changed",
                             extra={"mode": mode})
        if not self.done:
            raise self.stopped()
        self.journal.check()  # the record is only as good as the journal it comes from
        facts = self.facts()
        if facts["lost_transactions"]:
            raise FtkitError(f"{facts['lost_transactions']} acknowledged transactions are "
                             "missing from the data disks",
                             "stop and investigate before anything else; see the activity log")
        return RunResult(
            outcome=str(record.outcome), system=self.target,
            change_id=record.change_id or self.change_id,
            operator=self.operator or record.operator, outage_s=facts["outage_s"],
            message=f"session {record.id}{self._handed_over()}: {record.outcome}, outage "
                    f"{facts['outage_s']:g} s, {facts['lost_transactions']} transactions lost",
            extra={"mode": mode, "session": record.id,
                   "lost_transactions": facts["lost_transactions"],
                   "acknowledged": facts["acknowledged"], "outages": facts["outages_s"],
                   "decisions": "; ".join(f"{d.name}: {d.answer} by {d.who} ({d.source})"
                                          for d in facts["decisions"]),
                   # this session's last entry, on disk: the ledger entry carries it
                   # (cross-checked by reports verify)
                   **self._anchor(record.id)},
        )

    def _anchor(self, session_id: int) -> dict[str, Any]:
        self.journal.sync()  # what a record cites is durable first
        return self.journal.head_entry(session_id)

    def stopped(self) -> FtkitError:
        """Why this run did not end the session, as one error: the failing step and
        reason, the state the system is left in, and the way on (read-only)."""
        state = f"{self.upgrade_state.value} / {self.operational_state.value}"
        if self.broken:
            step, why = self.broken
            said = (f" — {self.last_error.message}" if self.last_error is not None
                    and self.last_error.message != why else "")
            return StepFailedError(
                f"the run stopped: Broken at {step} ({why}{said}); the system is left in "
                f"{state}",
                "fix the cause, then Retry (or run again with decisions broken: retry), or "
                "Abort (abort.ipynb) back to the original software", step=step, reason=why)
        if self.last_error is not None:
            err = self.last_error
            return FtkitError(f"the run stopped: {err.message}; the system is left in "
                              f"{state}", err.remedy or "fix it, then run again")
        return FtkitError(f"the session did not end (it is {state})",
                          "run the runbook again to carry on, or run abort.ipynb")

    def _outage_notes(self, step: str) -> list[Note]:
        """A note of every outage of this session not journaled yet: when it is seen
        ongoing, and with its measured length once it is over (each keyed by when it
        started); read-only."""
        assert self.record is not None
        notes: list[Note] = []
        seen: set[tuple[float, bool]] = set()
        for entry in self.entries(kinds=["warning"]):
            detail = entry.detail if isinstance(entry.detail, dict) else {}
            if "outage_start" in detail:
                seen.add((round(float(detail["outage_start"]), 3),
                          detail.get("outage_s") is not None))
        for outage in self.outages():
            key = (round(outage.start, 3), outage.seconds is not None)
            if key in seen:
                continue
            # moments as the activity log shows them (t=mm:ss of the session's time)
            message = (f"outage {outage.seconds:.1f} s (last transaction before at "
                       f"{_clock(outage.start)}, first after at {_clock(outage.end)})"
                       if outage.seconds is not None and outage.end is not None else
                       f"outage ongoing since {_clock(outage.start)}: the applications "
                       "are down")
            notes.append(Note(
                "warning", message, step=step, sim_time=self.now(),
                detail={"outage_s": outage.seconds, "outage_start": outage.start,
                        "start": outage.start, "end": outage.end}))
        return notes

    def _backup_event_logs(self) -> None:
        assert self.record is not None
        if not self.config.event_logs:
            return
        logs = self.driver.backup_event_logs(list(self.config.event_logs))
        folder = ftkit_home() / "backups" / self.journal.path.stem / f"session-{self.record.id}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, lines in logs.items():
            tmp = folder / f"{name}.json.tmp"
            tmp.write_text(json.dumps(lines, indent=1))
            os.replace(tmp, folder / f"{name}.json")
        self.journal.log(self.record.id, "info",
                         f"event logs backed up from the Production side: {', '.join(logs)}",
                         step="Backup", sim_time=self.now(), sync=False,  # a progress note
                         detail={"folder": folder.name, "entries": {k: len(v)
                                                                    for k, v in logs.items()}})


def _clock(seconds: float) -> str:
    """A moment of the system's clock as ``t=26:10`` (minutes:seconds), as the runbook's
    summary and activity log show it."""
    minutes, secs = divmod(round(float(seconds)), 60)
    return f"t={minutes}:{secs:02d}"


def _decision_fields(decision: Decision) -> dict[str, str]:
    """What the journal records of DECISION (Journal.decision's keywords)."""
    return {"name": decision.name, "answer": decision.answer, "who": decision.who,
            "why": decision.why, "source": decision.source, "where": decision.where,
            "account": decision.account}


def _load(config: UpgradeConfig | str | os.PathLike[str],
          packages: Iterable[UpdatePackage | str | os.PathLike[str]]
          ) -> tuple[UpgradeConfig, list[UpdatePackage]]:
    cfg = config if isinstance(config, UpgradeConfig) else load_config(config)
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
                 progress: Progress | None = None, handover: bool = False) -> Session:
    """The session of ``system``: the unfinished one if there is one (resumed, never a
    second); else, when CHANGE_ID names a session that ended, that one (a rerun of a
    finished change reports it and runs nothing); else a new one that starts at
    PrepareSplit. The journal is verified first: a tampered one is refused.

    Resuming the unfinished session under another change id or operator is a handover:
    refused (TransitionError, nothing changed) unless ``handover`` is True, and then
    journaled with both."""
    cfg, pkgs = _load(config, packages)
    driver = connect(system) if isinstance(system, str) else system
    journal = Journal.of(driver)
    journal.verify()  # a tampered journal is never resumed (nor added to)
    record = journal.current_session()
    if record is None and change_id:
        # a rerun of a change that ended is reported, never run again
        ended = [s for s in journal.sessions() if s.change_id == change_id and s.ended]
        if ended:
            session = Session(driver=driver, journal=journal, config=cfg, packages=pkgs,
                              change_id=change_id, operator=operator, reason=reason,
                              progress=progress, record=ended[-1])
            journal.log(None, "info", f"change {change_id} ran already: session "
                        f"{ended[-1].id} ended {ended[-1].outcome}; nothing is run again",
                        sim_time=session.now())
            return session
    session = Session(driver=driver, journal=journal, config=cfg, packages=pkgs,
                      change_id=change_id, operator=operator, reason=reason,
                      progress=progress, record=record, resumed=record is not None)
    if record is not None:
        refusal = handover_refusal(record, driver.target, change_id=change_id,
                                   operator=operator)
        differs = refusal is not None
        try:
            if refusal is not None and not handover:
                raise refusal
            # the one controller first: a run refused here writes nothing into the session
            session.control()
        except FtkitError:
            journal.close()
            raise
        if differs:
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


def adopt(system: str | Driver, *, operator: str, reason: str) -> Session:
    """Start a journal session from the system's own state when its journal was lost
    (``ftkit recover``): a system split (or merged) with no unfinished session gets one in
    Split (or Merge), Ready, so that the abort runbook, or the upgrade runbook (its
    requests are resumable), can take it to a correct end. Refused when the journal has an
    unfinished session or the system is not split; one transaction."""
    driver = connect(system) if isinstance(system, str) else system
    st = driver.status()
    journal = Journal.of(driver)
    if journal.current_session() is not None:
        raise TransitionError(f"{driver.target} has an unfinished session in its journal",
                              "resume it or abort it; recover is for a lost journal")
    if not st.split:
        raise TransitionError(f"{driver.target} is not split: there is nothing to recover",
                              "start a new upgrade")
    state = S.MERGE if st.merged else S.SPLIT
    record, _ = journal.start(None, begin={
        "change_id": "", "operator": operator, "reason": f"recovered: {reason}",
        "data": {"recovered": True, "sim_start": float(st.now)}})
    journal.set_state(record.id, upgrade_state=state.value, operational_state="Ready",
                      message=f"recovered from the system's own state: {state.value} "
                              f"(Production side enclosure {st.production}); the lost "
                              "journal's decisions are unknown and will be asked again")
    config = UpgradeConfig(description="recovered session", system_disks=())
    return Session(driver=driver, journal=journal, config=config, packages=[],
                   operator=operator, reason=reason, record=journal.session(record.id),
                   resumed=True)


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
        "upgrade_resync_min": 0.0,
    }


def plan(system: str | Driver, config: UpgradeConfig | str | os.PathLike[str],
         packages: Iterable[UpdatePackage | str | os.PathLike[str]] = (), *,
         provider: DecisionProvider) -> Plan:
    """What an upgrade would do, from a read-only look at the system; changes nothing."""
    cfg, pkgs = _load(config, packages)
    driver = connect(system) if isinstance(system, str) else system
    checks = run_checks(driver, cfg, pkgs, stage_pending=True)
    decisions = [provider.decide(name) for name in DECISIONS]
    answers = {d.name: d.answer for d in decisions}
    steps, _stop = flow.walk(answers, plan_facts(driver.status(), cfg, pkgs))
    return Plan(steps, checks, decisions)
