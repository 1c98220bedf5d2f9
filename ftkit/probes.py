"""The soak gathers evidence: health probes while the merged system is watched, and what
they (and the system) say before the commit decision.

A probe is a custom action of ``kind = "probe"`` (run through the driver like any custom
action, exit 0 passes) or the configuration's ``probe_url`` (an HTTP GET, 2xx passes,
:data:`URL_TIMEOUT_S`). :func:`soak` waits the soak in slices of ``probe_every_s`` and
runs every probe after each slice; each result is journaled (``info`` when it passed,
``warning`` when it failed) with its output, secrets masked, under ``detail["probe"]``.
:func:`evidence` reads them back with the outage so far and the transactions served and
lost (what an approver is shown, the commit panel and the record say); :func:`healthy` is
the check ``commit: if-healthy`` runs (:data:`ftkit.flow.HEALTHY`).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from ftkit.model import UpgradeState
from ftkit.redact import mask_env

if TYPE_CHECKING:
    from ftkit.config import CustomAction, UpgradeConfig
    from ftkit.process import Session

__all__ = ["DEFAULT_EVERY_S", "OUTPUT_KEPT", "URL_TIMEOUT_S", "evidence", "healthy",
           "probe_all", "readiness_row", "soak", "summary"]

#: Seconds between two rounds of probes when the configuration says nothing.
DEFAULT_EVERY_S = 60.0
#: How long a probe_url request may take, in seconds.
URL_TIMEOUT_S = 5.0
#: How many characters of a probe's output the journal keeps (the end).
OUTPUT_KEPT = 1000
_STEP = UpgradeState.MERGE.value  # the probes watch the merged system


def _configured(config: UpgradeConfig) -> bool:
    return bool(getattr(config, "probes", ())) or bool(getattr(config, "probe_url", None))


def readiness_row(config: UpgradeConfig) -> str:
    """What the readiness check (``soak-probes``) and the plan say of the soak's probes
    under CONFIG (read-only): which, how often; ``probe_url`` without its user, password
    or query (they may hold credentials)."""
    from urllib.parse import urlsplit

    said = [f"probe action(s) {', '.join(a.name for a in config.probes)}"] \
        if config.probes else []
    url = getattr(config, "probe_url", None)
    if url:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        said.append(f"probe_url {parts.scheme}://{host}{port}{parts.path} (expects 2xx)")
    if not said:
        return ("no probe declared: the soak gathers no probe evidence (custom actions of "
                'kind = "probe", or probe_url)')
    every = float(getattr(config, "probe_every_s", None) or DEFAULT_EVERY_S)
    return f"{' and '.join(said)} every {every:g} s of the soak"


def soak(session: Session, seconds: float) -> None:
    """Wait SECONDS on the merged system (the driver's clock), probing every
    ``probe_every_s`` when the configuration declares probes; each result journaled (one
    transaction each). Without probes: one wait, nothing written."""
    config = session.config
    if not _configured(config) or seconds <= 0:
        session.driver.wait(seconds, progress=session.progress)
        return
    every = float(getattr(config, "probe_every_s", None) or DEFAULT_EVERY_S)
    left = seconds
    while left > 1e-9:
        part = min(every, left)
        session.driver.wait(part, progress=session.progress)
        left -= part
        probe_all(session)


def probe_all(session: Session) -> list[dict[str, Any]]:
    """Run every probe once and journal each result; returns them."""
    config = session.config
    results = [_run_action(session, action) for action in getattr(config, "probes", ())]
    url = getattr(config, "probe_url", None)
    if url:
        results.append(_get(url, config))
    record = session.record
    assert record is not None
    for result in results:
        session.journal.log(
            record.id, "info" if result["ok"] else "warning",
            f"probe {result['name']} {'passed' if result['ok'] else 'FAILED'}: "
            f"{result['said']}", step=_STEP, sim_time=session.now(),
            detail={"probe": result})
    return results


def _masked(text: str, config: UpgradeConfig) -> str:
    return mask_env(text or "", config.secret_env)[-OUTPUT_KEPT:]


def _run_action(session: Session, action: CustomAction) -> dict[str, Any]:
    side = "Production" if action.runs_on("Production") else "Upgrade"
    env = action.environment({"ACTIVE_UPGRADE_SIDE": side, "ACTIVE_UPGRADE_STATE": _STEP,
                              "ACTIVE_UPGRADE_REQUEST": "probe",
                              "ACTIVE_UPGRADE_HW_SPLIT": "No"})
    done = session.driver.run_custom_action(str(action.path), args=list(action.args),
                                            env=env, timeout_s=action.timeout_s,
                                            request="probe", side=side)
    out = done.stdout.decode("utf-8", "replace") if isinstance(done.stdout, bytes) \
        else (done.stdout or "")
    err = done.stderr.decode("utf-8", "replace") if isinstance(done.stderr, bytes) \
        else (done.stderr or "")
    ok = done.exit_code == 0 and not done.timed_out
    said = "timed out" if done.timed_out else f"exit {done.exit_code}"
    return {"name": action.name, "kind": "action", "ok": ok, "said": said,
            "output": _masked(out + err, session.config)}


def _get(url: str, config: UpgradeConfig) -> dict[str, Any]:
    """GET URL: 2xx passes (read-only on our side)."""
    name = "probe_url"
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as reply:
            status = int(reply.status)
            body = reply.read(OUTPUT_KEPT).decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read(OUTPUT_KEPT).decode("utf-8", "replace")
        err.close()
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return {"name": name, "kind": "url", "ok": False,
                "said": _masked(f"no answer: {reason}", config), "output": ""}
    return {"name": name, "kind": "url", "ok": 200 <= status < 300, "said": f"HTTP {status}",
            "output": _masked(body, config)}


def evidence(session: Session) -> dict[str, Any]:
    """What the soak showed so far (read-only): probes passed and failed, the last errors,
    minutes soaked and transactions served meanwhile, the outage so far (and the budget
    when the configuration has one), transactions acknowledged and lost."""
    passed = failed = 0
    errors: list[str] = []
    for entry in session.entries(kinds=["info", "warning"]):
        detail = entry.detail if isinstance(entry.detail, dict) else {}
        probe = detail.get("probe")
        if not isinstance(probe, dict):
            continue
        if probe.get("ok"):
            passed += 1
        else:
            failed += 1
            errors.append(f"{probe.get('name')}: {probe.get('said')}")
    minutes, served = session.soak_result()
    outages = session.outages()
    shown: dict[str, Any] = {
        "probes_passed": passed, "probes_failed": failed, "errors": errors[-3:],
        "soak_minutes": round(minutes, 2), "served": served,
        "outage_s": round(sum((o.seconds or 0.0) for o in outages), 1),
        "acknowledged": session.driver.acknowledged(),
        "lost_transactions": session.driver.lost_transactions(),
    }
    budget = _budget(session)
    if budget is not None:
        shown["max_outage_s"] = budget
    return shown


def _budget(session: Session) -> float | None:
    """``[window] max_outage_s`` when the configuration has one (ftkit/window.py)."""
    value = session.controls.max_outage_s
    return None if value is None else float(value)


def healthy(session: Session) -> tuple[str, str] | None:
    """The check of ``commit: if-healthy``: None when every probe passed (and at least one
    ran, where probes are declared), the outage budget held and no acknowledged
    transaction is lost; else (why, remedy). Read-only."""
    shown = evidence(session)
    if shown["probes_failed"]:
        return (f"{shown['probes_failed']} of {shown['probes_failed'] + shown['probes_passed']}"
                f" probe(s) failed ({'; '.join(shown['errors'])})",
                "read the probes in the activity log")
    if _configured(session.config) and not shown["probes_passed"]:
        return ("no probe ran during the soak (soak_minutes 0?): no evidence of health",
                "soak with probes before if-healthy")
    budget = shown.get("max_outage_s")
    if budget is not None and shown["outage_s"] > budget:
        return (f"outage {shown['outage_s']:g} s exceeded the budget of {budget:g} s",
                "see the outages in the activity log")
    if shown["lost_transactions"]:
        return (f"{shown['lost_transactions']} acknowledged transactions lost",
                "stop and investigate")
    return None


def summary(session: Session) -> str:
    """The evidence in one line (read-only): what the healthy decision's reason says."""
    shown = evidence(session)
    text = (f"{shown['probes_passed']} probe(s) passed, {shown['probes_failed']} failed; "
            f"outage {shown['outage_s']:g} s")
    if "max_outage_s" in shown:
        text += f" (budget {shown['max_outage_s']:g} s)"
    return text + f"; {shown['served']} transactions served in the soak"
