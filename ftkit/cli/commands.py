"""The ``ftkit`` subcommands: each gathers what it needs, acts, and prints through
:mod:`ftkit.cli.render`; bad input raises :class:`~ftkit.cli.codes.BadInput` before
anything changes.

Two seams are kept narrow on purpose: every simulator administration call (create, list,
fault, clear, repair, remove) sits in its one ``cmd_sim_*`` function, and everything
``ftkit status`` shows is gathered by :func:`gather_status` alone.

Start-up stays fast: this module imports only the standard library and ftkit's light
modules; ``status`` and ``sim`` never import pandas, nbformat, nbconvert, papermill,
IPython or ipywidgets (``check``, ``run`` and ``reports add`` do, lazily).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftkit.cli import render
from ftkit.cli.codes import EXIT_OK, EXIT_WAITING, BadInput, Failed
from ftkit.errors import FtkitError

if TYPE_CHECKING:
    from ftkit.archive import LedgerEntry
    from ftkit.drivers import Driver
    from ftkit.sim.driver import SimDriver

__all__ = [
    "cmd_approve",
    "cmd_check",
    "cmd_keys",
    "cmd_recover",
    "cmd_reports_add",
    "cmd_reports_list",
    "cmd_reports_verify",
    "cmd_run",
    "cmd_sim_clear",
    "cmd_sim_create",
    "cmd_sim_fault",
    "cmd_sim_faults",
    "cmd_sim_list",
    "cmd_sim_remove",
    "cmd_sim_repair",
    "cmd_sim_scenarios",
    "cmd_status",
    "gather_status",
    "target_of",
]


# --- names and targets ------------------------------------------------------------------


def target_of(name: str) -> str:
    """``lab1`` → ``sim://lab1``; a ``SCHEME://…`` target is kept as it is."""
    return name if "://" in name else f"sim://{name}"


def _sim_target(name: str) -> tuple[str, Path]:
    """The ``sim://`` target NAME means and its twin file; a malformed name is bad input."""
    from ftkit.drivers import split_target
    from ftkit.sim.driver import system_path

    target = target_of(name)
    scheme, rest = split_target(target)
    if scheme != "sim":
        raise BadInput(f"{target!r} is not a simulated system",
                       f"write a name or sim://NAME, for example sim://{rest.rsplit('/', 1)[-1]}")
    return target, system_path(rest)


def _no_system(target: str, path: Path, name: str) -> BadInput:
    return BadInput(f"no simulated system {target} ({path})",
                    f"create it with: ftkit sim create {name}")


def _existing_sim(name: str) -> tuple[str, Path]:
    """The target and twin file of NAME, which must exist (the hint names it as typed)."""
    target, path = _sim_target(name)
    if not path.is_file():
        raise _no_system(target, path, name)
    return target, path


def _connect(name: str) -> Driver:
    """The driver of NAME; a ``sim://`` system that does not exist is bad input."""
    from ftkit.drivers import connect, split_target

    target = target_of(name)
    if split_target(target)[0] == "sim":
        _existing_sim(name)
    return connect(target)


def _open_sim(name: str) -> SimDriver:
    """The SimDriver of NAME (a bare name or a ``sim://`` target), which must exist."""
    from ftkit.sim.driver import open_sim

    target, _path = _existing_sim(name)
    return open_sim(target, target.removeprefix("sim://"))


# --- ftkit sim: one function per command holds its simulator administration ---------------


def cmd_sim_create(args: argparse.Namespace) -> int:
    """Create a twin from a scenario, whole or not at all; refuses a name in use."""
    from ftkit.sim import admin

    target, path = _sim_target(args.name)
    from ftkit.preflight import check_time_scale

    check_time_scale(args.time_scale, option="--time-scale")  # nan, inf, -1: one line, exit 2
    if path.exists():
        raise BadInput(f"{target} already exists ({path})",
                       f"pick another name, or remove it with: ftkit sim remove {args.name}")
    made = admin.create(target, scenario=args.scenario, seed=args.seed,
                        time_scale=args.time_scale)
    print(f"created {target} ({render.visible(args.scenario)}, seed {args.seed}, time scale "
          f"{args.time_scale:g}) at {made.path}")
    if made.state is not None:
        print(f"  {render.summary(made.state)}")
    return EXIT_OK


