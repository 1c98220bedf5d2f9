"""Races between real ``ftkit run`` processes on one system: exactly one controller drives
it; every other run is refused at the door — exit 2, one line saying who drives the system
and since when — and leaves no ledger row and nothing in the journal.

(a) the abort runbook started while an upgrade runs; (b) two resumes of one paused
session at once; (c) four first runs of a new system at once. Each racer says a reason of
its own (``-p reason racer-…``): a loser's reason must appear nowhere in the journal. What
the runs wait for is polled (the journal's state, the processes' ends) with a deadline.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import ORIGINAL
from invariants import ended_right

from ftkit.archive import read_ledger
from ftkit.drivers import connect
from ftkit.journal import Journal
from ftkit.sim.driver import create_system

pytestmark = [pytest.mark.notebook, pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="needs /proc to find a run's kernel")]

COMMIT = {"split": "proceed", "merge": "proceed", "commit": "commit"}
DEADLINE_S = 60.0  # a bound on every wait; each test takes well under 30 s


def _yaml(answers: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in answers.items()) + "}"


def _ftkit_run(runbook: str, **parameters: Any) -> subprocess.Popen[str]:
    """``ftkit run RUNBOOK -p NAME VALUE …`` as a process of its own (this environment's
    $FTKIT_HOME and $FTKIT_REPORTS)."""
    args = [sys.executable, "-m", "ftkit", "run", runbook]
    for name, value in parameters.items():
        args += ["-p", name, _yaml(value) if isinstance(value, Mapping) else str(value)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy())


def _upgrade(system: str, answers: Mapping[str, str], reason: str, **more: Any
             ) -> subprocess.Popen[str]:
    return _ftkit_run("active-upgrade", system=system, mode="auto", decisions=answers,
                      change_id="CHG-RACE", operator="alice", reason=reason, **more)


def _ended(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    """(exit status, stdout, stderr) of each process, once all ended (killed at the
    deadline)."""
    ends = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        ends.append((proc.returncode, out, err))
    return ends


def _descendants(pid: int) -> set[int]:
    """The processes PID started (its kernel), from /proc now; read-only."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, todo = set(), [pid]
    while todo:
        children = [child for child, parent in parents.items() if parent == todo[-1]]
        todo.pop()
        found.update(children)
        todo += children
    return found


def _losers_then_winner(procs: list[subprocess.Popen[str]], system: str
                        ) -> tuple[list[tuple[int, str, str]], dict[int, set[int]]]:
    """Wait until all but one of PROCS ended (the losers, refused at the door), then run
    SYSTEM's clock instantly (the winner, slowed so that it still drove while they tried,
    finishes at once; a loser may end before the winner's kernel created the system); the
    ends of all, and each one's family (its pid and those of the processes it started)."""
    from ftkit.errors import FtkitError

    family = {p.pid: {p.pid} for p in procs}

    def losers_ended() -> bool:
        for p in procs:
            family[p.pid] |= _descendants(p.pid)
        return sum(p.poll() is not None for p in procs) >= len(procs) - 1

    _until(losers_ended, "all runs but one ended")
    driver = None

    def created() -> bool:
        nonlocal driver
        try:
            driver = connect(system)
        except FtkitError:
            return all(p.poll() is not None for p in procs)  # all ended: none will create it
        return True

    _until(created, f"{system} was created")
    if driver is not None:
        driver.set_time_scale(0.0)
        driver.close()
    return _ended(procs), family


