"""Campaigns: many systems upgraded by one command, a canary first, then waves, on Dask
(see docs/CAMPAIGNS.md).

::

    spec = load_campaign("examples/campaign.toml")
    result = run_campaign(spec)                 # a LocalCluster, nothing to start
    result = run_campaign(spec, scheduler="tcp://10.0.0.5:8786")   # an existing cluster
    approve_wave(spec, wave=1, by="carol", why="canary looks good")
    campaign_status(spec)                       # per system: wave, state, outcome, report

Each member system's run is one Dask task: the campaign's runbook executed by papermill on a
worker, under the system's own controller lock (:func:`ftkit.runner.controlling`), exactly
as ``ftkit run`` executes it. The executed notebook comes back to the controller, which
archives it in the one ledger (:func:`ftkit.archive.archive_run`). Nothing here decides a
step of an upgrade: each member's runbook drives its own session through the one engine.

The campaign's progress is journaled in a journal of its own (a :class:`ftkit.journal.Journal`
under ``$FTKIT_HOME/campaigns/``: hash-chained like a system's), so running the same
command again after the controller was killed goes on: a member that ended is not run
again; a member whose run was interrupted is run again, and its runbook resumes the system's
own unfinished session (the system's lock refuses a second controller whatever Dask does);
approvals already given stand.

What Dask does that a campaign must not let through:

- a running task cannot be cancelled (``Client.cancel`` leaves it running): a campaign that
  stops never says a running member was cancelled; it waits for it and records its end;
- a task whose worker died is run again elsewhere unless
  ``distributed.scheduler.allowed-failures`` is 0: the campaign sets 0, so a second run is
  only ever the operator's rerun of the campaign (a journaled resume);
- kernels started at once on one host may race for ports: a run whose kernel never started
  (no cell ran) is tried again, up to :data:`KERNEL_START_TRIES` times; nothing else is.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ftkit import home
from ftkit.errors import FtkitError, ParameterError, SessionBusyError
from ftkit.tomlreader import Reader, decode, parse_toml, read_file

__all__ = [
    "KERNEL_START_TRIES",
    "CampaignResult",
    "CampaignSpec",
    "Member",
    "MemberState",
    "approval_of",
    "approve_wave",
    "campaign_journal",
    "campaign_status",
    "check_members",
    "controlling",
    "load_campaign",
    "pending_approval",
    "run_campaign",
    "status_table",
    "to_json",
]

KERNEL_START_TRIES = 3
#: What a member's run ended as, in the campaign's eyes (the ledger's outcome beside it).
DONE_OUTCOMES = frozenset({"committed", "aborted", "checked", "planned"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TOP = ("name", "change_id", "runbook", "concurrency", "max_failures", "waves",
        "approve_between_waves", "approval_wait_min", "notify", "parameters", "systems")
_FILE_PARAMETERS = ("config", "packages", "decisions")


class CampaignError(ParameterError):
    """A campaign file, wave or approval that cannot be used."""


@dataclass(frozen=True)
class Member:
    """One system of a campaign: its name, target, placement tag and its run's parameters."""

    name: str
    target: str
    site: str | None
    parameters: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign file, read and checked (:func:`load_campaign`)."""

    path: Path
    name: str
    change_id: str
    runbook: str
    concurrency: int
    max_failures: int  # the campaign stops starting systems once this many failed
    waves: tuple[tuple[Member, ...], ...]  # waves[0] is the canary
    approve_between_waves: bool
    approval_wait_s: float
    #: apprise URLs told when a wave waits for an approval (a password only as ${VARIABLE})
    notify: tuple[str, ...] = ()

    @property
    def members(self) -> list[Member]:
        """Every system, in wave order."""
        return [m for wave in self.waves for m in wave]


def load_campaign(path: str | os.PathLike[str]) -> CampaignSpec:
    """Read and check the campaign file at PATH (read-only). Every problem is one
    :class:`CampaignError` naming the file, the key and the fix."""
    path = Path(path)
    label = str(path)
    raw = parse_toml(decode(read_file(path, label, CampaignError), label, CampaignError),
                     label, CampaignError)
    r = Reader(label, CampaignError, _TOP)
    r.known(raw, _TOP)
    name = str(r.text(raw, "name", "", 'name = "2026-12-patches"', required=True))
    if not _NAME.match(name):
        r.fail("name", f"{name!r} is not a campaign name",
               "use letters, digits, '.', '_' and '-' (at most 64): it names a folder")
    change = str(r.text(raw, "change_id", "", 'change_id = "CHG-2026-12"', required=True))
    runbook = r.text(raw, "runbook", "", 'runbook = "active-upgrade"') or "active-upgrade"
    concurrency = int(r.number(raw, "concurrency", "", "concurrency = 2", low=0, high=256,
                               unit="systems at once") or 2)
    shared = r.table(raw, "parameters", "", list(raw.get("parameters", {}) or {}),
                     '[parameters] config = "upgrade.toml"') or {}
    systems = raw.get("systems")
    if not isinstance(systems, list) or not systems:
        r.fail("systems", "no systems", 'add [[systems]] tables: name = "db1", '
               'target = "sim://db1"')
    members: list[Member] = []
    for index, table in enumerate(systems):
        where = f"systems[{index}]"
        if not isinstance(table, dict):
            r.fail(where, "expected a table", 'write [[systems]] name = "db1" ...')
        r.known(table, ("name", "target", "site", "parameters"), where)
        member = str(r.text(table, "name", where, 'name = "db1"', required=True))
        if not _NAME.match(member):
            r.fail(f"{where}.name", f"{member!r} is not a system name",
                   "use letters, digits, '.', '_' and '-'")
        if any(m.name == member for m in members):
            r.fail(f"{where}.name", f"{member!r} is named twice", "give each system one entry")
        target = str(r.text(table, "target", where, 'target = "sim://db1"', required=True))
        site = r.text(table, "site", where, 'site = "site_a"')
        own = r.table(table, "parameters", where, list(table.get("parameters", {}) or {}),
                      'parameters = { operator = "bob" }') or {}
        params = {**_files_beside(shared, path.parent), **_files_beside(own, path.parent),
                  "system": target}
        params.setdefault("change_id", f"{change}-{member}")
        members.append(Member(member, target, site, params))
    return CampaignSpec(
        path=path.resolve(), name=name, change_id=change, runbook=runbook,
        concurrency=concurrency,
        max_failures=_max_failures(r, raw.get("max_failures", 1), len(members)),
        waves=_waves(r, raw.get("waves", [1, len(members)]), members),
        approve_between_waves=bool(r.flag(raw, "approve_between_waves", "")),
        approval_wait_s=60 * (r.number(raw, "approval_wait_min", "", "approval_wait_min = 30",
                                       low=-1, high=7 * 24 * 60, unit="minutes") or 0),
        notify=_notify_urls(r, raw))


def _notify_urls(r: Reader, raw: Mapping[str, Any]) -> tuple[str, ...]:
    """``notify = ["json://…"]``: apprise URLs, a password only by reference (as in an
    upgrade configuration: :mod:`ftkit.config`)."""
    urls = r.names(raw, "notify", "", 'notify = ["json://ops.example:8080/hook"]') or ()
    for index, url in enumerate(urls):
        creds = url.partition("://")[2].partition("/")[0].rpartition("@")[0]
        secret = creds.partition(":")[2]
        if "://" not in url or (secret and not re.fullmatch(r"\$\{[A-Za-z_]\w*\}", secret)):
            r.fail(f"notify[{index}]", "not an apprise URL, or a password written in it",
                   'write scheme://…, a password only as ${VARIABLE}')
    return tuple(urls)


def _files_beside(params: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """PARAMS with the file-valued ones (config, packages, decisions) that name a file
    beside the campaign file made absolute: a campaign runs from any folder."""
    def beside(value: Any) -> Any:
        if isinstance(value, str) and "\n" not in value and (folder / value).is_file():
            return str((folder / value).resolve())
        return value

    out = dict(params)
    for key in _FILE_PARAMETERS:
        if isinstance(out.get(key), list):
            out[key] = [beside(v) for v in out[key]]
        elif key in out:
            out[key] = beside(out[key])
    return out


def _max_failures(r: Reader, value: Any, systems: int) -> int:
    """``max_failures = 2`` (systems) or ``"25%"`` (of the systems, rounded up)."""
    if isinstance(value, str) and value.endswith("%"):
        try:
            share = float(value[:-1])
        except ValueError:
            share = math.nan
        if not 0 < share <= 100:
            r.fail("max_failures", f"{value!r} is not a share", 'write max_failures = "25%"')
        return max(1, math.ceil(systems * share / 100))
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        r.fail("max_failures", f"expected a number of systems (1 or more) or a share, got "
               f"{value!r}", 'write max_failures = 2 or max_failures = "25%"')
    return int(value)


def _waves(r: Reader, value: Any, members: list[Member]) -> tuple[tuple[Member, ...], ...]:
    """``waves = [1, 5]`` (a canary of 1, then waves of 5 until every system is in one) or
    explicit lists of names (``[["db1"], ["db2", "db3"]]``: every system exactly once)."""
    example = 'write waves = [1, 5] (a canary of 1, then waves of 5) or [["db1"], ["db2"]]'
    if not isinstance(value, list) or not value:
        r.fail("waves", "expected a list", example)
    if all(isinstance(v, list) for v in value):
        by_name = {m.name: m for m in members}
        waves, seen = [], set()
        for index, names in enumerate(value):
            for n in names:
                if n not in by_name:
                    r.fail(f"waves[{index}]", f"no system named {n!r}",
                           "name systems of [[systems]]: " + ", ".join(by_name))
                if n in seen:
                    r.fail(f"waves[{index}]", f"{n!r} is in two waves", "list it once")
                seen.add(n)
            waves.append(tuple(by_name[n] for n in names))
        missing = [m.name for m in members if m.name not in seen]
        if missing:
            r.fail("waves", f"{', '.join(missing)} in no wave", "list every system once")
        return tuple(w for w in waves if w)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
        r.fail("waves", f"expected sizes (1 or more) or lists of names, got {value!r}", example)
    sizes, waves_, rest = list(value), [], list(members)
    while rest:
        size = sizes.pop(0) if len(sizes) > 1 else sizes[0]
        waves_.append(tuple(rest[:size]))
        rest = rest[size:]
    return tuple(waves_)


def check_members(spec: CampaignSpec) -> Path:
    """Check every member's run as ``ftkit run`` would before a kernel starts (its runbook's
    parameters, configuration, packages, decisions, operator and change id); read-only.
    Returns the runbook's path. The first refusal is raised, naming the system."""
    from ftkit.preflight import check_run
    from ftkit.runner import resolve_runbook

    path = resolve_runbook(spec.runbook)
    for member in spec.members:
        try:
            check_run(path, dict(member.parameters), system=False)
        except FtkitError as err:
            raise type(err)(f"campaign {spec.name}, system {member.name}: {err.message}",
                            err.remedy) from None
    return path


