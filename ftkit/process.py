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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftkit.checks import CheckResult, failed, merge_checks, run_checks
from ftkit.config import UpgradeConfig, load_config
from ftkit.decisions import Decision, DecisionProvider
from ftkit.drivers import Driver, Outage, Progress, connect
from ftkit.errors import (
    ActionTimeoutError,
    DecisionError,
    FtkitError,
    StepFailedError,
    TransitionError,
)
from ftkit.home import ftkit_home
from ftkit.journal import Journal, SessionRecord
from ftkit.model import ModuleState, OperationalState, PartnerState, UpgradeState
from ftkit.packages import UpdatePackage, ensure_supported, load_packages

__all__ = [
    "AFTER_DECISION",
    "DECISION_POINTS",
    "REQUESTS",
    "Plan",
    "RequestSpec",
    "Session",
    "observe",
    "open_session",
    "plan",
]

S = UpgradeState


@dataclass(frozen=True)
class RequestSpec:
    """One request of the state machine: where it may start and where it leads.

    ``enter_at_start`` requests move to ``target`` as soon as they start (the vendor's
    Prepare* states, Commit and Abort); the others only when they succeed.
    """

    name: str
    sources: frozenset[UpgradeState]
    target: UpgradeState
    enter_at_start: bool
    description: str

    def allowed_from(self, state: UpgradeState) -> bool:
        return state in self.sources or (self.enter_at_start and state is self.target)


REQUESTS: dict[str, RequestSpec] = {
    r.name: r
    for r in (
        RequestSpec("PrepareSplit", frozenset({S.IDLE}), S.PREPARE_SPLIT, True,
                    "stage the packages and re-run the readiness check"),
        RequestSpec("ExecuteSplit", frozenset({S.PREPARE_SPLIT}), S.SPLIT, False,
                    "disable RDR mirroring, isolate the Upgrade side, disable its critical "
                    "services"),
        RequestSpec("Install", frozenset({S.SPLIT}), S.SPLIT, False,
                    "install the update packages on the Upgrade side, reboot and verify it"),
        RequestSpec("PrepareMerge", frozenset({S.SPLIT}), S.PREPARE_MERGE, True,
                    "check the Upgrade side is up, upgraded and ready"),
        RequestSpec("ExecuteMerge", frozenset({S.PREPARE_MERGE}), S.MERGE, False,
                    "stop the applications, hand over the data disks, start them upgraded"),
        RequestSpec("Commit", frozenset({S.MERGE}), S.COMMIT, True,
                    "back up event logs, resynchronise the old side from the new one"),
        RequestSpec("Abort", frozenset({S.PREPARE_SPLIT, S.SPLIT, S.PREPARE_MERGE, S.MERGE}),
                    S.ABORT, True, "return to the original software"),
        RequestSpec("Finish", frozenset({S.COMMIT, S.ABORT}), S.IDLE, False,
                    "clean up once the resync is complete"),
    )
}


# Where each decision is asked (the session's upgrade state), and what each answer leads
# to: a runbook asks at that point and then runs the request the answer names.
DECISION_POINTS: dict[str, UpgradeState] = {
    "split": S.PREPARE_SPLIT,
    "merge": S.SPLIT,
    "commit": S.MERGE,
}
AFTER_DECISION: dict[tuple[str, str], str] = {
    ("split", "proceed"): "ExecuteSplit",
    ("split", "stop"): "Abort",
    ("merge", "proceed"): "PrepareMerge",
    ("merge", "abort"): "Abort",
    ("commit", "commit"): "Commit",
    ("commit", "abort"): "Abort",
}


@dataclass
class Plan:
    """What an upgrade would do, step by step, with nothing changed (plan mode)."""

    steps: list[dict[str, Any]]
    checks: list[CheckResult]
    decisions: list[Decision]

    def dataframe(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.steps)


