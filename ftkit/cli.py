"""The ``ftkit`` command: simulated systems, status, readiness check, runbooks, reports.

::

    ftkit sim create lab1 [--scenario demo] [--seed 0] [--time-scale 0]
    ftkit sim list | scenarios | faults
    ftkit sim fault lab1 module-fail --at merge --side production [--target T] [--times N]
    ftkit sim clear lab1 [FAULT]          # disarm armed faults
    ftkit sim repair lab1 [WHAT]          # "all", a module id or a disk name
    ftkit sim remove lab1
    ftkit status sim://lab1 [--json]
    ftkit check sim://lab1 --config upgrade.toml --package pkg.toml ... [--require-staged] [--json]
    ftkit run active-upgrade -p system sim://lab1 -p mode auto ...
    ftkit reports list [--json] | verify | add NOTEBOOK [--runbook NAME] [-p NAME VALUE]

A NAME or TARGET without ``SCHEME://`` means ``sim://NAME``.

Exit status: 0 success; 1 a step, check, run or verification failed; 2 bad input (a
usage error, an unknown name, a malformed file) — and bad input changes nothing.  Every
:class:`~ftkit.errors.FtkitError` becomes one line ``ftkit: <message>`` on stderr, never
a traceback.

Start-up stays fast: this module imports only the standard library and
:mod:`ftkit.errors`; ``status`` and ``sim`` never import pandas, nbformat, nbconvert,
papermill, IPython or ipywidgets (``check``, ``run`` and ``reports add`` do, lazily).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftkit.errors import (
    ConfigError,
    DecisionError,
    FaultError,
    FtkitError,
    PackageError,
    TargetError,
    TransitionError,
)

if TYPE_CHECKING:
    from ftkit.drivers import Driver, Outage
    from ftkit.model import SystemState

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "main"]

EXIT_OK = 0
EXIT_FAILED = 1  # a step, check, run or verification failed
EXIT_BAD_INPUT = 2  # usage error, unknown name, malformed file: nothing was changed

#: Errors that mean the command line named something wrong (exit 2), not that work failed.
BAD_INPUT: tuple[type[FtkitError], ...] = (
    TargetError,
    ConfigError,
    PackageError,
    FaultError,
    DecisionError,
    TransitionError,
)


class BadInput(FtkitError):
    """Bad input the command line itself found (exit 2)."""


class Failed(FtkitError):
    """A check, run or verification that did not pass (exit 1); already reported."""


def _exit_code(err: FtkitError) -> int:
    return EXIT_BAD_INPUT if isinstance(err, (BadInput, *BAD_INPUT)) else EXIT_FAILED


# --- small helpers ------------------------------------------------------------------


def _target(name: str) -> str:
    """``lab1`` → ``sim://lab1``; a ``SCHEME://…`` target is kept as it is."""
    return name if "://" in name else f"sim://{name}"


def _sim_target(name: str) -> tuple[str, str]:
    """The ``sim://`` target NAME means and the rest after the scheme."""
    from ftkit.drivers import split_target

    target = _target(name)
    scheme, rest = split_target(target)
    if scheme != "sim":
        raise BadInput(f"{target!r} is not a simulated system", "write NAME or sim://NAME")
    return target, rest


def _connect(name: str) -> Driver:
    from ftkit.drivers import connect

    return connect(_target(name))


