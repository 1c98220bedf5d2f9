"""The invariants (docs/DOMAIN.md#invariants) under an adversary: one controller per
session, nothing done twice, no way stuck, a tampered journal never resumed. Real
processes and real signals where the issue's reproduction used them."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from pathlib import Path

import pytest
from drive import request

from ftkit.decisions import ParameterDecisions
from ftkit.drivers import connect
from ftkit.errors import ArchiveError, SessionBusyError, TransitionError
from ftkit.journal import Journal
from ftkit.process import open_session
from ftkit.sim.driver import create_system

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "examples" / "demo-config.toml")
PACKAGES = [str(REPO / "examples" / "packages" / "os-hotfix.toml"),
            str(REPO / "examples" / "packages" / "orderdb-12.5.toml")]
COMMIT = {"split": "proceed", "merge": "proceed", "commit": "commit"}
ABORT_BEFORE = {"split": "proceed", "merge": "abort"}
ABORT_AFTER = {**COMMIT, "commit": "abort"}


def _intents(target: str) -> Counter[tuple[int | None, str]]:
    journal = Journal.open(target)
    try:
        journal.verify()
        return Counter((e.session_id, e.step) for e in journal.entries(kinds=["intent"]))
    finally:
        journal.close()


def test_rerun_of_a_finished_change_runs_nothing() -> None:
    """#1: the same change id again after it committed reports it; no second upgrade."""
    target = f"sim://rerun-{uuid.uuid4().hex[:8]}"
    driver = create_system(target)
    first = open_session(driver, CONFIG, PACKAGES, change_id="CHG-1", operator="a", reason="r")
    assert first.run(ParameterDecisions(COMMIT)) == "committed"
    before = (_intents(target), len(driver.outages()), driver.status().now)
    again = open_session(driver, CONFIG, PACKAGES, change_id="CHG-1", operator="a",
                         reason="r")
    assert again.done and again.record is not None and again.record.id == first.record.id
    assert again.run(ParameterDecisions(COMMIT)) == "committed"
    assert (_intents(target), len(driver.outages())) == before[:2]
    with pytest.raises(TransitionError, match="ran already"):  # not even by a raw begin
        again.journal.begin_session(change_id="CHG-1", operator="a", reason="r")


_CONTROLLER = textwrap.dedent("""
    import sys
    from ftkit.decisions import ParameterDecisions
    from ftkit.errors import FtkitError
    from ftkit.drivers import ensure_system
    from ftkit.process import open_session
    target, change, config, *packages = sys.argv[1:]
    try:
        driver, _created = ensure_system(target)  # as the runbook does: first use creates
        session = open_session(driver, config, packages, change_id=change, operator="op",
                               reason="race")
        print("OUTCOME", session.run(ParameterDecisions(
            {"split": "proceed", "merge": "proceed", "commit": "commit"})))
    except FtkitError as err:
        print("REFUSED", type(err).__name__, err.message)
""")


@pytest.mark.parametrize("rounds", [pytest.param(3, id="3-rounds"),
                                    pytest.param(10, id="10-rounds", marks=pytest.mark.slow)])
def test_concurrent_runs_have_one_controller(rounds: int) -> None:
    """#2: four runs of one system at once: exactly one drives each change, the others are
    refused (SessionBusy) or report the change that ran; no step is written twice."""
    for n in range(rounds):
        target = f"sim://race-{uuid.uuid4().hex[:8]}"  # a fresh system: nothing installed
        if n % 2 == 0:
            create_system(target).close()  # odd rounds: the four race to create it too
        change = f"CHG-R{n}"
        procs = [subprocess.Popen([sys.executable, "-c", _CONTROLLER, target, change, CONFIG,
                                   *PACKAGES], stdout=subprocess.PIPE, text=True,
                                  env=os.environ.copy())
                 for _ in range(4)]
        outs = [p.communicate(timeout=120)[0] for p in procs]
        assert all(("OUTCOME committed" in o) or ("REFUSED SessionBusyError" in o)
                   for o in outs), outs
        assert any("OUTCOME committed" in o for o in outs), outs
        journal = Journal.open(target)
        sessions = [s for s in journal.sessions() if s.change_id == change]
        journal.close()
        assert len(sessions) == 1 and sessions[0].outcome == "committed"
        steps = Counter(step for (sid, step), count in _intents(target).items()
                        if sid == sessions[0].id for _ in range(count))
        assert set(steps.values()) == {1}, steps  # every request once: nothing twice