# --- the campaign's journal ----------------------------------------------------------------


def _journal_path(spec: CampaignSpec) -> Path:
    return home.ftkit_home() / "campaigns" / spec.name / "journal.db"


def campaign_journal(spec: CampaignSpec) -> Any:
    """The journal of SPEC's campaign (created if new) under ``$FTKIT_HOME/campaigns``;
    its controller lock beside it is the campaign's: one controller per campaign."""
    from ftkit.journal import Journal

    path = _journal_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Journal(path, target=f"campaign:{spec.name}")


@contextmanager
def controlling(spec: CampaignSpec) -> Iterator[None]:
    """Hold the campaign's controller lock from before a kernel starts and hand it to the
    campaign runbook's kernel (as :func:`ftkit.runner.controlling` does for a system): a
    second controller of the campaign is refused here with SessionBusyError."""
    from ftkit.lock import holding

    path = _journal_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with holding(path.with_suffix(".lock"), holder=f"campaign {spec.name}") as busy:
        if busy is not None:
            raise SessionBusyError(f"campaign {spec.name} is driven by {busy}",
                                   "wait for that run to end, or stop it; nothing was run")
        yield


@dataclass
class MemberState:
    """What the campaign's journal says of one member (read-only view)."""

    name: str
    target: str
    wave: int
    state: str = "waiting"  # waiting | running | ended | interrupted
    outcome: str | None = None
    outage_s: float | None = None
    report: str | None = None
    worker: str | None = None
    error: str | None = None
    runs: int = 0

    @property
    def failed(self) -> bool:
        """A member that ended any other way than done (or whose run was cut off)."""
        return self.state in ("ended", "interrupted") and self.outcome not in DONE_OUTCOMES


