"""Text the ``ftkit`` command prints: tables, one-line summaries, the status page, a run's
outcome and the runbook list of ``ftkit run --help``.

Every function here only formats what it is given (no driver, journal or file is opened,
except :func:`runbooks_help`, which reads the runbooks' parameters cells); the commands in
:mod:`ftkit.cli.commands` gather the data. A value that came from input or a file (a name,
a reason, a ledger field, an error) is printed through :func:`visible`: a control
character, line separator or bidi mark shows escaped (``\x1b``, ``\u202e``), never raw, so
it cannot clear the screen, fake a line or reorder one.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftkit.preflight import visible

if TYPE_CHECKING:
    from ftkit.archive import LedgerEntry
    from ftkit.drivers import Outage
    from ftkit.model import SystemState

__all__ = [
    "check_text",
    "entry_text",
    "faults_text",
    "hms",
    "ledger_text",
    "outage_dict",
    "print_json",
    "progress_printer",
    "runbooks_help",
    "sim_list_text",
    "status_text",
    "summary",
    "table",
    "visible",
]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> str:
    """Left-aligned columns under HEADERS and a dashed rule; None prints as nothing, and
    every cell through :func:`visible`."""
    cells = [[visible(h) for h in headers]] + [["" if c is None else visible(c) for c in r]
                                               for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    lines.insert(1, indent + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def hms(seconds: float | None) -> str:
    """``3725`` → ``1:02:05`` (``2d 1:02:05`` past a day); None is ``ongoing``."""
    if seconds is None:
        return "ongoing"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    text = f"{h}:{m:02d}:{s:02d}"
    return f"{days}d {text}" if days else text


def _seconds(value: float | None) -> str:
    return "ongoing" if value is None else f"{value:.1f} s"


def print_json(data: Any) -> None:
    """DATA as indented JSON with sorted keys on stdout."""
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def progress_printer() -> Callable[[str, float, float], None] | None:
    """A one-line progress display on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        return None

    def show(label: str, done: float, total: float) -> None:
        pct = 100.0 * done / total if total else 100.0
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r  {label}: {pct:5.1f} %{' ' * 10}{end}")
        sys.stderr.flush()

    return show


# --- a system ---------------------------------------------------------------------------


def summary(st: SystemState) -> str:
    """One line: duplex/split/merged, broken modules, resyncs, where the applications run."""
    from ftkit.model import MirrorState, ModuleState

    if st.split:
        parts = [f"{'merged' if st.merged else 'split'} (Production side {st.production})"]
    elif st.duplex:
        parts = ["duplex"]
    else:
        parts = ["simplex"]
    parts += [
        f"module {m.id} {m.state.value}" for m in st.modules.values()
        if m.state is not ModuleState.ONLINE
    ]
    for mirror in st.mirrors.values():
        if mirror.state is MirrorState.RESYNCING:
            parts.append(f"{mirror.name} resyncing {mirror.progress:.0%}")
        elif mirror.state is MirrorState.BROKEN:
            parts.append(f"{mirror.name} broken")
    if st.apps_on is None:
        parts.append("applications DOWN")
    elif st.apps_duplex:
        parts.append("applications duplex")
    else:
        parts.append(f"applications on enclosure {st.apps_on}")
    if st.unfinished is not None:
        parts.append(f"{st.unfinished.value} unfinished")
    return ", ".join(parts)


def outage_dict(outage: Outage) -> dict[str, Any]:
    """An outage as the JSON of ``ftkit status --json`` shows it."""
    return {
        "start": outage.start,
        "end": outage.end,
        "seconds": outage.seconds,
        "before": outage.before,
        "after": outage.after,
    }


def _primary_io(st: SystemState) -> str:
    """Which I/O module is primary, as the module table marks it."""
    primary = [m for m in st.modules.values() if m.primary]
    if not primary:
        return "no primary I/O module"
    return ", ".join(f"primary I/O module {m.id} in enclosure {m.enclosure}" for m in primary)