def _until(ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not ready():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def _pending_step(system: str) -> str | None:
    """The step the system's unfinished session has started and not finished; read-only."""
    with Journal.open(system) as journal:
        current = journal.current_session()
        pending = current and journal.pending_intent(current.id)
        return pending.step if pending else None


def _refused_at_the_door(end: tuple[int, str, str], *, winner: set[int]) -> None:
    """A loser: exit 2, one line on stderr saying who drives the system (one of WINNER:
    the ftkit run that holds it, or its kernel) and since when."""
    status, _out, err = end
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1, end
    named = re.search(r"driven by .*\bpid (\d+)\b.*\bsince \d{4}-", lines[0])
    assert named is not None and int(named[1]) in winner, (lines[0], winner)


def _journal_text(system: str) -> str:
    with Journal.open(system) as journal:
        return "\n".join(json.dumps(dataclasses.asdict(e), default=str)
                         for e in journal.entries())


def _ledger(ftkit_dirs: SimpleNamespace) -> list[tuple[str, str]]:
    return [(e.runbook, e.outcome) for e in read_ledger(Path(ftkit_dirs.reports))]


def test_the_abort_runbook_is_refused_while_an_upgrade_runs(ftkit_dirs: SimpleNamespace
                                                            ) -> None:
    system = f"sim://race-a-{uuid.uuid4().hex[:8]}"
    create_system(system, time_scale=0.01).close()  # Install lasts about 12 s
    upgrade = _upgrade(system, COMMIT, "racer-upgrade", soak_minutes=1)
    try:
        _until(lambda: _pending_step(system) == "Install", "the upgrade is installing")
        family = {upgrade.pid, *_descendants(upgrade.pid)}
        abort = _ftkit_run("abort", system=system, operator="bob", reason="racer-abort")
        [aborted] = _ended([abort])
    finally:
        speed_up = connect(system)
        speed_up.set_time_scale(0.0)  # the upgrade finishes at once from here
        speed_up.close()
        [upgraded] = _ended([upgrade])
    _refused_at_the_door(aborted, winner=family)
    assert upgraded[0] == 0, upgraded
    assert _ledger(ftkit_dirs) == [("active-upgrade", "committed")]
    said = _journal_text(system)
    assert "racer-abort" not in said and "bob" not in said
    ended_right(system, COMMIT, "committed", ORIGINAL)


def test_two_resumes_of_one_paused_session_one_drives(ftkit_dirs: SimpleNamespace) -> None:
    system = f"sim://race-b-{uuid.uuid4().hex[:8]}"
    driver = create_system(system)
    [paused] = _ended([_upgrade(system, {"split": "proceed", "merge": "later"}, "first")])
    assert paused[0] == 0, paused
    assert _ledger(ftkit_dirs) == [("active-upgrade", "paused")]
    driver.set_time_scale(0.02)  # the winner still drives when the loser tries
    driver.close()
    racers = [_upgrade(system, {"merge": "proceed", "commit": "commit"}, f"racer-{n}")
              for n in (1, 2)]
    ends, family = _losers_then_winner(racers, system)
    winners = [n for n, end in enumerate(ends) if end[0] == 0]
    assert len(winners) == 1, ends
    [loser] = [n for n in range(2) if n not in winners]
    _refused_at_the_door(ends[loser], winner=family[racers[winners[0]].pid])
    assert _ledger(ftkit_dirs) == [("active-upgrade", "paused"), ("active-upgrade", "committed")]
    assert f"racer-{loser + 1}" not in _journal_text(system)
    ended_right(system, COMMIT, "committed", ORIGINAL)


def test_four_first_runs_of_a_new_system_one_drives(ftkit_dirs: SimpleNamespace) -> None:
    system = f"sim://race-c-{uuid.uuid4().hex[:8]}"  # does not exist: the run creates it
    racers = [_upgrade(system, COMMIT, f"racer-{n}", time_scale=0.01)  # slow till the
              for n in range(4)]                                         # losers end
    ends, family = _losers_then_winner(racers, system)
    winners = [n for n, end in enumerate(ends) if end[0] == 0]
    assert len(winners) == 1, ends
    for n, end in enumerate(ends):
        if n not in winners:
            _refused_at_the_door(end, winner=family[racers[winners[0]].pid])
    assert _ledger(ftkit_dirs) == [("active-upgrade", "committed")]
    said = _journal_text(system)
    assert not [n for n in range(4) if n not in winners and f"racer-{n}" in said]
    ended_right(system, COMMIT, "committed", ORIGINAL)