def _states(spec: CampaignSpec, journal: Any) -> tuple[dict[str, MemberState], dict[int, dict]]:
    """Each member's state and each approved wave's approval, from the journal (read-only)."""
    states = {m.name: MemberState(m.name, m.target, w)
              for w, wave in enumerate(spec.waves) for m in wave}
    approvals: dict[int, dict[str, Any]] = {}
    for entry in journal.entries():
        detail = entry.detail if isinstance(entry.detail, dict) else {}
        event = detail.get("campaign")
        s = states.get(str(detail.get("system")))
        if event == "started" and s is not None:
            s.state, s.runs, s.worker = "running", s.runs + 1, detail.get("worker")
        elif event in ("ended", "interrupted") and s is not None:
            s.state, s.outcome = event, detail.get("outcome")
            s.outage_s, s.report = detail.get("outage_s"), detail.get("report")
            s.worker, s.error = detail.get("worker") or s.worker, detail.get("error")
        elif event == "approved":
            approvals[int(detail["wave"])] = {**detail, "at": entry.ts}
    return states, approvals


def approve_wave(spec: CampaignSpec, *, wave: int, by: str, why: str = "") -> str:
    """Journal the approval of WAVE (1 or later: the canary needs none) by BY, with the
    account that gives it and the time; one transaction. Returns what was journaled.
    Refused (nothing written) for a wave the campaign does not have, or one approved
    already (the first approval stands)."""
    from ftkit.decisions import account
    from ftkit.preflight import check_value

    if not 1 <= wave < len(spec.waves):
        raise CampaignError(f"campaign {spec.name} has no wave {wave} to approve",
                            f"waves 1 to {len(spec.waves) - 1} follow the canary (wave 0)")
    if not by.strip():
        raise CampaignError("an approval needs the approver's name", "give --by NAME")
    check_value("operator", by)  # as every name and reason ftkit journals: plain text
    check_value("reason", why)
    journal = campaign_journal(spec)
    try:
        _states_now, approvals = _states(spec, journal)
        if wave in approvals:
            given = approvals[wave]
            raise CampaignError(f"wave {wave} of {spec.name} was approved already by "
                                f"{given.get('by')} (account {given.get('account')})",
                                "nothing to do: the first approval stands")
        said = f"wave {wave} approved by {by} (account {account()})" + (
            f": {why}" if why else "")
        journal.log(None, "info", said, detail={"campaign": "approved", "wave": wave,
                                                 "by": by, "account": account(), "why": why})
        return said
    finally:
        journal.close()