def status_text(status: Mapping[str, Any]) -> str:
    """The page ``ftkit status`` prints from what :func:`ftkit.cli.commands.gather_status`
    gathered: the summary, the session, modules, mirrors, disks, teams, sides, services,
    applications, transactions, outages, armed faults and staged packages."""
    from ftkit.model import DiskRole

    target: str = visible(status["target"])
    st: SystemState = status["state"]
    neutral: dict[str, Any] = status["status"]  # the driver-neutral status (the JSON)
    session: dict[str, Any] | None = neutral["session"]
    outages: list[Outage] = status["outages"]
    faults: list[dict[str, Any]] | None = status["faults"]
    broken = neutral["broken"]
    out = [
        f"{target} — {visible(st.model)}",
        f"  upgrade state {neutral['upgrade_state']}, operational state "
        f"{neutral['operational_state']}"
        + (f" at {visible(broken['step'])}: {visible(broken['reason'])}" if broken else "")
        + f", partner state {neutral['partner_state']}",
        f"  {summary(st)}",
        f"  simulated time {hms(st.now)} since {st.epoch}",
    ]
    if session is None:
        out.append("  session: none (Idle)")
    else:
        ended = (f", ended {session['outcome']}" if session.get("ended") else "")
        out.append(
            f"  session {visible(session['id'])} {visible(session['change_id'] or '')}"
            f"{' by ' + visible(session['operator']) if session.get('operator') else ''}"
            f" (last state {session['upgrade_state']}, {session['operational_state']}"
            f"{ended})"
        )
        controls = session.get("controls") or {}
        if "window" in controls:
            w = controls["window"]
            out.append(f"  change window {visible(w['start'])} to {visible(w['end'])}: "
                       + ("met" if w["met"] else "a step started outside it"))
        if "outage_budget" in controls:
            b = controls["outage_budget"]
            over = b["merge_outage_s"] - b["max_outage_s"]
            out.append(f"  outage budget {b['max_outage_s']:g} s: merge outage "
                       f"{b['merge_outage_s']:g} s, "
                       + ("met" if b["met"] else f"exceeded by {over:.1f} s"))
        approvals = session.get("approvals")
        if approvals:  # Commit's approvals (ftkit approve)
            given = ", ".join(f"{visible(a['by'])} ({visible(a['account'])}, {a['when']})"
                              for a in approvals["given"]) or "none yet"
            out.append(f"  approvals of Commit: {len(approvals['given'])} of "
                       f"{approvals['required']} required: {given}")
    out += ["", "Modules", table(
        ["id", "kind", "enclosure", "state", "primary", "faults", "MTBF h / threshold", "policy"],
        [
            [m.id, m.kind, m.enclosure, m.state.value + (f" ({m.reason})" if m.reason else ""),
             "yes" if m.primary else "", m.fault_count,
             f"{m.mtbf_h:g} / {m.mtbf_threshold_h:g}" + (" LOW" if m.below_mtbf else ""),
             m.mtbf_policy.value]
            for m in st.modules.values()
        ],
    )]
    mirror_rows = []
    for m in st.mirrors.values():
        state = m.state.value
        if m.source is not None:
            state += f" {m.progress:.0%} from {m.source}"
        sw = ""
        if m.role is DiskRole.SYSTEM:
            versions = {
                enc: ", ".join(f"{k} {v}" for k, v in sorted(member.software.items()))
                for enc, member in m.members.items()
            }
            sw = "same on both" if len(set(versions.values())) == 1 else "; ".join(
                f"[{enc}] {text}" for enc, text in versions.items())
        health = " ".join(
            f"{enc}:{'ok' if member.healthy else 'FAILED'}" for enc, member in m.members.items()
        )
        mirror_rows.append([m.name, m.role.value, f"{m.size_gb:g} GB", m.physical, state,
                            health, sw])
    out += ["", "Mirrors (RDR)", table(
        ["name", "role", "size", "physical", "state", "members", "software"], mirror_rows)]
    if st.external:
        out += ["", "External disks", table(
            ["name", "size", "HBAs reachable", "healthy"],
            [[d.name, f"{d.size_gb:g} GB",
              " ".join(f"{e}:{'yes' if ok else 'no'}" for e, ok in d.hbas.items()),
              "yes" if d.healthy else "NO"] for d in st.external.values()],
        )]
    if st.teams:
        out += ["", "Teams", table(
            ["name", "network", "address", "addressing", "lease", "adapters"],
            [[t.name, t.network, t.address, t.addressing,
              ("renewable" if t.lease_renewable else "NOT renewable")
              if t.addressing == "dhcp" else "",
              ", ".join(f"{a.name}@{a.enclosure}{'' if a.link else ' (no link)'}"
                        for a in t.adapters)] for t in st.teams.values()],
        )]
    out += ["", "Sides", table(
        ["enclosure", "role", "partner state", "isolated", "address", "running"],
        [[s.enclosure, s.role.value, s.os.value + (" (reboot pending)" if s.reboot_pending
                                                   else ""),
          "yes" if s.isolated else "", s.address, ", ".join(s.running)]
         for s in st.sides.values()],
    )]
    boot = st.boot_disk() if any(m.role is DiskRole.SYSTEM for m in st.mirrors.values()) else None
    service_rows = []
    for svc in st.services.values():
        startup = ""
        if boot is not None:
            startup = " / ".join(
                member.startup.get(svc.name, "-") for member in boot.members.values()
            )
        running = [str(s.enclosure) for s in st.sides.values() if svc.name in s.running]
        service_rows.append([
            svc.name, "yes" if svc.exists else "MISSING",
            "yes" if svc.name in st.critical else "", startup, ", ".join(running) or "-",
        ])
    out += ["", "Services", table(
        ["name", "installed", "critical", "startup (enc 0 / 1)", "running on"], service_rows)]
    if st.apps_on is None:
        apps = "DOWN (outage in progress)"
    elif st.apps_duplex:
        apps = f"duplex (both enclosures in lockstep, {_primary_io(st)})"
    else:
        apps = f"enclosure {st.apps_on}"
    out += ["", f"Applications: {apps}",
            f"Transactions: {status['acknowledged']} acknowledged, {status['lost']} lost"]
    if outages:
        out += ["Outages:", table(
            ["#", "from (sim time)", "to", "length", "before", "after"],
            [[i, hms(o.start), "" if o.end is None else hms(o.end), _seconds(o.seconds),
              "duplex" if o.before is None else f"enclosure {o.before}",
              "-" if o.after is None else f"enclosure {o.after}"]
             for i, o in enumerate(outages, 1)],
        )]
    else:
        out.append("Outages: none")
    if faults:
        out.append("Armed faults: " + visible("; ".join(
            f"{f['name']} at {f['point']} on {f['side']}"
            + (f" ({f['target']})" if f.get("target") else "") + f" ×{f['times']}"
            for f in faults)))
    if st.staged:
        out.append("Staged packages: " + visible(", ".join(sorted(st.staged))))
    return "\n".join(out)