@dataclass
class Session:
    """One Active Upgrade session of one system (see :func:`open_session`)."""

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
    _listeners: list[Callable[[Session], None]] = field(default_factory=list)

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

    def partner_state(self) -> PartnerState:
        """The other side's health as the running side sees it."""
        st = self.driver.status()
        running = st.apps_on if st.apps_on is not None else (st.production or 0)
        return st.sides[1 - running].os

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
    def done(self) -> bool:
        """True once the session has ended (Finish ran): later runbook steps skip."""
        return self.record is not None and self.record.ended is not None

    def decision(self, name: str) -> Decision | None:
        """The last decision ``name`` journaled in this session, else None (read-only)."""
        if self.record is None:
            return None
        found = None
        for entry in self.journal.entries(self.record.id, kinds=["decision"]):
            detail = entry.detail if isinstance(entry.detail, dict) else {}
            if detail.get("name") == name:
                fields = Decision.__dataclass_fields__
                found = Decision(**{k: str(detail.get(k, "")) for k in fields})
        return found

    def _answer(self, name: str) -> str | None:
        decision = self.decision(name)
        return decision.answer if decision else None

    def _succeeded(self, request: str) -> bool:
        assert self.record is not None
        return any(e.step == request and e.ok
                   for e in self.journal.entries(self.record.id, kinds=["outcome"]))

    def needs_decision(self, name: str) -> bool:
        """True when the session stands where ``name`` is decided and it is not decided yet.

        Read-only; what a runbook cell asks before it asks the operator (a re-run or a
        resumed session does not ask twice).
        """
        if self.record is None or self.done or self.broken or self.decision(name):
            return False
        if self.upgrade_state is not DECISION_POINTS[name]:
            return False
        if self.operational_state is not OperationalState.READY:
            return False
        return name != "merge" or self._succeeded("Install")

    def due(self, request: str) -> bool:
        """True when ``request`` is the next thing to do from where the session stands.

        Read-only. Follows the journaled decisions (``AFTER_DECISION``), so that a runbook
        whose cells each run one request can be re-run or resumed at any point: a request
        that is done, or that a decision ruled out, is not due.
        """
        if request not in REQUESTS:
            raise TransitionError(f"unknown request {request!r}",
                                  f"use one of: {', '.join(REQUESTS)}")
        if self.done:
            return False
        if request == "PrepareSplit":
            return self.record is None
        if self.record is None:
            return False
        state = self.upgrade_state
        if request == "Install":
            return state is S.SPLIT and not self._succeeded("Install")
        if request == "Finish":
            return state in (S.COMMIT, S.ABORT)
        if request == "Abort":
            return state in REQUESTS["Abort"].sources and any(
                AFTER_DECISION.get((name, self._answer(name) or "")) == "Abort"
                for name in DECISION_POINTS)
        if request == "ExecuteMerge":
            return state is S.PREPARE_MERGE
        name = next(n for (n, _a), r in AFTER_DECISION.items() if r == request)
        return (state is DECISION_POINTS[name]
                and AFTER_DECISION.get((name, self._answer(name) or "")) == request)

    def soaked_minutes(self) -> float:
        """Minutes this session has soaked on the merged system so far (read-only)."""
        if self.record is None:
            return 0.0
        return sum(float(e.detail.get("soak_minutes", 0.0))
                   for e in self.journal.entries(self.record.id, kinds=["info"])
                   if isinstance(e.detail, dict))

    def on_change(self, callback: Callable[[Session], None]) -> None:
        """Call ``callback(session)`` after every state change (widgets observe here)."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        if self.record is not None:
            self.record = self.journal.session(self.record.id)
        for callback in list(self._listeners):
            callback(self)

    def _sim_time(self) -> float:
        return self.driver.status().now

    # --- readiness ---------------------------------------------------------------------

    def readiness(self) -> Any:
        """The readiness check as a DataFrame; changes nothing, may run any number of times."""
        from ftkit.checks import readiness

        in_session = self.record is not None
        df = readiness(self.driver, self.config, self.packages, in_session=in_session,
                       stage_pending=self.upgrade_state is UpgradeState.IDLE)
        self.journal.log(self.record.id if self.record else None, "info",
                         f"readiness check: {int((df['status'] == 'fail').sum())} failed, "
                         f"{int((df['status'] == 'warn').sum())} warnings",
                         step="CheckReadiness", sim_time=self._sim_time())
        return df

    # --- decisions ---------------------------------------------------------------------

    def decide(self, name: str, provider: DecisionProvider) -> Decision:
        """Ask ``provider`` and journal the answer."""
        return self.record_decision(provider.decide(name))

    def record_decision(self, decision: Decision) -> Decision:
        """Journal a decision made elsewhere (a widget click); who/what/why/when/where."""
        sid = self.record.id if self.record else None
        if sid is None:
            self.journal.log(None, "info", f"decision {decision.name}: {decision.answer}",
                             detail=decision.to_dict())
        else:
            self.journal.decision(sid, name=decision.name, answer=decision.answer,
                                  who=decision.who, why=decision.why, source=decision.source,
                                  where=decision.where, sim_time=self._sim_time())
        return decision

    # --- the state machine ------------------------------------------------------------

    def _begin(self) -> None:
        if self.record is not None:
            return
        ensure_supported(self.packages)  # refused before the split, naming the rule
        self.record = self.journal.begin_session(
            change_id=self.change_id, operator=self.operator, reason=self.reason,
            data={
                "config": self.config.to_dict(),
                "packages": [p.to_dict() for p in self.packages],
                "sim_start": self._sim_time(),
            },
        )
        self._changed()

    def _run(self, request: str, work: Callable[[], None]) -> None:
        """Validate, write the intent, do the work, record the outcome and new state."""
        spec = REQUESTS[request]
        if request == "PrepareSplit":
            self._begin()
        if self.record is None:
            raise TransitionError(f"{request} needs a session", "start with PrepareSplit")
        state = self.upgrade_state
        broken = self.broken
        if not spec.allowed_from(state):
            if state is S.COMMIT and request == "Abort":
                raise TransitionError("Abort is refused once Commit has started",
                                      "Retry a Broken commit (the Retry button, or the upgrade "
                                      "runbook with decisions broken: retry), then Finish")
            allowed = [r.name for r in REQUESTS.values() if r.allowed_from(state)]
            raise TransitionError(f"{request} is not allowed in {state.value}",
                                  f"the next request is one of: {', '.join(allowed)}")
        if broken and broken[0] != request and request != "Abort":
            raise TransitionError(f"the session is Broken at {broken[0]}: {broken[1]}",
                                  "Retry that step or Abort")
        if self.operational_state is OperationalState.BUSY:
            raise TransitionError(f"the session is Busy with {request}",
                                  "wait, or resume it if the process running it died")
        sid = self.record.id
        intent = self.journal.intent(sid, request, f"{request}: {spec.description}",
                                     sim_time=self._sim_time())
        entered = spec.target if spec.enter_at_start else state
        self.journal.set_state(sid, upgrade_state=entered.value,
                               operational_state=OperationalState.BUSY.value,
                               message=f"{request} started", sim_time=self._sim_time())
        self._changed()
        try:
            work()
        except FtkitError as err:
            self._note_outages(request)
            step = getattr(err, "step", "") or request
            reason = getattr(err, "reason", "") or err.message
            self.journal.outcome(
                sid, intent, ok=False, message=f"{request} failed: {err}",
                detail={"error": type(err).__name__, "step": step},
                sim_time=self._sim_time(), upgrade_state=entered.value,
                operational_state=OperationalState.BROKEN.value,
                broken_step=request, broken_reason=reason,
            )
            self._changed()
            raise StepFailedError(f"{request} failed: {err.message}",
                                  err.remedy or "Retry the step or Abort",
                                  step=request, reason=reason) from err
        self._note_outages(request)
        self.journal.outcome(sid, intent, ok=True, message=f"{request} done",
                             sim_time=self._sim_time(), upgrade_state=spec.target.value,
                             operational_state=OperationalState.READY.value)
        self._changed()

    # --- custom actions ---------------------------------------------------------------

    def _actions(self, request: str, when: str) -> None:
        if request not in {"CheckReadiness", "PrepareSplit", "ExecuteSplit", "PrepareMerge",
                           "ExecuteMerge", "Commit", "Abort", "Start", "Stop", "Backup"}:
            return
        assert self.record is not None
        st = self.driver.status()
        done = {
            (e.detail.get("action"), e.detail.get("side"))
            for e in self.journal.entries(self.record.id, kinds=["action"])
            if isinstance(e.detail, dict) and e.detail.get("ok")
            and e.detail.get("request") == request and e.detail.get("when") == when
        }
        for side in ("Production", "Upgrade"):
            for action in self.config.actions_for(request, when, side):
                if (action.name, side) in done:
                    continue  # succeeded before this process died: never twice
                env = {
                    "ACTIVE_UPGRADE_SIDE": side,
                    "ACTIVE_UPGRADE_STATE": self.upgrade_state.value,
                    "ACTIVE_UPGRADE_REQUEST": request,
                    "ACTIVE_UPGRADE_HW_SPLIT": "Yes" if st.split else "No",
                }
                result = self.driver.run_custom_action(
                    str(action.path), args=list(action.args), env=env,
                    timeout_s=action.timeout_s, request=request, side=side)
                ok = result.exit_code == 0 and not result.timed_out
                self.journal.log(
                    self.record.id, "action",
                    f"custom action {action.name} ({when} {request}, {side}) exit "
                    f"{result.exit_code}" + (" (timed out)" if result.timed_out else ""),
                    step=request, remote=(side == "Upgrade"), sim_time=self._sim_time(),
                    detail={"action": action.name, "side": side, "request": request,
                            "when": when, "ok": ok, "exit_code": result.exit_code,
                            "stdout": result.stdout[-4000:], "stderr": result.stderr[-4000:],
                            "duration_s": round(result.duration_s, 3)},
                )
                if result.timed_out:
                    raise ActionTimeoutError(
                        f"custom action {action.name} timed out after {action.timeout_s:g} s",
                        "fix the action or raise its timeout_s, then Retry",
                        step=request, reason=f"{action.name} timed out")
                if not ok:
                    raise StepFailedError(
                        f"custom action {action.name} exited {result.exit_code}",
                        "read its output in the activity log, fix it, then Retry",
                        step=request, reason=f"{action.name} exit {result.exit_code}")

    def _with_actions(self, request: str, body: Callable[[], None]) -> Callable[[], None]:
        def work() -> None:
            self._actions(request, "before")
            body()
            self._actions(request, "after")

        return work

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

        self._run("PrepareSplit", self._with_actions("PrepareSplit", body))

    def execute_split(self) -> None:
        """ExecuteSplit: the Production side keeps running; the Upgrade side is isolated."""
        ip = str(self.config.upgrade_ip or "")
        self._run("ExecuteSplit", self._with_actions("ExecuteSplit", lambda: self.driver.split(
            critical=list(self.config.critical_services), upgrade_ip=ip,
            progress=self.progress)))

    def install(self) -> None:
        """Install every package on the Upgrade side, reboot it once if needed, verify."""

        def body() -> None:
            assert self.record is not None
            for pkg in self.packages:
                self.journal.log(self.record.id, "info", f"installing {pkg.label}",
                                 step="Install", remote=True, sim_time=self._sim_time())
                self.driver.install(pkg.to_dict() | {"timeout_min": pkg.timeout_min},
                                    progress=self.progress)
            st = self.driver.status()
            upgrade = st.sides[1 - (st.production or 0)]
            if upgrade.reboot_pending or upgrade.os is not PartnerState.OS_UP:
                self.journal.log(self.record.id, "info", "rebooting the Upgrade side",
                                 step="Install", remote=True, sim_time=self._sim_time())
                self.driver.reboot_upgrade_side(progress=self.progress)
            self._verify_upgrade_side()

        self._run("Install", body)

    def _verify_upgrade_side(self) -> None:
        assert self.record is not None
        bad = failed(merge_checks(self.driver, self.config, self.packages))
        if bad:
            raise StepFailedError(f"Upgrade side not ready: {bad[0].detail}",
                                  bad[0].remedy or "Retry", step="Install",
                                  reason=bad[0].check)
        self.journal.log(self.record.id, "info", "Upgrade side verified: OS Up, "
                         + ", ".join(p.label for p in self.packages) + " installed",
                         step="Install", remote=True, sim_time=self._sim_time())

    def prepare_merge(self) -> None:
        """PrepareMerge: the Upgrade side is up, healthy and has every package."""
        self._run("PrepareMerge", self._with_actions("PrepareMerge", self._verify_upgrade_side))

    def execute_merge(self) -> None:
        """ExecuteMerge: the one brief outage; measured from the transaction ledger."""

        def body() -> None:
            self.driver.merge(critical=list(self.config.critical_services),
                              progress=self.progress)

        self._run("ExecuteMerge", self._with_actions("ExecuteMerge", body))

    def soak(self, minutes: float) -> None:
        """Watch the merged system under real load before the commit decision."""
        if minutes < 0:
            raise FtkitError(f"soak_minutes {minutes} is negative", "use 0 or more")
        assert self.record is not None
        before = self.driver.acknowledged()
        self.driver.wait(minutes * 60, progress=self.progress)
        served = self.driver.acknowledged() - before
        self._note_outages("Merge")
        self.journal.log(self.record.id, "info", f"soaked {minutes:g} min on the upgraded "
                         f"software; {served} transactions acknowledged meanwhile",
                         step="Merge", sim_time=self._sim_time(),
                         detail={"soak_minutes": minutes, "transactions": served})

    def commit(self) -> None:
        """Commit: back up event logs, then resync the old side; no outage.

        Refused, with nothing changed, while an enclosure is down: the commit resyncs onto
        the old side and cannot be aborted once started.
        """
        if self.upgrade_state is S.MERGE:
            st = self.driver.status()
            down = [m for m in st.modules.values() if m.state is not ModuleState.ONLINE]
            if down:
                names = ", ".join(f"{m.kind.upper() if m.kind == 'cpu' else 'I/O'} module "
                                  f"{m.id} {m.state.value}" for m in down)
                raise TransitionError(
                    f"Commit refused while an enclosure is down ({names}): the commit "
                    "resynchronises onto it and cannot be aborted once started",
                    "repair or replace the module, then commit; or abort (once the "
                    "original side is back) to return to the original software")

        def body() -> None:
            self._backup_event_logs()
            self.driver.commit(progress=self.progress)

        self._run("Commit", self._with_actions("Commit", body))

    def abort(self) -> None:
        """Abort back to the original software (one restart outage if after merge)."""

        def body() -> None:
            self.driver.abort(progress=self.progress)

        self._run("Abort", self._with_actions("Abort", body))

    def finish(self, *, outcome: str | None = None) -> str:
        """Finish: back to Idle; ends the session with its outcome."""
        came_from = self.upgrade_state
        self._run("Finish", self.driver.finish)
        assert self.record is not None
        lost = self.driver.lost_transactions()
        if lost:
            self.journal.log(self.record.id, "error", f"{lost} acknowledged transactions lost",
                             step="Finish", sim_time=self._sim_time())
        result = outcome or ("committed" if came_from is S.COMMIT
                             else "stopped" if self._answer("split") == "stop" else "aborted")
        self.journal.end_session(self.record.id, outcome=result, sim_time=self._sim_time())
        self._changed()
        return result

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
                                 sim_time=self._sim_time(),
                                 upgrade_state=self.upgrade_state.value,
                                 operational_state=OperationalState.BROKEN.value,
                                 broken_step=pending.step, broken_reason="interrupted")
            self._changed()
        self.step_function(step)()

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
            decision = self.decide("broken", provider)
        except DecisionError:
            raise StepFailedError(
                f"the session is Broken at {step}: {why}",
                "fix the cause, then run again with decisions broken: retry; or broken: "
                "abort (or the abort runbook) to return to the original software",
                step=step, reason=why) from None
        if decision.answer == "retry":
            self.retry()
        else:
            self.abort()
        return decision.answer

    def step_function(self, request: str) -> Callable[[], Any]:
        """The method that runs REQUEST (what Retry and resume call)."""
        steps: dict[str, Callable[[], Any]] = {
            "PrepareSplit": self.prepare_split,
            "ExecuteSplit": self.execute_split,
            "Install": self.install,
            "PrepareMerge": self.prepare_merge,
            "ExecuteMerge": self.execute_merge,
            "Commit": self.commit,
            "Abort": self.abort,
            "Finish": self.finish,
        }
        return steps[request]

    def resume(self) -> str | None:
        """Finish what a killed process left half done; returns the step re-run, if any."""
        if self.record is None:
            return None
        pending = self.journal.pending_intent(self.record.id)
        if pending is None:
            if self.operational_state is OperationalState.BUSY:
                self.journal.set_state(self.record.id, upgrade_state=self.upgrade_state.value,
                                       operational_state=OperationalState.READY.value,
                                       message="resumed: no step was half done")
                self._changed()
            return None
        self.journal.log(self.record.id, "warning",
                         f"resuming: {pending.step} was interrupted; running it again",
                         step=pending.step, sim_time=self._sim_time())
        self.retry()
        return pending.step

    # --- measurements -------------------------------------------------------------------

    def outages(self) -> list[Outage]:
        """Outages since this session started (measured from the ledger)."""
        start = float((self.record.data if self.record else {}).get("sim_start", 0.0))
        return [o for o in self.driver.outages() if o.end is None or o.end > start]

    def _note_outages(self, step: str) -> None:
        """Journal every outage of this session once: when it is seen ongoing, and with its
        measured length once it is over (each keyed by when it started)."""
        assert self.record is not None
        seen: set[tuple[float, bool]] = set()
        for entry in self.journal.entries(self.record.id, kinds=["warning"]):
            detail = entry.detail if isinstance(entry.detail, dict) else {}
            if "outage_start" in detail:
                seen.add((round(float(detail["outage_start"]), 3),
                          detail.get("outage_s") is not None))
        for outage in self.outages():
            key = (round(outage.start, 3), outage.seconds is not None)
            if key in seen:
                continue
            message = (f"outage {outage.seconds:.1f} s (last transaction before at "
                       f"t={outage.start:.1f} s, first after at t={outage.end:.1f} s)"
                       if outage.seconds is not None and outage.end is not None else
                       f"outage ongoing since t={outage.start:.1f} s: the applications "
                       "are down")
            self.journal.log(
                self.record.id, "warning", message, step=step, sim_time=self._sim_time(),
                detail={"outage_s": outage.seconds, "outage_start": outage.start,
                        "start": outage.start, "end": outage.end})

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
                         step="Backup", sim_time=self._sim_time(),
                         detail={"folder": folder.name, "entries": {k: len(v)
                                                                    for k, v in logs.items()}})

    # --- the whole flow -----------------------------------------------------------------

    def run(self, provider: DecisionProvider, *, soak_minutes: float = 0.0) -> str:
        """Drive the session to its end with ``provider``'s decisions; returns the outcome.

        Resumes where the session stands: a resumed run skips what is already done.
        """
        self.resume()
        if self.broken and self.recover(provider) == "abort":
            return self.finish()
        state = self.upgrade_state
        if state is S.IDLE and self.record is None:
            self.prepare_split()
            state = self.upgrade_state
        if state is S.PREPARE_SPLIT:
            if self.decide("split", provider).answer == "stop":
                self.abort()
                return self.finish(outcome="stopped")
            self.execute_split()
            state = self.upgrade_state
        if state is S.SPLIT:
            self.install()
            if self.decide("merge", provider).answer == "abort":
                self.abort()
                return self.finish()
            self.prepare_merge()
            state = self.upgrade_state
        if state is S.PREPARE_MERGE:
            self.execute_merge()
            self.soak(soak_minutes)
            state = self.upgrade_state
        if state is S.MERGE:
            if self.decide("commit", provider).answer == "abort":
                self.abort()
            else:
                self.commit()
            state = self.upgrade_state
        if state in (S.COMMIT, S.ABORT):
            return self.finish()
        return self.record.outcome if self.record and self.record.outcome else state.value


def _load(config: UpgradeConfig | str | os.PathLike[str],
          packages: Iterable[UpdatePackage | str | os.PathLike[str]]
          ) -> tuple[UpgradeConfig, list[UpdatePackage]]:
    cfg = config if isinstance(config, UpgradeConfig) else load_config(config)
    items = list(packages)
    paths = [Path(p) for p in items if not isinstance(p, UpdatePackage)]
    loaded = load_packages(paths) if paths else []
    return cfg, [p for p in items if isinstance(p, UpdatePackage)] + loaded


def open_session(system: str | Driver, config: UpgradeConfig | str | os.PathLike[str],
                 packages: Iterable[UpdatePackage | str | os.PathLike[str]] = (), *,
                 change_id: str = "", operator: str = "", reason: str = "",
                 progress: Progress | None = None) -> Session:
    """The session of ``system``: the unfinished one if there is one (resumed, never a
    second), else a new one that starts at PrepareSplit."""
    cfg, pkgs = _load(config, packages)
    driver = connect(system) if isinstance(system, str) else system
    journal = Journal.open(driver.target)
    record = journal.current_session()
    session = Session(driver=driver, journal=journal, config=cfg, packages=pkgs,
                      change_id=change_id, operator=operator, reason=reason,
                      progress=progress, record=record, resumed=record is not None)
    if record is not None:
        journal.log(record.id, "info",
                    f"session {record.id} (change {record.change_id or '-'}) reopened by "
                    f"{operator or 'unknown'} in {record.upgrade_state}/"
                    f"{record.operational_state}", sim_time=session._sim_time())
    return session


def observe(system: str | Driver) -> Session:
    """A look at ``system``'s session for status displays: the unfinished one, else the
    last one, else none. Writes nothing (unlike :func:`open_session`, which journals the
    reopening); call no request on it: it has no configuration or packages."""
    driver = connect(system) if isinstance(system, str) else system
    journal = Journal.open(driver.target)
    sessions = journal.sessions()
    record = journal.current_session() or (sessions[-1] if sessions else None)
    config = UpgradeConfig(description="status view (no configuration)", system_disks=())
    return Session(driver=driver, journal=journal, config=config, packages=[], record=record)


def plan(system: str | Driver, config: UpgradeConfig | str | os.PathLike[str],
         packages: Iterable[UpdatePackage | str | os.PathLike[str]] = (), *,
         provider: DecisionProvider) -> Plan:
    """What an upgrade would do, from a read-only look at the system; changes nothing."""
    cfg, pkgs = _load(config, packages)
    driver = connect(system) if isinstance(system, str) else system
    st = driver.status()
    checks = run_checks(driver, cfg, pkgs, stage_pending=True)
    decisions = [provider.decide(name) for name in ("split", "merge", "commit")]
    answers = {d.name: d.answer for d in decisions}
    svc = [st.services[c] for c in cfg.critical_services if c in st.services]
    merge_outage = max((s.stop_s for s in svc), default=0) + 10 + max(
        (s.start_s for s in svc), default=0)
    steps: list[dict[str, Any]] = []

    def add(request: str, what: str, minutes: float, outage: str, decision: str = "") -> None:
        steps.append({"request": request, "what": what, "minutes": round(minutes, 1),
                      "outage": outage, "decision": decision})

    add("PrepareSplit", REQUESTS["PrepareSplit"].description
        + f" ({len(pkgs)} package(s))", 0.5 * len(pkgs), "none")
    if answers["split"] == "stop":
        add("Abort", "operator stops before the split", 0, "none", "split: stop")
        return Plan(steps, checks, decisions)
    add("ExecuteSplit", REQUESTS["ExecuteSplit"].description, 1, "none", "split: proceed")
    for pkg in pkgs:
        add("Install", f"install {pkg.label} on the Upgrade side", pkg.duration_min, "none")
    if any(p.needs_reboot for p in pkgs):
        add("Install", "reboot the Upgrade side and verify it", 4.5, "none")
    if answers["merge"] == "abort":
        add("Abort", "abort before merge: resync the Upgrade side", 0, "none", "merge: abort")
        return Plan(steps, checks, decisions)
    add("PrepareMerge", REQUESTS["PrepareMerge"].description, 0, "none")
    add("ExecuteMerge", REQUESTS["ExecuteMerge"].description, merge_outage / 60,
        f"about {merge_outage:.0f} s", "merge: proceed")
    total_gb = sum(m.size_gb for m in st.mirrors.values())
    if answers["commit"] == "abort":
        add("Abort", "abort after merge: restart on the original side, resync",
            total_gb * 1024 / 250 / 60, "one restart", "commit: abort")
    else:
        add("Commit", REQUESTS["Commit"].description, total_gb * 1024 / 250 / 60, "none",
            "commit: commit")
    add("Finish", REQUESTS["Finish"].description, 0, "none")
    return Plan(steps, checks, decisions)

