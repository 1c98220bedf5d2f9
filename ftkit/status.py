"""The driver-neutral status of a system: one dict, documented by a JSON Schema.

``ftkit status TARGET --json`` prints it, the text form and the widgets say the same, and
the driver contract suite validates every driver's status against the schema
(``ftkit/schemas/status.schema.json``). At the top: ``upgrade_state``,
``operational_state`` (with the Broken step and reason) and ``partner_state``; then which
enclosure is the Production side and which the Upgrade side (roles fixed at the split for
the whole session), modules, mirrors, software per system disk, services, outages and
transaction counts. Detail only the simulator has goes under ``sim``.

Read-only: it never creates a journal, and a damaged journal does not hide the system.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from ftkit.drivers import Driver
from ftkit.errors import FtkitError
from ftkit.model import (
    DiskRole,
    OperationalState,
    PartnerState,
    SideRole,
    SystemState,
    UpgradeState,
)

__all__ = ["SCHEMA_PATH", "partner_state", "schema", "session_of", "system_status",
           "validate"]

SCHEMA_PATH = Path(__file__).with_name("schemas") / "status.schema.json"
SCHEMA_ID = "ftkit.status/1"


@cache
def schema() -> dict[str, Any]:
    """The status JSON Schema (read from the package)."""
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return data


def validate(data: dict[str, Any]) -> None:
    """Raise FtkitError naming the first place DATA departs from the schema."""
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(data),
                    key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top)"
        raise FtkitError(f"status does not follow {SCHEMA_ID} at {where}: "
                         f"{errors[0].message}", "fix the driver's status()")


def session_of(driver: Driver) -> dict[str, Any] | None:
    """The unfinished session of DRIVER's system, else its last one, else None; read-only
    (a system with no journal has no session, and none is created)."""
    from ftkit.journal import Journal

    journal = Journal.find(driver)
    if journal is None:
        return None
    try:
        sessions = journal.sessions()
        record = journal.current_session() or (sessions[-1] if sessions else None)
        started = ([e.sim_time for e in journal.entries(record.id, kinds=["intent"])
                    if e.sim_time is not None] if record is not None else [])
        approvals = None
        if record is not None:
            from ftkit.approvals import of_record

            approvals = of_record(journal.entries(record.id, kinds=["info"]), record)
    finally:
        journal.close()
    if record is None:
        return None
    out = {"id": record.id, "change_id": record.change_id, "operator": record.operator,
           "reason": record.reason, "started": record.started, "ended": record.ended,
           "outcome": record.outcome, "upgrade_state": record.upgrade_state,
           "operational_state": record.operational_state,
           "broken_step": record.broken_step, "broken_reason": record.broken_reason,
           **({"approvals": approvals} if approvals else {})}
    controls = _controls(driver, record.data or {}, started)
    return {**out, "controls": controls} if controls else out


def _controls(driver: Driver, data: dict[str, Any], started: list[float]
              ) -> dict[str, Any] | None:
    """The session's change window (met?) and outage budget (ftkit/window.py), from the
    configuration it journaled at its start; None without them. Read-only."""
    from ftkit.window import status_facts

    said = (data.get("config") or {}).get("window")
    if not said:
        return None
    since = float(data.get("sim_start", 0.0))
    merge = next((o.seconds for o in driver.outages()
                  if o.seconds is not None and (o.end or 0) > since), None)
    return status_facts(said, epoch=driver.status().epoch, started=started,
                        merge_outage_s=merge)


def partner_state(st: SystemState) -> PartnerState:
    """The other side's health as the side running the applications sees it (the
    Production side's partner while nothing runs)."""
    running = st.apps_on if st.apps_on is not None else (st.production or 0)
    side = st.sides.get(1 - running)
    return side.os if side is not None else PartnerState.DC_OFF


def _roles(st: SystemState) -> tuple[int | None, int | None]:
    """(Production enclosure, Upgrade enclosure) while a session has them, else Nones."""
    prod = next((s.enclosure for s in st.sides.values() if s.role is SideRole.PRODUCTION),
                st.production)
    upg = next((s.enclosure for s in st.sides.values() if s.role is SideRole.UPGRADE), None)
    if upg is None and prod is not None:
        upg = 1 - prod
    return prod, upg