def sim_list_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table of ``ftkit sim list`` (rows as :func:`~ftkit.cli.commands.cmd_sim_list`
    gathers them)."""
    return table(
        ["name", "scenario", "sim time", "state"],
        [[r["name"], r["scenario"], "" if r["time"] is None else hms(r["time"]),
          r["state"] + (f"; {r['faults_armed']} fault(s) armed" if r.get("faults_armed")
                        else "")]
         for r in rows],
        indent="",
    )


def faults_text(catalogue: Mapping[str, Any]) -> str:
    """The fault catalogue of ``ftkit sim faults``."""
    return table(
        ["fault", "points (--at)", "default", "side", "what happens"],
        [[f.name, ", ".join(f.points), f.default_point, f.default_side, f.description]
         for f in catalogue.values()],
        indent="",
    ) + "\n\nsides (--side): production, upgrade, 0, 1; point 'now' happens at once."


def check_text(target: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """The readiness table of ``ftkit check``: a mark, the check, its detail and remedy."""
    marks = {"pass": "ok  ", "warn": "WARN", "fail": "FAIL"}
    out = [f"readiness check of {visible(target)}"]
    for row in rows:
        out.append(f"  {marks.get(row['status'], row['status'])}  {visible(row['check'])}: "
                   f"{visible(row['detail'])}")
        if row["status"] != "pass" and row.get("remedy"):
            out.append(f"        → {visible(row['remedy'])}")
    counts = {s: sum(r["status"] == s for r in rows) for s in ("pass", "warn", "fail")}
    out.append(f"{len(rows)} checks: {counts['pass']} passed, {counts['warn']} warned, "
               f"{counts['fail']} failed")
    return "\n".join(out)


# --- runs and reports ---------------------------------------------------------------------


def entry_text(entry: LedgerEntry, reports: Path, *, message: str = "") -> str:
    """A run's ledger entry: its outcome (with MESSAGE, the one line of the run's result),
    outage, error, the report files and the ledger line."""
    outcome = f"outcome: {visible(entry.outcome)}"
    if message:
        outcome += f" — {visible(message)}"
    out = [outcome]
    if entry.outage_s is not None:
        out.append(f"outage:  {entry.outage_s:g} s")
    if entry.error:
        out.append(f"error:   {visible(entry.error)}")
    out += [f"report:  {visible(reports / name)}" for name in (entry.notebook, entry.html)
            if name]
    out.append(f"ledger:  {reports / 'ledger.jsonl'} (seq {entry.seq})")
    return "\n".join(out)


def ledger_text(entries: Sequence[LedgerEntry]) -> str:
    """The ledger of ``ftkit reports list``, one run a line."""
    return table(
        ["seq", "started", "runbook", "system", "change", "operator", "outcome", "outage",
         "report"],
        [[e.seq, e.started, e.runbook, e.system, e.change_id, e.operator, e.outcome,
          "" if e.outage_s is None else f"{e.outage_s:g} s", e.html or e.notebook or ""]
         for e in entries],
        indent="",
    )


def runbooks_help(folder: Path) -> str:
    """The runbooks in FOLDER with their parameters (name, default, the comment on its line),
    read from each notebook's parameters cell; the text ``ftkit run --help`` ends with."""
    from ftkit.errors import FtkitError
    from ftkit.runner import runbook_parameters, runbook_title

    books = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    if not books:
        return f"runbooks: none in {folder} (set $FTKIT_RUNBOOKS, or give RUNBOOK as a path)"
    out = [f"runbooks (in {folder}; set a parameter with -p NAME VALUE):"]
    for book in books:
        title = runbook_title(book)
        out.append(f"  {visible(book.stem)}" + (f" — {visible(title)}" if title else ""))
        try:
            declared = runbook_parameters(book)
        except FtkitError as err:
            out.append(f"      (unreadable: {visible(err.message)})")
            continue
        if not declared:
            out.append("      (no parameters)")
        width = max((len(name) for name in declared), default=0)
        for name, info in declared.items():
            line = f"      {name.ljust(width)}  {visible(info['default'])}"
            if info["help"]:
                line += f"  # {visible(info['help'])}"
            out.append(textwrap.shorten(line, width=160, placeholder=" …")
                       if len(line) > 160 else line)
    return "\n".join(out)