def cmd_sim_list(args: argparse.Namespace) -> int:
    """The twins under ``$FTKIT_HOME`` with their scenario, time and state; read-only."""
    from ftkit.home import ftkit_home
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
                row.update(scenario=sim.scenario, state=render.summary(st), time=st.now,
                           time_scale=sim.time_scale, faults_armed=len(sim.faults))
            finally:
                driver.close()
        rows.append(row)
    if args.json:
        render.print_json(rows)
    elif not rows:
        print(f"no simulated systems under {ftkit_home() / 'systems'} "
              "(create one: ftkit sim create lab1)")
    else:
        print(render.sim_list_text(rows))
    return EXIT_OK


def cmd_sim_scenarios(args: argparse.Namespace) -> int:
    """The scenarios a twin can be created from; read-only."""
    from ftkit.sim.twin import load_scenario, scenario_names

    rows = [[name, load_scenario(name).get("description", "")] for name in scenario_names()]
    print(render.table(["scenario", "description"], rows, indent=""))
    return EXIT_OK


def cmd_sim_faults(args: argparse.Namespace) -> int:
    """The fault catalogue; read-only."""
    from ftkit.sim.faults import FAULTS

    print(render.faults_text(FAULTS))
    return EXIT_OK


def cmd_sim_fault(args: argparse.Namespace) -> int:
    """Arm a fault at a step, or make it happen now; checked before the twin is opened."""
    from ftkit.sim import admin, faults

    faults.arm(args.fault, point=args.at, side=args.side, target=args.target or "",
               times=args.times)  # bad input is refused before the system is opened
    target, _path = _existing_sim(args.name)
    done = admin.arm_fault(target, args.fault, point=args.at, side=args.side,
                           target=args.target or "", times=args.times)
    what = f"{done.name}" + (f" ({done.target})" if done.target else "")
    if done.point == "now":
        print(f"{what} happened on {_enclosure_side(done.state, done.enclosure)} of {target}")
        print(f"  {render.summary(done.state)}")
    else:
        times = "once" if done.times == 1 else f"{done.times} times"
        where = (f"enclosure {done.side}" if done.side.isdigit()
                 else f"the {done.side} side")
        print(f"armed {what} at {done.point} on {where} of {target} (fires {times})")
    return EXIT_OK


def _enclosure_side(state: Any, enclosure: int) -> str:
    """``enclosure 1 (the Upgrade side)``: an enclosure with the side it is (or would be
    at the split: the primary one keeps the applications); read-only."""
    from ftkit.sim.faults import enclosure as side_enclosure

    role = "Production" if side_enclosure(state, "production") == enclosure else "Upgrade"
    return f"enclosure {enclosure} (the {role} side)"


def cmd_sim_clear(args: argparse.Namespace) -> int:
    """Disarm the armed faults (all, or one fault's) before they fire."""
    from ftkit.sim import admin
    from ftkit.sim.faults import FAULTS

    if args.fault is not None and args.fault not in FAULTS:
        raise BadInput(f"unknown fault {args.fault!r}", f"choose one of: {', '.join(FAULTS)}")
    target, _path = _existing_sim(args.name)
    cleared = admin.clear_faults(target, args.fault)
    print(f"disarmed {len(cleared)} fault(s) on {target}"
          + (": " + ", ".join(f"{f['name']} at {f['point']}" for f in cleared) if cleared
             else ""))
    return EXIT_OK