def approval_of(spec: CampaignSpec, wave: int) -> dict[str, Any] | None:
    """WAVE's approval as journaled (``by``, ``account``, ``why``, ``at``: the time it was
    journaled), whoever gave it (the command, a prompt, the notebook's panel), else None
    (read-only)."""
    journal = campaign_journal(spec)
    try:
        return _states(spec, journal)[1].get(wave)
    finally:
        journal.close()


def pending_approval(spec: CampaignSpec) -> int | None:
    """The wave a run of SPEC's campaign waits at for an approval now (every earlier wave
    ended, this one not approved), else None (read-only)."""
    if not spec.approve_between_waves:
        return None
    journal = campaign_journal(spec)
    try:
        states, approvals = _states(spec, journal)
    finally:
        journal.close()
    for w, wave in enumerate(spec.waves):
        if any(states[m.name].state != "ended" for m in wave):
            return w if w > 0 and w not in approvals else None
    return None


# --- running ---------------------------------------------------------------------------------


@dataclass
class CampaignResult:
    """How a run of a campaign ended: ``outcome`` is completed, stopped (a failure
    threshold or a failed canary) or waiting (an approval is missing)."""

    outcome: str
    reason: str
    members: list[MemberState]
    dashboard: str | None = None

    @property
    def failed(self) -> list[MemberState]:
        """The members that failed."""
        return [m for m in self.members if m.failed]