def test_a_live_controller_is_never_called_interrupted(tmp_path: Path) -> None:
    """#2: a late joiner is refused while the controller lives, and journals nothing
    ("interrupted", a handover, "reopened by") into its session."""
    target = f"sim://live-{uuid.uuid4().hex[:8]}"
    create_system(target, time_scale=0.02).close()  # Install takes a few real seconds
    child = subprocess.Popen([sys.executable, "-c", _CONTROLLER, target, "CHG-L", CONFIG,
                              *PACKAGES], stdout=subprocess.PIPE, text=True)
    try:
        journal = Journal.open(target)
        deadline = 60.0
        import time

        start = time.monotonic()
        while time.monotonic() - start < deadline:
            current = journal.current_session()
            if current is not None and current.upgrade_state == "Split":
                break
            time.sleep(0.05)
        with pytest.raises(SessionBusyError, match=r"driven by op .*pid"):
            open_session(target, CONFIG, PACKAGES, change_id="CHG-L2", operator="late",
                         reason="r", handover=True)  # even taking over explicitly
        # refused at the door: nothing of the late joiner in the live session's journal
        said = [e.message for e in journal.entries()
                if "interrupted" in e.message or "late" in e.message.split()]
        assert not said, said
        journal.close()
    finally:
        speed_up = connect(target)
        speed_up.set_time_scale(0.0)  # the live run finishes at once from here
        speed_up.close()
        out = child.communicate(timeout=300)[0]
    assert "OUTCOME committed" in out, out


def test_a_tampered_journal_is_not_resumed() -> None:
    """#10: an edited decision is found before anything runs on that journal."""
    target = f"sim://tamper-{uuid.uuid4().hex[:8]}"
    driver = create_system(target)
    session = open_session(driver, CONFIG, PACKAGES, change_id="CHG-T", operator="a",
                           reason="r")
    request(session, "PrepareSplit")
    session.advance(ParameterDecisions({"split": "stop"}))  # split and its request
    path = session.journal.path
    session.journal.close()
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER entries_no_update")
    raw.execute("UPDATE entries SET detail = replace(detail, '\"stop\"', '\"proceed\"')"
                " WHERE kind = 'decision'")
    raw.commit()
    raw.close()
    with pytest.raises(ArchiveError, match="was edited"):
        open_session(driver, CONFIG, PACKAGES, change_id="CHG-T", operator="a", reason="r")


def test_an_edited_sessions_table_is_not_resumed_as_another_operator() -> None:
    """#18: the session's operator and change id edited with sqlite3 (no handover) are
    found by open_session's verify, naming the session and the field; nothing runs."""
    target = f"sim://tamper-{uuid.uuid4().hex[:8]}"
    driver = create_system(target)
    session = open_session(driver, CONFIG, PACKAGES, change_id="CHG-S", operator="alice",
                           reason="r")
    request(session, "PrepareSplit")
    path, before = session.journal.path, len(session.journal.entries())
    session.journal.close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE sessions SET operator = 'mallory', change_id = 'CHG-M'")
    raw.commit()
    raw.close()
    with pytest.raises(ArchiveError, match=r"session 1's change_id is 'CHG-M' in the "
                                           r"sessions table, the hash chain says 'CHG-S'"):
        open_session(driver, CONFIG, PACKAGES, change_id="CHG-M", operator="mallory",
                     reason="r")
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT count(*) FROM entries").fetchone()[0] == before
    raw.close()


# --- the kill sweep ------------------------------------------------------------------------

_VICTIM = textwrap.dedent("""
    import os, signal, sys, json
    from ftkit.decisions import ParameterDecisions
    from ftkit.process import open_session
    target, stop_after, answers, config, *packages = sys.argv[1:]
    session = open_session(target, config, packages, change_id="CHG-K", operator="op",
                           reason="kill sweep")
    seen = [0]
    def stop(entry):
        seen[0] += 1
        if seen[0] == int(stop_after):
            os.kill(os.getpid(), signal.SIGSTOP)  # the parent SIGKILLs us here
    session.subscribe(stop)
    print("OUTCOME", session.run(ParameterDecisions(json.loads(answers))), flush=True)
""")