def cmd_sim_repair(args: argparse.Namespace) -> int:
    """Replace broken modules and failed disks; with nothing broken, say so and change
    nothing (success)."""
    from ftkit.errors import FaultError
    from ftkit.sim import admin

    target, _path = _existing_sim(args.name)
    try:
        done = admin.repair(target, args.what, progress=render.progress_printer())
    except FaultError as err:
        raise BadInput(err.message, f"give all, a module id or a disk name (see: ftkit "
                                    f"status {args.name})") from None
    if not done.repaired:
        print(done.message.replace("nothing to repair:", f"nothing to repair on {target}:", 1))
        return EXIT_OK
    print(f"{done.message} on {target}")
    print(f"  {render.summary(done.state)}")
    return EXIT_OK


def cmd_sim_remove(args: argparse.Namespace) -> int:
    """Delete a twin file; refuses one that is missing, or not a twin unless --force.
    Its journal is moved aside (kept as the record of what was done to it), so a new
    system of the same name starts with a journal of its own."""
    from ftkit.sim import admin

    target, _path = _existing_sim(args.name)
    path = admin.remove(target, force=args.force)
    print(f"removed {target} ({path}); its journal, if any, is kept aside as "
          f"{path.with_suffix('.ftkit').name}/journal-*.removed-<time>")
    return EXIT_OK

def gather_status(name: str) -> dict[str, Any]:
    """Everything ``ftkit status`` shows of NAME, read-only: ``target``, ``state`` (the
    SystemState), ``acknowledged``, ``lost``, ``outages``, ``faults`` (the simulator's armed
    faults, None for other drivers) and ``session`` (the unfinished one, or None)."""
    from ftkit.status import system_status

    target = target_of(name)
    driver = _connect(name)
    try:
        settings = getattr(driver, "settings", None)
        status: dict[str, Any] = {
            "target": target,
            "state": driver.status(),
            "acknowledged": driver.acknowledged(),
            "lost": driver.lost_transactions(),
            "outages": driver.outages(),
            "faults": None if settings is None else [dict(f) for f in settings().faults],
            "status": system_status(driver),  # what --json prints (the schema)
        }
    finally:
        driver.close()
    status["session"] = status["status"]["session"]
    return status


def cmd_status(args: argparse.Namespace) -> int:
    """State, inventory, transactions, outages and the session of a system; read-only."""
    status = gather_status(args.target)
    if not args.json:
        print(render.status_text(status))
        return EXIT_OK
    data = status["status"]  # driver-neutral; follows ftkit/schemas/status.schema.json
    render.print_json(data)
    return EXIT_OK


# --- ftkit check ------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    """The readiness check; read-only (exit 1 when a check fails)."""
    from ftkit.config import load_config
    from ftkit.packages import load_packages

    config = load_config(args.config)
    packages = load_packages(args.package or [])
    target = target_of(args.target)
    driver = _connect(args.target)
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
        render.print_json(rows)
    else:
        print(render.check_text(target, rows))
    if failed:
        raise Failed(
            f"readiness check failed: {', '.join(r['check'] for r in failed)}",
            "fix what the table says, then check again",
        )
    return EXIT_OK


# --- ftkit run ----------------------------------------------------------------------------