def system_status(driver: Driver, *, session: dict[str, Any] | bool | None = True
                  ) -> dict[str, Any]:
    """The status of DRIVER's system as a dict following the schema; read-only.

    ``session``: True reads it from the journal, a dict gives it, None/False means none.
    """
    st = driver.status()
    if session is True:
        try:
            session = session_of(driver)
        except FtkitError as err:  # a damaged journal must not hide the system's state
            session = {"id": None, "upgrade_state": UpgradeState.IDLE.value,
                       "operational_state": OperationalState.BROKEN.value,
                       "broken_step": "Journal", "broken_reason": err.message}
    record = session if isinstance(session, dict) else None
    active = record is not None and not record.get("ended")
    upgrade = str(record["upgrade_state"]) if active and record else UpgradeState.IDLE.value
    operational = (str(record["operational_state"]) if active and record
                   else OperationalState.READY.value)
    broken = ({"step": record.get("broken_step") or "", "reason": record.get("broken_reason")
               or ""} if active and record and operational == OperationalState.BROKEN else None)
    partner = partner_state(st).value
    prod, upg = _roles(st)
    if st.apps_on is None:
        apps = "down"
    elif st.apps_duplex:
        apps = "duplex"
    else:
        apps = "upgrade side" if st.apps_on == upg and st.split else "production side"
    outages = driver.outages()
    software = {}
    systems = [m for m in st.mirrors.values() if m.role is DiskRole.SYSTEM]
    if systems:
        boot = st.boot_disk()
        software = {str(enc): dict(sorted(member.software.items()))
                    for enc, member in sorted(boot.members.items())}
    data: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "system": driver.target,
        "system_id": getattr(st, "system_id", None) or None,
        "model": st.model,
        "upgrade_state": upgrade,
        "operational_state": operational,
        "broken": broken,
        "partner_state": partner,
        "session": record,
        "clock": {"now_s": float(st.now), "epoch": st.epoch},
        "duplex": st.duplex,
        "split": st.split,
        "merged": st.merged,
        "production_enclosure": prod if st.split else None,
        "upgrade_enclosure": upg if st.split else None,
        "applications": {"where": apps, "enclosure": st.apps_on,
                         "critical_services": list(st.critical)},
        "enclosures": [
            {"enclosure": s.enclosure, "role": s.role.value, "os": s.os.value,
             "isolated": s.isolated, "address": s.address or None,
             "reboot_pending": s.reboot_pending, "running": list(s.running)}
            for s in sorted(st.sides.values(), key=lambda s: s.enclosure)],
        "modules": [
            {"id": m.id, "kind": m.kind, "enclosure": m.enclosure, "state": m.state.value,
             "reason": m.reason, "primary": m.primary, "fault_count": m.fault_count,
             "below_mtbf": m.below_mtbf}
            for m in sorted(st.modules.values(), key=lambda m: m.id)],
        "mirrors": [
            {"name": m.name, "role": m.role.value, "size_gb": m.size_gb,
             "physical": m.physical, "state": m.state.value, "progress": m.progress,
             "source": m.source,
             "members": [{"enclosure": enc, "healthy": mem.healthy}
                         for enc, mem in sorted(m.members.items())]}
            for m in st.mirrors.values()],
        "software": software,
        "services": [
            {"name": s.name, "exists": s.exists, "critical": s.name in st.critical,
             "running_on": [side.enclosure for side in st.sides.values()
                            if s.name in side.running]}
            for s in st.services.values()],
        "outages": [{"start_s": o.start, "end_s": o.end, "seconds": o.seconds}
                    for o in outages],
        "transactions": {"acknowledged": driver.acknowledged(),
                         "lost": driver.lost_transactions()},
    }
    settings = getattr(driver, "settings", None)
    if settings is not None:
        data["sim"] = {"armed_faults": [dict(f) for f in settings().faults],
                       "staged": sorted(st.staged)}
    return data
