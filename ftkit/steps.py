"""What each request of the process does on the system: the bodies and guards that
:mod:`ftkit.flow` declares, registered on its table (``@flow.body``, ``@flow.guard``).

Each body gets the :class:`~ftkit.engine.StepRun` of the request and asks the driver;
it journals only progress notes and what it observed (the engine writes the intent,
the custom actions, the outcome and the state). Finish returns the session's outcome.
A failure raises; the engine leaves the session Broken at the request.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from ftkit import flow
from ftkit.checks import failed, merge_checks, run_checks
from ftkit.errors import StepFailedError
from ftkit.home import ftkit_home
from ftkit.model import ModuleState, PartnerState, Request

if TYPE_CHECKING:
    from ftkit.engine import StepRun
    from ftkit.process import Session

__all__: list[str] = []  # nothing to import: the bodies are reached through ftkit.flow

R = Request


@flow.body(R.PREPARE_SPLIT)
def prepare_split(step: StepRun) -> None:
    """Stage the packages on the system disk (the Upgrade side will have no network),
    then run the readiness check again as part of the session."""
    session = step.session
    for pkg in session.packages:
        step.driver.stage(pkg.label, pkg.digest)
    bad = failed(run_checks(step.driver, session.config, session.packages, in_session=True))
    if bad:
        first = bad[0]
        raise StepFailedError(
            f"readiness check failed: {first.title}: {first.detail}",
            first.remedy or "fix it, then Retry", step=step.request,
            reason=f"{len(bad)} readiness check(s) failed: " + ", ".join(r.check for r in bad))


@flow.body(R.EXECUTE_SPLIT)
def execute_split(step: StepRun) -> None:
    """The Production side keeps running; the Upgrade side is isolated."""
    config = step.session.config
    step.driver.split(critical=list(config.critical_services),
                      upgrade_ip=str(config.upgrade_ip or ""), progress=step.progress)


@flow.body(R.INSTALL)
def install(step: StepRun) -> None:
    """Install every package on the Upgrade side, reboot it once if needed, verify it."""
    for pkg in step.session.packages:  # progress notes: the Install intent is synced
        step.log("info", f"installing {pkg.label}", step=step.request, remote=True)
        step.driver.install(pkg.to_dict() | {"timeout_min": pkg.timeout_min},
                            progress=step.progress)
    st = step.driver.status()
    upgrade = st.sides[1 - (st.production or 0)]
    if upgrade.reboot_pending or upgrade.os is not PartnerState.OS_UP:
        step.log("info", "rebooting the Upgrade side", step=step.request, remote=True)
        step.driver.reboot_upgrade_side(progress=step.progress)
    _verify_upgrade_side(step)


@flow.body(R.PREPARE_MERGE)
def prepare_merge(step: StepRun) -> None:
    """The Upgrade side is up, healthy and has every package."""
    _verify_upgrade_side(step)


def _verify_upgrade_side(step: StepRun) -> None:
    session = step.session
    bad = failed(merge_checks(step.driver, session.config, session.packages))
    if bad:
        raise StepFailedError(f"Upgrade side not ready: {bad[0].detail}",
                              bad[0].remedy or "Retry", step=step.request,
                              reason=bad[0].check)
    step.note("info", "Upgrade side verified: OS Up, "
              + ", ".join(p.label for p in session.packages) + " installed",
              step=step.request, remote=True, sim_time=step.now())


@flow.body(R.EXECUTE_MERGE)
def execute_merge(step: StepRun) -> None:
    """The one brief outage; measured from the transaction ledger."""
    step.driver.merge(critical=list(step.session.config.critical_services),
                      progress=step.progress)


@flow.body(R.COMMIT)
def commit(step: StepRun) -> None:
    """Back up the event logs from the Production side (commit overwrites its system
    disk), then resynchronise the old side from the new one; no outage."""
    _backup_event_logs(step)
    step.driver.commit(progress=step.progress)


@flow.body(R.ABORT)
def abort(step: StepRun) -> None:
    """Back to the original software (one restart outage if after the merge)."""
    step.driver.abort(progress=step.progress)


@flow.body(R.FINISH)
def finish(step: StepRun) -> str:
    """Back to Idle once the resync is complete; returns the session's outcome, which
    the engine records with Finish's outcome (one transaction)."""
    step.driver.finish()
    lost = step.driver.lost_transactions()
    if lost:
        step.note("error", f"{lost} acknowledged transactions lost", step=step.request,
                  sim_time=step.now())
    return flow.outcome(step.came_from, step.answers())


def _backup_event_logs(step: StepRun) -> None:
    session = step.session
    assert session.record is not None
    if not session.config.event_logs:
        return
    logs = step.driver.backup_event_logs(list(session.config.event_logs))
    folder = (ftkit_home() / "backups" / session.journal.path.stem
              / f"session-{session.record.id}")
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in logs.items():
        tmp = folder / f"{name}.json.tmp"
        tmp.write_text(json.dumps(lines, indent=1))
        os.replace(tmp, folder / f"{name}.json")
    step.log("info", f"event logs backed up from the Production side: {', '.join(logs)}",
             step=R.BACKUP, detail={"folder": folder.name,
                                    "entries": {k: len(v) for k, v in logs.items()}})


# --- guards: each returns None or (why, remedy); a refusal changes nothing ---------------

@flow.guard("something to install")
def something_to_install(session: Session) -> tuple[str, str] | None:
    """An upgrade whose every package is installed already would split, merge (an
    outage) and commit for no change: refused before the split."""
    from ftkit.process import nothing_to_install

    return nothing_to_install(session.driver.status(), session.config, session.packages)


@flow.guard("enclosures up")
def enclosures_up(session: Session) -> tuple[str, str] | None:
    """Commit resyncs onto the old side and cannot be aborted once started."""
    down = [m for m in session.driver.status().modules.values()
            if m.state is not ModuleState.ONLINE]
    if not down:
        return None
    names = ", ".join(f"{m.kind.upper() if m.kind == 'cpu' else 'I/O'} module "
                      f"{m.id} {m.state.value}" for m in down)
    return (f"Commit refused while an enclosure is down ({names}): the commit "
            "resynchronises onto it and cannot be aborted once started",
            "repair or replace the module, then commit; or abort (once the original "
            "side is back) to return to the original software")


@flow.guard(flow.APPROVED)
def approved(session: Session) -> tuple[str, str] | None:
    """Two people at the point of no return: the approvals ``[approvals] commit`` asks
    for, from accounts other than the operator's (:func:`ftkit.approvals.refusal`)."""
    from ftkit.approvals import refusal

    return refusal(session)


@flow.guard(flow.HEALTHY)
def soak_healthy(session: Session) -> tuple[str, str] | None:
    """``commit: if-healthy``: every probe passed, the outage budget held, nothing lost
    (:func:`ftkit.probes.healthy`)."""
    from ftkit.probes import healthy

    return healthy(session)