def _entries_of_a_whole_run(answers: dict[str, str]) -> int:
    target = f"sim://count-{uuid.uuid4().hex[:8]}"
    driver = create_system(target)
    session = open_session(driver, CONFIG, PACKAGES, change_id="CHG-K", operator="op",
                           reason="count")
    heard: list[int] = []
    session.subscribe(lambda e: heard.append(e.id))
    session.run(ParameterDecisions(answers))
    driver.close()
    return len(heard)


def _kill_at(answers: dict[str, str], point: int, expected: str) -> None:
    import json

    target = f"sim://kill-{uuid.uuid4().hex[:8]}"
    driver = create_system(target)
    original = driver.status().boot_disk().members[0].software.copy()
    victim = subprocess.Popen([sys.executable, "-c", _VICTIM, target, str(point),
                               json.dumps(answers), CONFIG, *PACKAGES],
                              stdout=subprocess.PIPE, text=True)
    _pid, status = os.waitpid(victim.pid, os.WUNTRACED)
    if os.WIFSTOPPED(status):
        os.kill(victim.pid, signal.SIGKILL)  # a real signal, from another process
        victim.wait()
    else:
        victim.returncode = os.waitstatus_to_exitcode(status)
    assert victim.stdout is not None
    victim.stdout.close()
    rerun = open_session(target, CONFIG, PACKAGES, change_id="CHG-K", operator="op",
                         reason="after the kill")
    assert rerun.run(ParameterDecisions({**answers, "broken": "retry"})) == expected
    journal = Journal.open(target)
    sessions = journal.sessions()
    assert len(sessions) == 1 and sessions[0].outcome == expected  # one session
    journal.verify()
    intents = [e for e in journal.entries(kinds=["intent"])]
    outcomes = [e for e in journal.entries(kinds=["outcome"])]
    assert all(sum(o.intent_id == i.id for o in outcomes) == 1 for i in intents)
    succeeded = Counter(o.step for o in outcomes if o.ok)
    assert all(n == 1 for n in succeeded.values()), succeeded  # nothing done twice
    actions = Counter((e.detail["action"], e.detail["when"]) for e in
                      journal.entries(kinds=["action"]) if e.detail.get("ok"))
    assert all(n == 1 for n in actions.values()), actions
    journal.close()
    st = driver.status()
    assert driver.lost_transactions() == 0
    assert st.duplex and not st.split
    software = {enc: m.software for enc, m in st.boot_disk().members.items()}
    assert software[0] == software[1]
    assert (software[0] == original) == (expected != "committed")
    merged = "merge" in answers and answers.get("merge") == "proceed"
    outages = [o for o in driver.outages() if o.seconds is not None]
    assert len(outages) == ((1 if expected == "committed" else 2) if merged else 0)
    driver.close()


# (name, answers, outcome, journal entries a whole run writes: checked below)
PATHS = [("commit", COMMIT, "committed", 42), ("abort-before-merge", ABORT_BEFORE, "aborted", 28),
         ("abort-after-merge", ABORT_AFTER, "aborted", 42)]


def _sweep(every: int) -> list[object]:
    """A kill after each journal write of each path, and one past the end (the run ends
    normally, then is rerun); every EVERY-th point in the quick set, all when slow."""
    return [pytest.param(answers, point, expected, id=f"{name}-{point}",
                         marks=() if point % every == 1 else pytest.mark.slow)
            for name, answers, expected, total in PATHS for point in range(1, total + 2)]


def test_the_sweep_covers_every_journal_write() -> None:
    for name, answers, _expected, total in PATHS:
        assert _entries_of_a_whole_run(answers) == total, name


@pytest.mark.parametrize(("answers", "point", "expected"), _sweep(every=14))
def test_killed_after_any_journal_write_the_rerun_ends_correct(
        answers: dict[str, str], point: int, expected: str) -> None:
    _kill_at(answers, point, expected)


