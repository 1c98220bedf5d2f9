"""The system's inventory as DataFrames (read-only): modules, disks, network, services,
installed software per enclosure."""

from __future__ import annotations

from typing import Any

from ftkit.drivers import Driver
from ftkit.model import DiskRole, SystemState

__all__ = ["inventory", "show_inventory"]


def inventory(source: Driver | SystemState) -> dict[str, Any]:
    """``{"modules": df, "disks": df, "network": df, "services": df, "software": df}``
    from one ``status()`` snapshot; changes nothing."""
    import pandas as pd

    st = source if isinstance(source, SystemState) else source.status()
    modules = pd.DataFrame([{
        "module": m.id, "kind": "CPU" if m.kind == "cpu" else "I/O", "enclosure": m.enclosure,
        "state": m.state.value, "reason": m.reason, "primary": m.primary,
        "fault count": m.fault_count, "MTBF (h)": m.mtbf_h,
        "MTBF threshold (h)": m.mtbf_threshold_h, "MTBF policy": m.mtbf_policy.value,
    } for m in sorted(st.modules.values(), key=lambda m: m.id)])
    disks = [{
        "disk": m.name, "role": m.role.value, "size (GB)": m.size_gb, "physical": m.physical,
        "state": m.state.value,
        "resync": f"{m.progress * 100:.0f}% from enclosure {m.source}"
        if m.state.value == "resyncing" else "",
        "member 0": "healthy" if m.members.get(0) and m.members[0].healthy else "failed",
        "member 1": "healthy" if m.members.get(1) and m.members[1].healthy else "failed",
    } for m in st.mirrors.values()]
    disks += [{
        "disk": d.name, "role": "data (external)", "size (GB)": d.size_gb, "physical": "HBA",
        "state": "healthy" if d.healthy else "failed", "resync": "",
        "member 0": "reachable" if d.hbas.get(0) else "cut off",
        "member 1": "reachable" if d.hbas.get(1) else "cut off",
    } for d in st.external.values()]
    network = pd.DataFrame([{
        "team": t.name, "address": t.address, "addressing": t.addressing, "network": t.network,
        "adapters": ", ".join(f"{a.name} (enclosure {a.enclosure})" for a in t.adapters),
        "lease renewable": t.lease_renewable if t.addressing == "dhcp" else "",
    } for t in st.teams.values()])
    boot = st.boot_disk() if any(m.role is DiskRole.SYSTEM for m in st.mirrors.values()) \
        else None
    services = pd.DataFrame([{
        "service": s.name, "installed": s.exists, "critical": s.name in st.critical,
        **{f"startup {e}": str(boot.members[e].startup.get(s.name, "")) if boot else ""
           for e in (0, 1)},
        **{f"running {e}": s.name in st.sides[e].running for e in (0, 1)},
    } for s in st.services.values()])
    names = sorted({n for m in (boot.members.values() if boot else []) for n in m.software})
    software = pd.DataFrame([{
        "software": n,
        **{f"enclosure {e}": boot.members[e].software.get(n, "") for e in (0, 1)},
    } for n in names]) if boot else pd.DataFrame()
    return {"modules": modules, "disks": pd.DataFrame(disks), "network": network,
            "services": services, "software": software}


def show_inventory(source: Driver | SystemState) -> dict[str, Any]:
    """Display the inventory, one titled table per part; returns the DataFrames."""
    from IPython.display import HTML, display

    frames = inventory(source)
    for name, frame in frames.items():
        display(HTML(f"<h4 style='margin:8px 0 2px'>{name.capitalize()}</h4>"))
        display(frame.style.hide(axis="index").format(precision=0)
                .set_properties(**{"text-align": "left"}))
    return frames