def _parameters(pairs: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    from ftkit.runner import parse_cli_value

    params: dict[str, Any] = {}
    for name, value in pairs or []:
        if not name.isidentifier():
            raise BadInput(f"parameter name {name!r} is not a Python identifier",
                           "write -p NAME VALUE, for example -p mode auto")
        try:
            if name == "decisions":
                from ftkit.decisions import parse_decisions

                params[name] = parse_decisions(value)  # no aliases, no key twice, as typed
            else:
                params[name] = parse_cli_value(value)
        except FtkitError as err:
            raise BadInput(err.message, err.remedy) from None
    return params


def _result_message(reports: Path, entry: LedgerEntry) -> str:
    """The one-line message of the result the archived run displayed ("" if none)."""
    if not entry.notebook:
        return ""
    from ftkit.archive import result_from_notebook

    try:
        notebook = json.loads((reports / entry.notebook).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    lines = str((result_from_notebook(notebook) or {}).get("message") or "").splitlines()
    return lines[0].strip() if lines else ""


def _reports(args: argparse.Namespace) -> Path:
    from ftkit.home import reports_dir

    return Path(args.reports) if getattr(args, "reports", None) else reports_dir()


@contextlib.contextmanager
def _witnesses(args: argparse.Namespace) -> Iterator[None]:
    """``--witness PATH``: added to ``$FTKIT_WITNESS`` (where the archive publishes its
    checkpoints, :mod:`ftkit.checkpoints`) while the command archives; restored after."""
    import os

    from ftkit.checkpoints import WITNESS_ENV

    given = [str(Path(w).expanduser().resolve()) for w in getattr(args, "witness", None) or []]
    before = os.environ.get(WITNESS_ENV)
    if given:
        os.environ[WITNESS_ENV] = os.pathsep.join([*filter(None, [before]), *given])
    try:
        yield
    finally:
        if given and before is None:
            os.environ.pop(WITNESS_ENV, None)
        elif given and before is not None:
            os.environ[WITNESS_ENV] = before


def cmd_run(args: argparse.Namespace) -> int:
    """Run a runbook headless through papermill and archive it; its parameters, files,
    system and session are checked before a kernel starts (:func:`ftkit.preflight.check_run`:
    bad input is exit 2, archives nothing and changes nothing), and the system's controller
    lock is taken then: a run racing for the system is refused (exit 2) before a kernel
    starts, before anything is recorded."""
    from ftkit.errors import RanAlreadyError
    from ftkit.preflight import check_run, visible
    from ftkit.provenance import archived_end
    from ftkit.runner import controlling, resolve_runbook, run_runbook

    params = _parameters(args.param)
    reports = _reports(args)
    with contextlib.ExitStack() as hold:
        hold.enter_context(_witnesses(args))
        try:
            path = resolve_runbook(args.runbook)
        except FtkitError as err:
            raise BadInput(err.message, err.remedy) from None
        try:
            check_run(path, params)  # parameters, files, decisions, system, session: exit 2
            try:
                # the system's controller lock, held until the run ends (its kernel is
                # handed it): a run racing for the system is refused here, before a
                # kernel starts
                hold.enter_context(controlling(path, params))
            except FtkitError as err:
                raise BadInput(err.message, err.remedy) from None
            check_run(path, params)  # again under the lock: the session stands still now
        except RanAlreadyError as err:  # one entry per session end: say which, exit 0
            entry = archived_end(reports, str(params.get("system", "")),
                                 str(params.get("change_id", "")))
            if entry is None:
                raise
            print(f"{visible(err.message)}; already archived as ledger entry seq "
                  f"{entry.seq} ({visible(reports / (entry.html or entry.notebook or ''))}: "
                  f"{visible(entry.outcome)}); nothing added")
            return EXIT_OK
        entry = run_runbook(str(path), params, reports=reports, kernel_name=args.kernel,
                            progress=args.progress)
    print(render.entry_text(entry, reports, message=_result_message(reports, entry)))
    if entry.outcome == "failed":
        raise Failed(f"runbook {path.stem} ended {entry.outcome}",
                     f"see the report {reports / (entry.html or entry.notebook or '')}")
    return EXIT_OK


# --- ftkit campaign ---------------------------------------------------------------------


def _campaign(path: str) -> Any:
    from ftkit.campaign import load_campaign

    try:
        return load_campaign(path)
    except FtkitError as err:
        raise BadInput(err.message, err.remedy) from None


def cmd_campaign_run(args: argparse.Namespace) -> int:
    """Run the campaign through its runbook (``runbooks/campaign.ipynb``, archived like any
    run); every system's run is checked before a kernel starts (exit 2). Exit 0 when every
    system ended as it should, 3 while a wave waits for an approval, 1 otherwise."""
    from ftkit.campaign import campaign_status, check_members, controlling, status_table
    from ftkit.runner import run_runbook

    spec = _campaign(args.campaign)
    reports = _reports(args)
    params = {"campaign": str(spec.path), "scheduler": args.scheduler or ""}
    def run() -> Any:
        with contextlib.ExitStack() as hold:
            try:
                check_members(spec)
                hold.enter_context(controlling(spec))  # one controller per campaign
            except FtkitError as err:
                raise BadInput(err.message, err.remedy) from None
            return run_runbook("campaign", params, reports=reports, progress=False)

    entry = None
    while True:  # at a terminal, the approval a wave waits for is asked for, then it goes on
        asked = _approved_at_the_prompt(spec)
        if asked is False and entry is not None:
            break  # the operator stopped at the prompt: the last record says what waits
        entry = run()
        if entry.outcome != "paused" or asked is None:
            break
    print(status_table(campaign_status(spec)))
    print(render.entry_text(entry, reports, message=_result_message(reports, entry)))
    if entry.outcome == "paused":
        return EXIT_WAITING
    if entry.outcome != "completed":
        raise Failed(f"campaign {spec.name} ended {entry.outcome}",
                     f"see ftkit campaign status {args.campaign} and the report "
                     f"{reports / (entry.html or entry.notebook or '')}")
    return EXIT_OK


def _approved_at_the_prompt(spec: Any) -> bool | None:
    """At a terminal, ask for the approval the campaign waits for now (who, why) and
    journal it: True once given, False when the operator gives no name (nothing journaled),
    None when nothing is asked (no terminal, or no wave waits)."""
    import sys

    from ftkit.campaign import approve_wave, pending_approval
    from ftkit.preflight import check_value

    wave = pending_approval(spec)
    if wave is None or not sys.stdin.isatty():
        return None
    print(f"Wave {wave} of campaign {spec.name} waits for an approval.")
    by = input("Approve it as (your name; empty to stop here): ").strip()
    if not by:
        return False
    why = input("Why: ").strip()
    check_value("operator", by)
    check_value("reason", why)
    print(approve_wave(spec, wave=wave, by=by, why=why))
    return True


def cmd_campaign_approve(args: argparse.Namespace) -> int:
    """Journal the approval of a wave with the account that gives it (one transaction)."""
    from ftkit.campaign import approve_wave
    from ftkit.preflight import check_value

    check_value("operator", args.by)
    check_value("reason", args.reason)
    try:
        print(approve_wave(_campaign(args.campaign), wave=args.wave, by=args.by,
                           why=args.reason))
    except FtkitError as err:
        raise BadInput(err.message, err.remedy) from None
    return EXIT_OK


def cmd_campaign_status(args: argparse.Namespace) -> int:
    """Each system's wave, state, outcome, outage and record, and the totals (read-only)."""
    from ftkit.campaign import campaign_status, status_table, to_json

    status = campaign_status(_campaign(args.campaign))
    print(to_json(status) if args.json else status_table(status))
    return EXIT_OK


def cmd_app(args: argparse.Namespace) -> int:
    """Serve a runbook as an operator app without code (Voilà): its parameters, files,
    system and session checked as ``ftkit run`` checks them, interactive mode accepted (a
    page people click in); runs until interrupted (:func:`ftkit.runner.serve_app`)."""
    from ftkit.preflight import check_run
    from ftkit.runner import resolve_runbook, serve_app

    params = _parameters(args.param)
    try:
        path = resolve_runbook(args.runbook)
    except FtkitError as err:
        raise BadInput(err.message, err.remedy) from None
    check_run(path, params, clicks=True)  # bad input: exit 2, nothing served
    return serve_app(path, params, port=args.port, browser=args.browser)


# --- ftkit recover ------------------------------------------------------------------------


def cmd_recover(args: argparse.Namespace) -> int:
    """Adopt a system whose journal was lost: a new session in the state the system itself
    shows (Split, PrepareMerge, Merge, Commit or Abort; Broken at a request it is part way
    through), so that the abort runbook or the upgrade runbook takes it to a correct end.
    Refused when the journal has an unfinished session or the system shows no upgrade
    under way (nothing changes then). One transaction (ftkit.recovery.adopt)."""
    from ftkit.preflight import check_value
    from ftkit.recovery import adopt, seen

    check_value("operator", args.operator)  # before anything changes: journaled as given
    check_value("reason", args.reason)
    driver = _connect(args.target)
    try:
        session = adopt(driver, operator=args.operator, reason=args.reason)
        state = f"{session.upgrade_state.value} / {session.operational_state.value}"
        if session.broken:
            state += f" at {session.broken[0]}"
        found = seen(driver.status())
        session.close()
    except FtkitError as err:
        raise BadInput(err.message, err.remedy) from None
    finally:
        driver.close()
    target = target_of(args.target)
    print(f"recovered {target}: session {session.record.id if session.record else '?'} "
          f"in {state}, from the system's own state: {found.what}")
    print(f"  next: {found.way_on}:")
    if found.abort:
        print(f"    ftkit run abort -p system {target} -p operator "
              f"{render.visible(args.operator)} "
              f"-p reason \"...\"")
    if found.upgrade is not None:
        print(f"    ftkit run active-upgrade -p system {target} -p mode auto -p operator "
              f"{render.visible(args.operator)} -p change_id CHG-... -p decisions "
              f"\"{found.upgrade}\"")
    return EXIT_OK


# --- ftkit approve ------------------------------------------------------------------------


def cmd_approve(args: argparse.Namespace) -> int:
    """This account approves the Commit of a system's unfinished session (one journal
    transaction, with the evidence shown); refused, nothing written, when this account is
    the operator's, the change id differs, or the session is past the commit decision."""
    from ftkit.approvals import approve

    target = target_of(args.target)
    _connect(args.target).close()  # an unknown system is bad input, named
    approval = approve(target, change_id=args.change, by=args.by, reason=args.reason or "")
    shown = approval.get("evidence") or {}
    print(f"approved: Commit of {target} (change {approval['change_id']}) by "
          f"{render.visible(str(approval['by']))} (account {approval['account']}) at "
          f"{approval['when']}" + (f", until {approval['expires']}" if approval.get("expires")
                                   else ""))
    print(f"  shown: probes {shown.get('probes_passed', 0)} passed, "
          f"{shown.get('probes_failed', 0)} failed; outage {shown.get('outage_s', 0):g} s; "
          f"{shown.get('lost_transactions', 0)} transactions lost")
    return EXIT_OK


# --- ftkit reports ------------------------------------------------------------------------


def cmd_reports_list(args: argparse.Namespace) -> int:
    """The ledger, one run a line; read-only."""
    from ftkit.archive import read_ledger

    reports = _reports(args)
    entries = read_ledger(reports)
    if args.json:
        render.print_json([e.to_dict() for e in entries])
    elif not entries:
        print(f"no reports in {reports}")
    else:
        print(render.ledger_text(entries))
    return EXIT_OK


def cmd_reports_verify(args: argparse.Namespace) -> int:
    """Find edited, removed, reordered or dropped records: the ledger's chain and files
    and every signed checkpoint found in the archive, the journals and the witnesses
    (:func:`ftkit.archive.verify_archive`, the ledger read once); read-only but for the
    incremental state (exit 1 on a problem)."""
    from ftkit.archive import verify_archive, verify_limits

    reports = _reports(args)
    witnesses = [Path(w) for w in args.witness or []]
    for witness in witnesses:
        if not witness.exists():
            raise BadInput(f"no witness {witness}", "give the folder checkpoints were "
                           "published to ($FTKIT_WITNESS when the runs were archived)")
    found = verify_archive(reports, witnesses=witnesses, public_key=args.public_key,
                           since_checkpoint=args.incremental,
                           checkpoint=Path(args.checkpoint) if args.checkpoint else None)
    verdict, problems = found.checkpoints, found.problems
    if problems:
        for problem in problems:
            print(f"  {render.visible(problem)}")
        raise Failed(f"{len(problems)} problem(s) in {reports}: {problems[0]}",
                     "restore the reports and ledger from a backup")
    count = found.entries
    print(f"{reports}: {count} ledger entr{'y' if count == 1 else 'ies'} and their reports "
          + ("verified since the last verification" if args.incremental else "verified")
          + f"; against {verdict.own} checkpoint(s) in the archive and {verdict.outside} "
          "in the systems' journals and witnesses")
    for limit in [*verdict.limits,
                  *verify_limits(keyed=True, since_checkpoint=args.incremental)]:
        print(f"  note: {limit}")
    return EXIT_OK


def cmd_keys(args: argparse.Namespace) -> int:
    """``ftkit keys init|show|rotate``: the archive's Ed25519 key (:mod:`ftkit.keys`)."""
    from ftkit import keys

    try:
        if args.keys_command == "init":
            info = keys.init_key(path=args.key)
            print(f"made the archive key {info.private} (mode 0600) and {info.public}")
        elif args.keys_command == "rotate":
            old, info = keys.rotate_key(reports=_reports(args), path=args.key)
            print(f"rotated the archive key: {old.fingerprint} → {info.fingerprint}; the "
                  f"rotation checkpoint (signed by both) is in {_reports(args)}")
        else:
            info = keys.show_key(path=args.key)
            print(f"archive key {info.private}\npublic key {info.public}")
    except FtkitError as err:
        raise BadInput(err.message, err.remedy) from None
    print(f"fingerprint (SHA-256 of the raw public key): {info.fingerprint}")
    if args.keys_command == "show":
        print(info.public_pem, end="")
    return EXIT_OK


def cmd_reports_add(args: argparse.Namespace) -> int:
    """Archive a notebook that plain papermill executed (one ledger line)."""
    from datetime import UTC, datetime

    from ftkit.archive import archive_run

    notebook = Path(args.notebook)
    if not notebook.is_file():
        raise BadInput(f"no notebook {notebook}", "give the output notebook papermill wrote")
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        meta = nb.get("metadata", {})
    except (OSError, ValueError, AttributeError) as err:
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

    from ftkit import provenance
    from ftkit.archive import AlreadyArchived, result_from_notebook
    from ftkit.errors import ArchiveError

    # what ran, never what the adder says: -p only checks; the facts must match the journal
    params = provenance.ran_parameters(nb)
    try:
        result = result_from_notebook(nb) or {}
        provenance.check_given(_parameters(args.param), ran=params, result=result)
        provenance.cross_check_notebook(result, params)
    except ArchiveError as err:
        raise BadInput(err.message, err.remedy) from None
    runbook = args.runbook or (Path(str(pm["input_path"])).stem if pm.get("input_path")
                               else notebook.stem)
    error = "the notebook raised an exception (papermill)" if pm.get("exception") else None
    reports = _reports(args)
    from ftkit.runner import anchor

    try:
        with _witnesses(args):
            entry = archive_run(notebook, runbook=runbook, parameters=params,
                                started=when("start_time"), ended=when("end_time"),
                                reports=reports, error=error)
    except AlreadyArchived as err:  # one entry per run: adding it again changes nothing
        from ftkit.preflight import visible

        print(f"{visible(err.message)}; nothing added")
        return EXIT_OK
    except ArchiveError as err:  # never executed: bad input, nothing written
        raise BadInput(err.message, err.remedy) from None
    anchor(entry, reports=reports)
    print(render.entry_text(entry, reports))
    return EXIT_OK