def _member_task(runbook: str, params: dict[str, Any]) -> dict[str, Any]:
    """One member's run, on a Dask worker: the runbook executed by papermill under the
    system's lock, tried again only if its kernel never started. Returns the executed
    notebook (bytes) and how the run went; archives nothing (the controller does)."""
    from ftkit.runner import controlling, execute

    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = "local"
    path = Path(runbook)
    try:
        with controlling(path, params), tempfile.TemporaryDirectory(prefix="ftkit-") as tmp:
            output = Path(tmp) / path.name
            for _try in range(KERNEL_START_TRIES):
                ran = execute(path, params, output)
                if not ran.unstarted:
                    break
            notebook = output.read_bytes() if output.is_file() else None
    except SessionBusyError as err:
        return {"worker": worker, "busy": err.message}
    return {"worker": worker, "notebook": notebook, "started": ran.started.isoformat(),
            "ended": ran.ended.isoformat(), "error": ran.error, "finished": ran.finished,
            "outcome": _outcome_of(notebook, ran.error)}


def _outcome_of(notebook: bytes | None, error: str | None) -> str:
    """The outcome the notebook will be archived with (the archive's own rule), known on
    the worker so that the controller can count a failure before it archives."""
    from ftkit.archive import result_from_notebook, run_outcome

    try:
        result = result_from_notebook(json.loads(notebook)) if notebook else None
    except ValueError:
        result = None
    return run_outcome(result, error)[0].value


@contextmanager
def _client(scheduler: str | None, spec: CampaignSpec) -> Iterator[Any]:
    """A Dask client: of the cluster at SCHEDULER, else of a LocalCluster of
    ``spec.concurrency`` threads in at most one worker process per core (each with every
    site's resource for each thread, so sites limit nothing locally). ``allowed-failures``
    is 0 for what this client submits."""
    import dask.config
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "distributed.worker.daemon": False}):
        if scheduler:
            client = Client(scheduler, timeout="30s")
            try:
                # the scheduler's own setting, whatever its configuration says: a task whose
                # worker died is never run again behind the campaign's back
                client.run_on_scheduler(_no_retries)
                client.run(_warm, wait=False)
                yield client
            finally:
                client.close()
            return
        sites = {m.site for m in spec.members if m.site}
        # a worker process a core, a thread a system (a run mostly waits on its kernel)
        workers = max(1, min(spec.concurrency, os.cpu_count() or 1))
        threads = math.ceil(spec.concurrency / workers)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads,
                               # None would mean the configured :8787, which another
                               # cluster may hold: any free port (its link is printed)
                               processes=True, dashboard_address=":0",
                               resources={s: threads for s in sites} or None)
        client = Client(cluster)
        try:
            client.run(_warm, wait=False)  # each worker imports papermill while the canary runs
            yield client
        finally:
            client.close()
            cluster.close()


def _import_archiving() -> None:
    """Import the modules :func:`_archive` uses (read-only; runs nothing)."""
    import nbformat  # noqa: F401

    import ftkit.archive
    import ftkit.record
    import ftkit.report_html  # noqa: F401


async def _warm() -> None:
    """On a worker: import what a member's run needs, before its first run asks for it,
    on a thread beside the worker's event loop (read-only; runs nothing)."""
    import asyncio

    from ftkit.runner import load_papermill

    await asyncio.get_running_loop().run_in_executor(None, load_papermill)


def _no_retries(dask_scheduler: Any) -> None:
    """On the scheduler: a task whose worker died is not given to another worker."""
    dask_scheduler.allowed_failures = 0


def run_campaign(spec: CampaignSpec, *, scheduler: str | None = None,
                 reports: Path | None = None, say: Callable[[str], None] = print,
                 on_change: Callable[[list[MemberState]], None] | None = None,
                 asked_in: str | None = None) -> CampaignResult:
    """Run SPEC's campaign from where its journal stands: wave by wave, at most
    ``concurrency`` systems at once, the next wave only once approved (when the campaign
    asks for approvals), no new system once ``max_failures`` failed or the canary failed.
    Each member's notebook is archived under REPORTS as ``ftkit run`` archives it. SAY gets
    one line per event; ON_CHANGE the members after each change (a live table).
    ASKED_IN names where else a wave not yet approved is asked for its approval (the
    campaign notebook: ``"the panel below"``, :func:`ftkit_widgets.drive_campaign`): this
    run then ends "waiting" at once, saying so, without waiting ``approval_wait_min``; its
    caller waits for the approval and runs the campaign again."""
    from ftkit.runner import preflight_archive

    # what archiving needs (nbformat, the HTML renderer) is imported while the cluster
    # starts and the canary runs, not after the canary, when every worker waits for it
    threading.Thread(target=_import_archiving, name="ftkit-campaign-imports",
                     daemon=True).start()
    path = check_members(spec)
    reports = Path(reports) if reports is not None else home.reports_dir()
    preflight_archive(reports)
    journal = campaign_journal(spec)
    try:
        journal.claim(f"campaign {spec.name}")
    except SessionBusyError:
        journal.close()
        raise
    try:
        return _drive(spec, path, journal, scheduler=scheduler, reports=reports, say=say,
                      on_change=on_change, asked_in=asked_in)
    finally:
        journal.release()
        journal.close()