def _open_sim(name: str) -> Any:
    """A SimDriver for NAME (a bare name or a sim:// target)."""
    from ftkit.sim.driver import open_sim

    target, rest = _sim_target(name)
    return open_sim(target, rest)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    lines.insert(1, indent + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _hms(seconds: float | None) -> str:
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


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def _progress_printer() -> Callable[[str, float, float], None] | None:
    """A one-line progress display on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        return None

    def show(label: str, done: float, total: float) -> None:
        pct = 100.0 * done / total if total else 100.0
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r  {label}: {pct:5.1f} %{' ' * 10}{end}")
        sys.stderr.flush()

    return show


# --- describing a system ----------------------------------------------------------------


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


def _outage_dict(outage: Outage) -> dict[str, Any]:
    return {
        "start": outage.start,
        "end": outage.end,
        "seconds": outage.seconds,
        "before": outage.before,
        "after": outage.after,
    }


def _session(target: str) -> dict[str, Any] | None:
    """The unfinished Active Upgrade session of TARGET from its journal, if any (read-only).

    Never creates a journal: a target that has none has no session.
    """
    from ftkit import home

    if not (home.ftkit_home() / "journals").is_dir():
        return None
    path = home.journal_path(target)
    if not path.is_file():
        return None
    from ftkit.journal import Journal

    journal = Journal(path, target=target)
    try:
        record = journal.current_session()
    finally:
        journal.close()
    if record is None:
        return None
    return {
        "id": record.id,
        "change_id": record.change_id,
        "operator": record.operator,
        "started": record.started,
        "upgrade_state": record.upgrade_state,
        "operational_state": record.operational_state,
        "broken_step": record.broken_step,
        "broken_reason": record.broken_reason,
    }


def _armed_faults(driver: Driver) -> list[dict[str, Any]] | None:
    settings = getattr(driver, "settings", None)
    if settings is None:
        return None
    return [dict(f) for f in settings().faults]


def _status_text(target: str, st: SystemState, *, acknowledged: int, lost: int,
                 outages: list[Outage], session: dict[str, Any] | None,
                 faults: list[dict[str, Any]] | None) -> str:
    from ftkit.model import DiskRole

    out = [
        f"{target} — {st.model}",
        f"  {summary(st)}",
        f"  simulated time {_hms(st.now)} since {st.epoch}",
    ]
    if session is None:
        out.append("  session: none (Idle)")
    else:
        broken = ""
        if session["operational_state"] == "Broken":
            broken = f" at {session['broken_step']}: {session['broken_reason']}"
        out.append(
            f"  session {session['id']} {session['change_id'] or ''}: "
            f"{session['upgrade_state']}, {session['operational_state']}{broken}"
        )
    out += ["", "Modules", _table(
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
    out += ["", "Mirrors (RDR)", _table(
        ["name", "role", "size", "physical", "state", "members", "software"], mirror_rows)]
    if st.external:
        out += ["", "External disks", _table(
            ["name", "size", "HBAs reachable", "healthy"],
            [[d.name, f"{d.size_gb:g} GB",
              " ".join(f"{e}:{'yes' if ok else 'no'}" for e, ok in d.hbas.items()),
              "yes" if d.healthy else "NO"] for d in st.external.values()],
        )]
    if st.teams:
        out += ["", "Teams", _table(
            ["name", "network", "address", "addressing", "lease", "adapters"],
            [[t.name, t.network, t.address, t.addressing,
              ("renewable" if t.lease_renewable else "NOT renewable")
              if t.addressing == "dhcp" else "",
              ", ".join(f"{a.name}@{a.enclosure}{'' if a.link else ' (no link)'}"
                        for a in t.adapters)] for t in st.teams.values()],
        )]
    out += ["", "Sides", _table(
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
    out += ["", "Services", _table(
        ["name", "installed", "critical", "startup (enc 0 / 1)", "running on"], service_rows)]
    if st.apps_on is None:
        apps = "DOWN (outage in progress)"
    elif st.apps_duplex:
        apps = f"duplex (both enclosures in lockstep, primary I/O on {st.apps_on})"
    else:
        apps = f"enclosure {st.apps_on}"
    out += ["", f"Applications: {apps}",
            f"Transactions: {acknowledged} acknowledged, {lost} lost"]
    if outages:
        out += ["Outages:", _table(
            ["#", "from (sim time)", "to", "length", "before", "after"],
            [[i, _hms(o.start), "" if o.end is None else _hms(o.end), _seconds(o.seconds),
              "duplex" if o.before is None else f"enclosure {o.before}",
              "-" if o.after is None else f"enclosure {o.after}"]
             for i, o in enumerate(outages, 1)],
        )]
    else:
        out.append("Outages: none")
    if faults:
        out.append("Armed faults: " + "; ".join(
            f"{f['name']} at {f['point']} on {f['side']}"
            + (f" ({f['target']})" if f.get("target") else "") + f" ×{f['times']}"
            for f in faults))
    if st.staged:
        out.append("Staged packages: " + ", ".join(sorted(st.staged)))
    return "\n".join(out)


# --- commands ----------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from ftkit.model import to_dict

    target = _target(args.target)
    driver = _connect(target)
    try:
        st = driver.status()
        acknowledged = driver.acknowledged()
        lost = driver.lost_transactions()
        outages = driver.outages()
        faults = _armed_faults(driver)
    finally:
        driver.close()
    try:
        session = _session(target)
    except FtkitError as err:  # a damaged journal must not hide the system's state
        session = {"id": None, "change_id": "", "operator": "", "started": "",
                   "upgrade_state": f"unknown ({err.message})", "operational_state": "?",
                   "broken_step": None, "broken_reason": None}
    if args.json:
        data = to_dict(st)
        data.update(
            target=target,
            duplex=st.duplex,
            acknowledged=acknowledged,
            lost=lost,
            outages=[_outage_dict(o) for o in outages],
            session=session,
        )
        if faults is not None:
            data["armed_faults"] = faults
        _print_json(data)
    else:
        print(_status_text(target, st, acknowledged=acknowledged, lost=lost, outages=outages,
                           session=session, faults=faults))
    return EXIT_OK


def cmd_sim_create(args: argparse.Namespace) -> int:
    from ftkit.sim.driver import create_system

    target, _rest = _sim_target(args.name)
    if args.time_scale < 0:
        raise BadInput(f"--time-scale {args.time_scale} is negative",
                       "use 0 (instant) up to 1 (real time)")
    driver = create_system(target, scenario=args.scenario, seed=args.seed,
                           time_scale=args.time_scale)
    try:
        st = driver.status()
        print(f"created {target} ({args.scenario}, seed {args.seed}, time scale "
              f"{args.time_scale:g}) at {driver.store.path}")
        print(f"  {summary(st)}")
    finally:
        driver.close()
    return EXIT_OK


def _list_rows() -> list[dict[str, Any]]:
    from ftkit.sim.driver import list_systems

    rows = []
    for name in list_systems():
        row: dict[str, Any] = {"name": name, "target": f"sim://{name}"}
        try:
            driver = _open_sim(name)
        except FtkitError as err:
            row.update(scenario="?", state=f"unreadable: {err.message}", time=None)
        else:
            try:
                st, sim = driver.store.read()
                row.update(scenario=sim.scenario, state=summary(st), time=st.now,
                           time_scale=sim.time_scale, faults_armed=len(sim.faults))
            finally:
                driver.close()
        rows.append(row)
    return rows


def cmd_sim_list(args: argparse.Namespace) -> int:
    from ftkit.home import ftkit_home

    rows = _list_rows()
    if args.json:
        _print_json(rows)
    elif not rows:
        print(f"no simulated systems under {ftkit_home() / 'systems'} "
              "(create one: ftkit sim create NAME)")
    else:
        print(_table(
            ["name", "scenario", "sim time", "state"],
            [[r["name"], r["scenario"], "" if r["time"] is None else _hms(r["time"]),
              r["state"] + (f"; {r['faults_armed']} fault(s) armed"
                            if r.get("faults_armed") else "")]
             for r in rows],
            indent="",
        ))
    return EXIT_OK


def cmd_sim_scenarios(args: argparse.Namespace) -> int:
    from ftkit.sim.twin import load_scenario, scenario_names

    rows = [[name, load_scenario(name).get("description", "")] for name in scenario_names()]
    print(_table(["scenario", "description"], rows, indent=""))
    return EXIT_OK


def cmd_sim_faults(args: argparse.Namespace) -> int:
    from ftkit.sim.faults import FAULTS

    print(_table(
        ["fault", "points (--at)", "default", "side", "what happens"],
        [[f.name, ", ".join(f.points), f.default_point, f.default_side, f.description]
         for f in FAULTS.values()],
        indent="",
    ))
    print("\nsides (--side): production, upgrade, 0, 1; point 'now' happens at once.")
    return EXIT_OK


def cmd_sim_fault(args: argparse.Namespace) -> int:
    from ftkit.sim import faults

    # validate before opening anything: bad input changes nothing
    record = faults.arm(args.fault, point=args.at, side=args.side, target=args.target or "",
                        times=args.times)
    driver = _open_sim(args.name)
    try:
        record = driver.inject(args.fault, point=record["point"], side=record["side"],
                               target=record["target"], times=record["times"])
        st = driver.status()
    finally:
        driver.close()
    what = f"{record['name']}" + (f" ({record['target']})" if record["target"] else "")
    if record["point"] == "now":
        print(f"{what} happened on the {record['side']} side of {driver.target}")
        print(f"  {summary(st)}")
    else:
        times = "once" if record["times"] == 1 else f"{record['times']} times"
        print(f"armed {what} at {record['point']} on the {record['side']} side of "
              f"{driver.target} (fires {times})")
    return EXIT_OK


def cmd_sim_clear(args: argparse.Namespace) -> int:
    from ftkit.sim.faults import FAULTS

    if args.fault is not None and args.fault not in FAULTS:
        raise BadInput(f"unknown fault {args.fault!r}", f"choose one of: {', '.join(FAULTS)}")
    driver = _open_sim(args.name)
    try:
        cleared = driver.disarm(args.fault)
    finally:
        driver.close()
    print(f"disarmed {len(cleared)} fault(s) on {driver.target}"
          + (": " + ", ".join(f"{f['name']} at {f['point']}" for f in cleared) if cleared
             else ""))
    return EXIT_OK


def cmd_sim_repair(args: argparse.Namespace) -> int:
    driver = _open_sim(args.name)
    try:
        repaired = driver.repair(args.what, progress=_progress_printer())
        st = driver.status()
    finally:
        driver.close()
    print(f"repaired {', '.join(repaired)} on {driver.target}")
    print(f"  {summary(st)}")
    return EXIT_OK


def cmd_sim_remove(args: argparse.Namespace) -> int:
    from ftkit.sim.driver import system_path
    from ftkit.sim.twin import TwinStore

    target, rest = _sim_target(args.name)
    path = system_path(rest)
    TwinStore(path).close()  # refuses a missing file or one that is not a twin
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    print(f"removed {target} ({path})")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from ftkit.config import load_config
    from ftkit.packages import load_packages

    config = load_config(args.config)
    packages = load_packages(args.package or [])
    target = _target(args.target)
    driver = _connect(target)
    try:
        from ftkit.checks import readiness

        # ftkit's PrepareSplit stages the packages itself: unstaged ones only warn,
        # unless the operator stages by other means (--require-staged)
        table = readiness(driver, config, packages, stage_pending=not args.require_staged)
    finally:
        driver.close()
    rows = table.to_dict("records")
    failed = [r for r in rows if r["status"] == "fail"]
    if args.json:
        _print_json(rows)
    else:
        marks = {"pass": "ok  ", "warn": "WARN", "fail": "FAIL"}
        print(f"readiness check of {target}")
        for row in rows:
            print(f"  {marks.get(row['status'], row['status'])}  {row['check']}: {row['detail']}")
            if row["status"] != "pass" and row.get("remedy"):
                print(f"        → {row['remedy']}")
        counts = {s: sum(r["status"] == s for r in rows) for s in ("pass", "warn", "fail")}
        print(f"{len(rows)} checks: {counts['pass']} passed, {counts['warn']} warned, "
              f"{counts['fail']} failed")
    if failed:
        raise Failed(
            f"readiness check failed: {', '.join(r['check'] for r in failed)}",
            "fix what the table says, then check again",
        )
    return EXIT_OK


def _parameters(pairs: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    from ftkit.runner import parse_cli_value

    params: dict[str, Any] = {}
    for name, value in pairs or []:
        if not name.isidentifier():
            raise BadInput(f"parameter name {name!r} is not a Python identifier",
                           "write -p NAME VALUE, for example -p mode auto")
        try:
            params[name] = parse_cli_value(value)
        except FtkitError as err:
            raise BadInput(err.message, err.remedy) from None
    return params


def _reports(args: argparse.Namespace) -> Path:
    from ftkit.home import reports_dir

    return Path(args.reports) if getattr(args, "reports", None) else reports_dir()


def _print_entry(entry: Any, reports: Path) -> None:
    print(f"outcome: {entry.outcome}")
    if entry.outage_s is not None:
        print(f"outage:  {entry.outage_s:g} s")
    if entry.error:
        print(f"error:   {entry.error}")
    for name in (entry.notebook, entry.html):
        if name:
            print(f"report:  {reports / name}")
    print(f"ledger:  {reports / 'ledger.jsonl'} (seq {entry.seq})")


def cmd_run(args: argparse.Namespace) -> int:
    from ftkit.runner import check_parameters, resolve_runbook, run_runbook

    params = _parameters(args.param)
    try:
        path = resolve_runbook(args.runbook)
        check_parameters(path, params)
    except FtkitError as err:
        raise BadInput(err.message, err.remedy) from None
    reports = _reports(args)
    entry = run_runbook(str(path), params, reports=reports, kernel_name=args.kernel,
                        progress=args.progress)
    _print_entry(entry, reports)
    if entry.outcome == "failed":
        raise Failed(f"runbook {path.stem} ended {entry.outcome}",
                     f"see the report {reports / (entry.html or entry.notebook or '')}")
    return EXIT_OK


def cmd_reports_list(args: argparse.Namespace) -> int:
    from ftkit.archive import read_ledger

    reports = _reports(args)
    entries = read_ledger(reports)
    if args.json:
        _print_json([e.to_dict() for e in entries])
    elif not entries:
        print(f"no reports in {reports}")
    else:
        print(_table(
            ["seq", "started", "runbook", "system", "change", "operator", "outcome", "outage",
             "report"],
            [[e.seq, e.started, e.runbook, e.system, e.change_id, e.operator, e.outcome,
              "" if e.outage_s is None else f"{e.outage_s:g} s", e.html or e.notebook or ""]
             for e in entries],
            indent="",
        ))
    return EXIT_OK


def cmd_reports_verify(args: argparse.Namespace) -> int:
    from ftkit.archive import read_ledger, verify_reports

    reports = _reports(args)
    problems = verify_reports(reports)
    if problems:
        for problem in problems:
            print(f"  {problem}")
        raise Failed(f"{len(problems)} problem(s) in {reports}: {problems[0]}",
                     "restore the reports and ledger from a backup")
    count = len(read_ledger(reports))
    print(f"{reports}: {count} ledger entr{'y' if count == 1 else 'ies'} and their reports "
          "verified")
    return EXIT_OK


def cmd_reports_add(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from ftkit.archive import archive_run

    notebook = Path(args.notebook)
    if not notebook.is_file():
        raise BadInput(f"no notebook {notebook}", "give the output notebook papermill wrote")
    try:
        meta = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError) as err:
        raise BadInput(f"{notebook} is not a notebook ({err})",
                       "give the output notebook papermill wrote") from None
    pm = meta.get("papermill") if isinstance(meta, dict) else None
    pm = pm if isinstance(pm, dict) else {}
    mtime = datetime.fromtimestamp(notebook.stat().st_mtime, UTC)

    def when(key: str) -> datetime:
        text = pm.get(key)
        if isinstance(text, str):
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return mtime
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return mtime

    params = dict(pm.get("parameters") or {})
    params.update(_parameters(args.param))
    runbook = args.runbook or (Path(str(pm["input_path"])).stem if pm.get("input_path")
                               else notebook.stem)
    error = "the notebook raised an exception (papermill)" if pm.get("exception") else None
    reports = _reports(args)
    entry = archive_run(notebook, runbook=runbook, parameters=params, started=when("start_time"),
                        ended=when("end_time"), reports=reports, error=error)
    _print_entry(entry, reports)
    return EXIT_OK


# --- the parser ------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with ``ftkit: …`` error lines (usage errors still exit 2)."""

    def error(self, message: str) -> Any:  # argparse's signature is NoReturn
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"ftkit: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``ftkit`` argument parser (every subcommand sets ``func``)."""
    parser = _Parser(
        prog="ftkit",
        description="Active Upgrade runbooks for duplexed fault-tolerant servers.",
        epilog="A NAME or TARGET without SCHEME:// means sim://NAME. Exit 0 ok, 1 failed, "
               "2 bad input.",
    )
    from ftkit import __version__

    parser.add_argument("--version", action="version", version=f"ftkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=_Parser)

    sim = commands.add_parser("sim", help="simulated ft servers (digital twins)")
    simc = sim.add_subparsers(dest="sim_command", metavar="SIMCOMMAND", required=True,
                              parser_class=_Parser)
    p = simc.add_parser("create", help="create a simulated system from a scenario")
    p.add_argument("name", metavar="NAME", help="a name or sim:// target")
    p.add_argument("--scenario", default="demo", help="see: ftkit sim scenarios (default demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-scale", type=float, default=0.0, dest="time_scale",
                   help="0 = instant (default), 1 = real time")
    p.set_defaults(func=cmd_sim_create)
    p = simc.add_parser("list", help="the simulated systems under $FTKIT_HOME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sim_list)
    p = simc.add_parser("scenarios", help="the scenarios a system can be created from")
    p.set_defaults(func=cmd_sim_scenarios)
    p = simc.add_parser("faults", help="the fault catalogue")
    p.set_defaults(func=cmd_sim_faults)
    p = simc.add_parser("fault", help="arm a fault (or make it happen now)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("fault", metavar="FAULT", help="see: ftkit sim faults")
    p.add_argument("--at", metavar="POINT", help="the step it fires in, or 'now'")
    p.add_argument("--side", metavar="SIDE", help="production | upgrade | 0 | 1")
    p.add_argument("--target", metavar="T", default="",
                   help="which module kind, disk, service, action or team")
    p.add_argument("--times", type=int, default=1, help="how many times it fires (default 1)")
    p.set_defaults(func=cmd_sim_fault)
    p = simc.add_parser("clear", help="disarm armed faults (all, or one fault's)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("fault", metavar="FAULT", nargs="?")
    p.set_defaults(func=cmd_sim_clear)
    p = simc.add_parser("repair", help="replace broken modules and failed disks")
    p.add_argument("name", metavar="NAME")
    p.add_argument("what", metavar="WHAT", nargs="?", default="all",
                   help="'all' (default), a module id or a disk name")
    p.set_defaults(func=cmd_sim_repair)
    p = simc.add_parser("remove", help="delete a simulated system")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_sim_remove)

    p = commands.add_parser("status", help="state, inventory, transactions and outages")
    p.add_argument("target", metavar="TARGET")
    p.add_argument("--json", action="store_true", help="machine-readable")
    p.set_defaults(func=cmd_status)

    p = commands.add_parser("check", help="the readiness check (exit 1 if a check fails)")
    p.add_argument("target", metavar="TARGET")
    p.add_argument("--config", required=True, metavar="F", help="upgrade configuration TOML")
    p.add_argument("--package", metavar="P", action="extend", nargs="+",
                   help="update package manifest(s)")
    p.add_argument("--require-staged", action="store_true",
                   help="fail (not warn) for packages not staged on the system yet")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = commands.add_parser("run", help="run a runbook through papermill and archive it")
    p.add_argument("runbook", metavar="RUNBOOK", help="a name in runbooks/ or a path")
    p.add_argument("-p", "--parameter", dest="param", nargs=2, action="append",
                   metavar=("NAME", "VALUE"))
    p.add_argument("--kernel", metavar="NAME", help="Jupyter kernel (default: the notebook's)")
    p.add_argument("--reports", metavar="DIR", help="default $FTKIT_REPORTS or ./reports")
    p.add_argument("--progress", action="store_true", help="papermill's progress bar")
    p.set_defaults(func=cmd_run)

    rep = commands.add_parser("reports", help="the report archive and its ledger")
    repc = rep.add_subparsers(dest="reports_command", metavar="REPORTSCOMMAND", required=True,
                              parser_class=_Parser)
    p = repc.add_parser("list", help="the ledger, one run a line")
    p.add_argument("--json", action="store_true")
    p.add_argument("--reports", metavar="DIR")
    p.set_defaults(func=cmd_reports_list)
    p = repc.add_parser("verify", help="find edited, removed or reordered records (exit 1)")
    p.add_argument("--reports", metavar="DIR")
    p.set_defaults(func=cmd_reports_verify)
    p = repc.add_parser("add", help="archive a notebook executed by plain papermill")
    p.add_argument("notebook", metavar="NOTEBOOK")
    p.add_argument("--runbook", metavar="NAME", help="default: papermill's input notebook")
    p.add_argument("-p", "--parameter", dest="param", nargs=2, action="append",
                   metavar=("NAME", "VALUE"), help="add or override a recorded parameter")
    p.add_argument("--reports", metavar="DIR")
    p.set_defaults(func=cmd_reports_add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ftkit`` command; returns the exit status (never raises an FtkitError)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        code = int(args.func(args))
        sys.stdout.flush()
        return code
    except FtkitError as err:
        print(f"ftkit: {err}", file=sys.stderr)
        return _exit_code(err)
    except BrokenPipeError:  # `ftkit status … | head`: the reader left; say nothing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except OSError as err:
        where = f": {err.filename}" if err.filename else ""
        print(f"ftkit: {err.strerror or err}{where}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("ftkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