def test_a_journal_lost_mid_session_stops_the_run_and_recover_adopts_the_system() -> None:
    """#9: the journal deleted while split: the next step refuses; `adopt` (ftkit recover)
    starts a journal from the system's own state, and the abort runbook's path ends it."""
    from ftkit.recovery import adopt

    target = f"sim://lost-{uuid.uuid4().hex[:8]}"
    driver = create_system(target)
    session = open_session(driver, CONFIG, PACKAGES, change_id="CHG-J", operator="a",
                           reason="r")
    request(session, "PrepareSplit")
    session.advance(ParameterDecisions(COMMIT))  # split and its request
    session.journal.path.unlink()
    with pytest.raises(ArchiveError, match="removed or replaced"):
        request(session, "Install")
    assert driver.status().split  # nothing was done: the system stays as it was
    session.journal.close()
    rescued = adopt(driver, operator="b", reason="journal lost")
    assert (rescued.upgrade_state.value, rescued.operational_state.value) == ("Split", "Ready")
    assert rescued.abort_and_finish(who="b", why="journal lost") == "aborted"
    st = driver.status()
    assert st.duplex and not st.split and driver.lost_transactions() == 0


def test_two_spellings_of_one_system_share_one_session() -> None:
    """#3: sim://NAME and sim:///path/NAME.db are one system: one journal, one session."""
    from ftkit.sim.driver import system_path

    name = f"a1-{uuid.uuid4().hex[:8]}"
    driver = create_system(f"sim://{name}")
    first = open_session(f"sim://{name}", CONFIG, PACKAGES, change_id="CHG-2S",
                         operator="a", reason="r")
    request(first, "PrepareSplit")
    first.close()
    other = open_session(f"sim://{system_path(name)}", CONFIG, PACKAGES, change_id="CHG-2S",
                         operator="a", reason="r")
    assert other.resumed and other.record is not None and other.record.id == first.record.id
    assert other.journal.path == first.journal.path
    assert other.run(ParameterDecisions(COMMIT)) == "committed"
    assert len(Journal.open(f"sim://{name}").sessions()) == 1
    with pytest.raises(TransitionError, match="ran already"):  # under either spelling
        Journal.open(f"sim://{name}").begin_session(change_id="CHG-2S", operator="a",
                                                    reason="r")
    driver.close()


def test_a_secret_never_reaches_the_journal_and_actions_get_a_declared_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#6: an action that prints its environment: the referenced secret is masked before
    it is journaled, and the caller's other variables never reach the action."""
    monkeypatch.setenv("FTKIT_TEST_DB_PASSWORD", "s3cr3t-Value-42")
    monkeypatch.setenv("FTKIT_TEST_UNRELATED", "caller-only-value")
    script = tmp_path / "dump-env.sh"
    script.write_text("#!/bin/sh\nenv\necho \"password is $FTKIT_TEST_DB_PASSWORD\" >&2\n")
    script.chmod(0o755)
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'description = "secrets"\ninclude = ["{CONFIG}"]\n'
                   f'[[custom_actions]]\nname = "dump-env"\npath = "{script}"\n'
                   'request = "ExecuteSplit"\nwhen = "before"\nside = "Production"\n'
                   'secret_env = ["FTKIT_TEST_DB_PASSWORD"]\n')
    driver = create_system(f"sim://secret-{uuid.uuid4().hex[:8]}")
    session = open_session(driver, str(cfg), PACKAGES, change_id="CHG-SEC", operator="a",
                           reason="r")
    session.run(ParameterDecisions(ABORT_BEFORE))
    raw = session.journal.path.read_bytes() + b"".join(
        p.read_bytes() for p in session.journal.path.parent.glob("*-wal"))
    assert b"s3cr3t-Value-42" not in raw
    [action] = [e for e in session.entries(kinds=["action"]) if e.detail["action"] == "dump-env"]
    assert "FTKIT_TEST_DB_PASSWORD=***" in action.detail["stdout"]
    assert "password is ***" in action.detail["stderr"]
    assert "FTKIT_TEST_UNRELATED" not in action.detail["stdout"]  # not declared: not passed
    assert "ACTIVE_UPGRADE_REQUEST=ExecuteSplit" in action.detail["stdout"]