def _drive(spec: CampaignSpec, path: Path, journal: Any, *, scheduler: str | None,
           reports: Path, say: Callable[[str], None],
           on_change: Callable[[list[MemberState]], None] | None,
           asked_in: str | None) -> CampaignResult:
    from distributed import as_completed

    states, approvals = _states(spec, journal)
    for state in states.values():  # cut off last time (a killed controller or worker):
        if state.state in ("running", "interrupted"):  # to be resumed, not yet a failure
            state.state = "waiting"
    changed = (lambda: on_change(list(states.values()))) if on_change else (lambda: None)
    with _client(scheduler, spec) as client:
        link = client.dashboard_link if scheduler or _has_dashboard() else None
        if link:
            say(f"Dask dashboard: {link}")
        for w, wave in enumerate(spec.waves):
            stop = _stop_reason(spec, states, w)
            if stop:
                journal.log(None, "warning", stop, detail={"campaign": "stopped", "wave": w})
                say(stop)
                return CampaignResult("stopped", stop, list(states.values()), link)
            todo = [m for m in wave if states[m.name].state == "waiting"]
            if not todo:
                continue
            if w > 0 and spec.approve_between_waves and w not in approvals:
                approvals = _await_approval(spec, journal, w, say,
                                            0 if asked_in else spec.approval_wait_s)
                if w not in approvals:
                    command = f"ftkit campaign approve {spec.path} --wave {w} --by NAME"
                    why = (f"wave {w} waits for an approval: {asked_in}, or {command}"
                           if asked_in else f"wave {w} waits for an approval: {command}, "
                           "then run the campaign again")
                    say(why)
                    return CampaignResult("waiting", why, list(states.values()), link)
            say(f"wave {w} ({'canary' if w == 0 else f'{len(wave)} systems'}): "
                + ", ".join(m.name for m in todo))
            pending = list(todo)
            running = as_completed()
            ended: tuple[Member, dict[str, Any]] | None = None
            while pending or running.count() or ended is not None:
                while pending and running.count() < spec.concurrency and not _stop_reason(
                        spec, states, w, during=True):
                    member = pending.pop(0)
                    future = client.submit(
                        _member_task, str(path), dict(member.parameters), pure=False,
                        key=f"{spec.name}-{member.name}-{time.time_ns()}",
                        resources={member.site: 1} if member.site else None)
                    future.member = member
                    running.add(future)
                    journal.log(None, "info", f"{member.name} ({member.target}) started, "
                                f"wave {w}", detail={"campaign": "started",
                                                     "system": member.name, "wave": w})
                    states[member.name].state = "running"
                    changed()
                if ended is not None:  # archived once the next systems run (not idle)
                    _record(spec, *ended, journal, states, reports, say)
                    ended = None
                    changed()
                    continue
                if not running.count():
                    break  # stopped: what was not started stays waiting
                ended = _settle(next(running), journal, states, say)
                changed()
        stop = _stop_reason(spec, states, len(spec.waves))
        if stop:
            journal.log(None, "warning", stop, detail={"campaign": "stopped"})
            say(stop)
            return CampaignResult("stopped", stop, list(states.values()), link)
    done = f"campaign {spec.name} completed: {len(states)} systems"
    journal.log(None, "info", done, detail={"campaign": "completed"})
    say(done)
    return CampaignResult("completed", done, list(states.values()), link)


def _has_dashboard() -> bool:
    try:
        import bokeh  # noqa: F401  (the dashboard needs it)
    except ImportError:
        return False
    return True


def _stop_reason(spec: CampaignSpec, states: Mapping[str, MemberState], wave: int, *,
                 during: bool = False) -> str | None:
    """Why no new system may start (read-only): the canary failed, or ``max_failures``
    systems failed; None when systems may start."""
    failed = [s for s in states.values() if s.failed]
    canary = [s for s in failed if s.wave == 0]
    if canary and (wave > 0 or during):
        return (f"campaign {spec.name} stopped: the canary {canary[0].name} ended "
                f"{canary[0].outcome or canary[0].state}; no later system was started")
    if len(failed) >= spec.max_failures:
        return (f"campaign {spec.name} stopped: {len(failed)} "
                f"{'system' if len(failed) == 1 else 'systems'} failed "
                f"({', '.join(s.name for s in failed)}), the limit is {spec.max_failures}; "
                "no new system is started")
    return None


def _await_approval(spec: CampaignSpec, journal: Any, wave: int,
                    say: Callable[[str], None], wait_s: float) -> dict[int, dict]:
    """Wait up to WAIT_S for WAVE's approval to be journaled (by ``ftkit campaign
    approve`` in another process); the approvals found (read-only)."""
    _tell(spec, journal, wave)
    deadline = time.monotonic() + wait_s
    said = False
    while True:
        _s, approvals = _states(spec, journal)
        if wave in approvals or time.monotonic() >= deadline:
            return approvals
        if not said:
            say(f"waiting for the approval of wave {wave}: ftkit campaign approve "
                f"{spec.path} --wave {wave} --by NAME")
            said = True
        time.sleep(1.0)


def _tell(spec: CampaignSpec, journal: Any, wave: int) -> None:
    """Tell ``spec.notify`` once that WAVE waits for an approval (which campaign, who may
    answer, the command); journal that it was sent, or why not. Never raises."""
    if not spec.notify:
        return
    key = f"wave {wave}"
    for entry in journal.entries(kinds=["info", "warning"]):
        detail = entry.detail if isinstance(entry.detail, dict) else {}
        if detail.get("campaign") == "notified" and detail.get("about") == key:
            return
    from ftkit.notify import send

    title = f"ftkit: campaign {spec.name} ({spec.change_id}) waits for the approval of {key}"
    body = (f"Campaign: {spec.name}\nChange: {spec.change_id}\nWaiting for: the approval of "
            f"{key} of {len(spec.waves) - 1} after the canary\nTo answer: ftkit campaign "
            f"approve {spec.path} --wave {wave} --by NAME --reason WHY\n")
    try:
        error = send(spec.notify, title=title, body=body)
    except Exception as err:  # a broken notifier never stops a campaign
        error = f"{type(err).__name__}: {err}"[:300]
    journal.log(None, "info" if error is None else "warning",
                f"notified {len(spec.notify)} target(s): {title}" if error is None
                else f"could not notify that {key} waits: {error}",
                detail={"campaign": "notified", "about": key, "ok": error is None})


def _settle(future: Any, journal: Any, states: dict[str, MemberState],
            say: Callable[[str], None]) -> tuple[Member, dict[str, Any]] | None:
    """Take what FUTURE's member run brought back: a run cut off or refused is journaled
    here (None returned); a run that ran is marked ended with its outcome in STATES (so a
    failure counts before the next system starts) and returned to be archived."""
    member: Member = future.member
    state = states[member.name]
    try:
        out = future.result()
    except Exception as err:  # the worker died (allowed-failures 0: never run again by Dask)
        why = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        _journal_end(journal, state, "interrupted", None, None, None, why,
                     f"{member.name}: its run was cut off ({why}); run the campaign again to "
                     "resume its session")
        say(f"{member.name}: interrupted ({why})")
        return None
    if "busy" in out:
        _journal_end(journal, state, "interrupted", None, None, None, out["busy"],
                     f"{member.name}: not run, another controller drives it: {out['busy']}",
                     worker=out["worker"])
        say(f"{member.name}: refused, {out['busy']}")
        return None
    state.state = "ended" if out.get("finished", True) else "interrupted"
    state.outcome = (out.get("outcome") or _outcome_of(out["notebook"], out.get("error"))
                     if out.get("notebook") else "failed")
    return member, out