def test_a_reports_folder_that_is_a_file_refuses_the_run(tmp_path: Path) -> None:
    """#8: an archive that cannot be written (here a file where the folder should be: as
    root, permissions do not bite) refuses the run before anything changes."""
    from ftkit.errors import FtkitError
    from ftkit.runner import run_runbook

    target = f"sim://arch-{uuid.uuid4().hex[:8]}"
    driver = create_system(target)
    version = driver.store.version()
    reports = tmp_path / "reports"
    reports.write_text("not a folder")
    with pytest.raises(FtkitError, match="cannot be written"):
        run_runbook("active-upgrade", {"system": target, "mode": "auto", "decisions": COMMIT,
                                       "change_id": "CHG-A", "operator": "a"},
                    reports=reports)
    assert driver.store.version() == version and not driver.status().split


@pytest.mark.parametrize("where", ["PrepareSplit", "Split", "PrepareMerge", "Merge",
                                   "Broken at Install", "Broken at ExecuteMerge",
                                   "Abort, Broken"])
def test_the_abort_path_ends_correct_from_every_state_abort_is_allowed_in(where: str) -> None:
    """#4: the abort runbook's path (abort_and_finish) from every state Abort is allowed
    in (docs/STATE-MACHINE.md)."""
    from ftkit.errors import FtkitError

    driver = create_system(f"sim://ab-{uuid.uuid4().hex[:8]}")
    original = driver.status().boot_disk().members[0].software.copy()
    session = open_session(driver, CONFIG, PACKAGES, change_id="CHG-AB", operator="a",
                           reason="r")
    decide = ParameterDecisions(COMMIT)
    request(session, "PrepareSplit")
    if where != "PrepareSplit":
        session.advance(decide)  # split and its request
        if where == "Broken at Install":
            driver.inject("installer-fail")
        try:
            request(session, "Install")
        except FtkitError:
            assert where == "Broken at Install"
    if where in ("PrepareMerge", "Merge", "Broken at ExecuteMerge", "Abort, Broken"):
        session.advance(decide)  # merge and its request
        if where == "Broken at ExecuteMerge":
            driver.inject("service-start-refused", point="merge")
        if where != "PrepareMerge":
            try:
                request(session, "ExecuteMerge")
            except FtkitError:
                assert where == "Broken at ExecuteMerge"
    if where == "Abort, Broken":
        driver.inject("service-start-refused", point="abort")  # fires once
        with pytest.raises(FtkitError):
            request(session, "Abort")
        assert session.broken is not None and session.broken[0] == "Abort"
    session.close()
    other = open_session(driver, CONFIG, PACKAGES, operator="b", reason="abort it",
                         handover=True)  # as the abort runbook opens it
    assert other.abort_and_finish(who="b", why="abort it") == "aborted"
    st = driver.status()
    assert st.duplex and not st.split and driver.lost_transactions() == 0
    assert {enc: m.software for enc, m in st.boot_disk().members.items()} == {
        0: original, 1: original}


def test_a_run_that_reads_a_session_its_controller_then_ends_reports_the_change(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """#2 (the race CI met): a late joiner reads the unfinished session, and before it takes
    the lock the controller ends it and lets go. The joiner reads again under the lock and
    reports the change that ran: no TransitionError, nothing written twice."""
    from ftkit import engine

    target = f"sim://ended-{uuid.uuid4().hex[:8]}"
    driver = create_system(target)
    first = open_session(driver, CONFIG, PACKAGES, change_id="CHG-E", operator="a", reason="r")
    assert first.run(ParameterDecisions({"split": "proceed", "merge": "later"})) == "Split"
    real_claim, raced = engine.claim, []

    def claim_after_the_controller_ends(journal: Journal, **who: str) -> None:
        if not raced:  # the controller finishes between the joiner's read and its claim
            raced.append(True)
            assert first.run(ParameterDecisions(COMMIT)) == "committed"
        real_claim(journal, **who)

    monkeypatch.setattr(engine, "claim", claim_after_the_controller_ends)
    before = _intents(target)
    late = open_session(connect(target), CONFIG, PACKAGES, change_id="CHG-E", operator="a",
                        reason="r")
    assert raced and late.done and late.record is not None
    assert late.record.id == first.record.id and late.record.outcome == "committed"
    assert late.run(ParameterDecisions(COMMIT)) == "committed"
    assert set(Counter(_intents(target)).values()) == {1}
    assert len(_intents(target)) > len(before)  # the controller's Commit and Finish only