def _record(spec: CampaignSpec, member: Member, out: Mapping[str, Any], journal: Any,
            states: dict[str, MemberState], reports: Path, say: Callable[[str], None]) -> None:
    """Archive what MEMBER's run brought back (OUT) and journal how it ended."""
    state = states[member.name]
    entry = _archive(member, spec, out, reports) if out.get("notebook") else None
    outcome = entry.outcome if entry else "failed"
    report = (entry.html or entry.notebook) if entry else None
    event = "ended" if out.get("finished", True) else "interrupted"
    _journal_end(journal, state, event, outcome, entry.outage_s if entry else None, report,
                 out.get("error"), f"{member.name} {outcome}" + (
                     f" ({out['error']})" if out.get("error") else "")
                 + (f", report {report}" if report else ""), worker=out["worker"])
    say(f"{member.name}: {outcome}" + (f", outage {entry.outage_s:g} s" if entry and
                                       entry.outage_s is not None else "")
        + (f" — {out['error']}" if out.get("error") else ""))


def _journal_end(journal: Any, state: MemberState, event: str, outcome: str | None,
                 outage: float | None, report: str | None, error: str | None, message: str,
                 *, worker: str | None = None) -> None:
    journal.log(None, "info" if outcome in DONE_OUTCOMES else "warning", message,
                detail={"campaign": event, "system": state.name, "outcome": outcome,
                        "outage_s": outage, "report": report, "error": error,
                        "worker": worker})
    state.state, state.outcome, state.outage_s = event, outcome, outage
    state.report, state.error, state.worker = report, error, worker or state.worker


def _archive(member: Member, spec: CampaignSpec, out: Mapping[str, Any], reports: Path) -> Any:
    """Archive a member's executed notebook as ``ftkit run`` does (a failure as failed)."""
    from ftkit.archive import archive_run
    from ftkit.runner import anchor

    with tempfile.TemporaryDirectory(prefix="ftkit-campaign-") as tmp:
        notebook = Path(tmp) / f"{Path(spec.runbook).stem}.ipynb"
        notebook.write_bytes(out["notebook"])
        entry = archive_run(notebook, runbook=Path(spec.runbook).stem,
                            parameters=member.parameters,
                            started=datetime.fromisoformat(out["started"]),
                            ended=datetime.fromisoformat(out["ended"]), reports=reports,
                            error=out.get("error"))
    anchor(entry, reports=reports)
    return entry


def campaign_status(spec: CampaignSpec) -> dict[str, Any]:
    """SPEC's campaign as its journal has it (read-only; creates the journal if new):
    per system its wave, state, outcome, outage and report; the approvals; the totals."""
    journal = campaign_journal(spec)
    try:
        states, approvals = _states(spec, journal)
        entries = journal.entries()
    finally:
        journal.close()
    stamps = [e.ts for e in entries if isinstance(e.detail, dict) and "campaign" in e.detail]
    wall = (datetime.fromisoformat(stamps[-1]) - datetime.fromisoformat(stamps[0])
            ).total_seconds() if len(stamps) > 1 else 0.0
    members = [vars(s) | {"failed": s.failed} for s in states.values()]
    return {
        "campaign": spec.name,
        "change_id": spec.change_id,
        "waves": len(spec.waves),
        "approvals": {str(w): {k: a.get(k) for k in ("by", "account", "why")}
                      for w, a in sorted(approvals.items())},
        "systems": members,
        "totals": {
            "systems": len(members),
            "ended": sum(1 for s in states.values() if s.state == "ended"),
            "failed": sum(1 for s in states.values() if s.failed),
            "outage_s": sum(s.outage_s or 0 for s in states.values()),
            "wall_s": wall,
        },
        "as_of": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def status_table(status: Mapping[str, Any]) -> str:
    """The campaign status as a plain text table (what ``ftkit campaign status`` prints)."""
    rows = [("system", "wave", "state", "outcome", "outage", "report")]
    for s in status["systems"]:
        rows.append((s["name"], str(s["wave"]), s["state"], s["outcome"] or "-",
                     "-" if s["outage_s"] is None else f"{s['outage_s']:g} s",
                     s["report"] or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    t = status["totals"]
    lines.append(f"{t['ended']}/{t['systems']} ended, {t['failed']} failed, outage "
                 f"{t['outage_s']:g} s in all")
    return "\n".join(lines)


def to_json(status: Mapping[str, Any]) -> str:
    """The status as JSON (``--json``)."""
    return json.dumps(status, indent=2)
