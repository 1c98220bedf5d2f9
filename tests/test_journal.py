"""The journal: sessions, intent/outcome, hash chain and tamper detection, one session
across processes, redaction, listeners."""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftkit import home, store
from ftkit.errors import ArchiveError, FtkitError, SessionBusyError, TransitionError
from ftkit.journal import GENESIS, Entry, Journal, Note, SessionRecord
from ftkit.redact import forget_secrets, register_secret


@pytest.fixture(autouse=True)
def ftkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FTKIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "j.db", target="sim://lab") as j:
        yield j


def start(journal: Journal, change_id: str = "", **data: object) -> SessionRecord:
    """Begin a session; each gets its own change id (a change id never runs twice)."""
    change_id = change_id or f"CHG-{len(journal.sessions()) + 1}"
    return journal.begin_session(change_id=change_id, operator="alice", reason="patch",
                                 data=data)


def raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def one_line(err: FtkitError) -> None:
    assert "\n" not in str(err)
    assert err.remedy
    assert str(pickle.loads(pickle.dumps(err))) == str(err)


# --- homes -------------------------------------------------------------------------------


def test_open_keeps_one_journal_per_target_under_ftkit_home(ftkit_home: Path) -> None:
    a, b, c = (home.journal_path(t) for t in ("sim://a/b", "sim://a_b", "sim:///x/y.db"))
    assert len({a, b, c}) == 3, "similar targets never share a journal"
    assert all(p.parent == ftkit_home / "journals" for p in (a, b, c))
    assert a.parent.is_dir()
    with Journal.open("sim://a/b") as j:
        assert j.path == a
        assert j.target == "sim://a/b"
        assert start(j).target == "sim://a/b"
    with Journal(a) as again:
        assert again.target == "sim://a/b", "the target is stored in the file"


def test_reports_dir_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FTKIT_REPORTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert home.reports_dir() == tmp_path / "reports"
    monkeypatch.setenv("FTKIT_REPORTS", str(tmp_path / "elsewhere"))
    assert home.reports_dir() == tmp_path / "elsewhere"


def test_default_home_is_the_user_state_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("FTKIT_HOME")
    assert home.ftkit_home() == Path(platformdirs.user_state_dir("ftkit", appauthor=False))


# --- sessions ----------------------------------------------------------------------------


def test_session_lifecycle(journal: Journal) -> None:
    assert journal.current_session() is None
    record = start(journal, mode="auto")
    assert (record.upgrade_state, record.operational_state) == ("Idle", "Ready")
    assert record.active and not record.broken
    assert record.data == {"mode": "auto"}
    assert journal.current_session() == record

    journal.set_state(record.id, upgrade_state="PrepareSplit", operational_state="Busy")
    journal.set_state(
        record.id,
        upgrade_state="PrepareSplit",
        operational_state="Broken",
        broken_step="ExecuteSplit",
        broken_reason="custom action quiesce exited 3",
        sim_time=42.5,
    )
    now = journal.session(record.id)
    assert now.broken and now.broken_step == "ExecuteSplit"
    state = journal.entries(record.id, kinds=["state"])[-1]
    assert state.sim_time == 42.5
    assert state.message == "PrepareSplit / Broken at ExecuteSplit: custom action quiesce exited 3"
    assert state.detail["broken_reason"] == "custom action quiesce exited 3"

    ended = journal.end_session(record.id, outcome="aborted")
    assert not ended.active and ended.outcome == "aborted"
    assert journal.current_session() is None
    assert [s.id for s in journal.sessions()] == [record.id]
    second = start(journal)
    assert second.id != record.id, "a new session may start once the last one ended"
    journal.end_session(second.id, outcome="stopped")
    with pytest.raises(TransitionError, match="CHG-1 ran already"):
        start(journal, change_id="CHG-1")  # a change id never runs twice


def test_an_ended_session_records_nothing_more(journal: Journal) -> None:
    record = start(journal)
    journal.end_session(record.id, outcome="stopped")
    for write in (
        lambda: journal.intent(record.id, "Split", "again"),
        lambda: journal.log(record.id, "info", "late"),
        lambda: journal.set_state(record.id, upgrade_state="Idle", operational_state="Ready"),
        lambda: journal.end_session(record.id, outcome="failed"),
    ):
        with pytest.raises(TransitionError) as info:
            write()
        one_line(info.value)
    with pytest.raises(FtkitError, match="no session 99"):
        journal.session(99)


def test_second_session_refused_while_one_is_unfinished(journal: Journal) -> None:
    first = start(journal)
    journal.set_state(first.id, upgrade_state="Split", operational_state="Ready")
    with pytest.raises(SessionBusyError) as info:
        start(journal)
    one_line(info.value)
    assert f"session {first.id}" in str(info.value) and "Split" in str(info.value)
    assert len(journal.sessions()) == 1


def _race(path: str, barrier: multiprocessing.synchronize.Barrier, results: object) -> None:
    barrier.wait(timeout=60)
    with Journal(path, target="sim://race") as j:  # creating the file races too
        try:
            record = j.begin_session(change_id="CHG", operator="racer", reason="race", data={})
        except SessionBusyError as err:
            results.put(("busy", str(err)))  # type: ignore[attr-defined]
        else:
            results.put(("won", record.id))  # type: ignore[attr-defined]


def test_exactly_one_of_racing_processes_begins_a_session(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    ctx = multiprocessing.get_context("spawn")
    racers = 4
    barrier = ctx.Barrier(racers)
    results = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(path), barrier, results)) for _ in range(racers)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(o[0] for o in outcomes) == ["busy"] * (racers - 1) + ["won"]
    with Journal(path) as j:
        assert len(j.sessions()) == 1
        assert j.verify() == 1


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database at all, really" * 100)
    with pytest.raises(FtkitError, match="cannot open journal") as info:
        Journal(bad)
    one_line(info.value)


def test_unique_index_backs_the_single_session_rule(journal: Journal) -> None:
    start(journal)
    with raw(journal.path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO sessions (target, started) VALUES ('sim://lab', 'now')")


# --- intent / outcome --------------------------------------------------------------------


def test_pending_intent_is_what_a_killed_process_left(journal: Journal) -> None:
    record = start(journal)
    done = journal.intent(record.id, "PrepareSplit", "prepare the split")
    journal.outcome(record.id, done, ok=True, message="prepared")
    assert journal.pending_intent(record.id) is None

    half = journal.intent(record.id, "ExecuteSplit", "split", {"mirrors": ["system0"]})
    journal.close()  # the process dies here, before acting or recording an outcome
    with Journal(journal.path) as reopened:
        pending = reopened.pending_intent(record.id)
        assert pending is not None
        assert (pending.id, pending.step, pending.kind) == (half, "ExecuteSplit", "intent")
        assert pending.detail == {"mirrors": ["system0"]}
        reopened.outcome(record.id, half, ok=False, message="split failed", detail={"rc": 3})
        assert reopened.pending_intent(record.id) is None
        outcome = reopened.entries(record.id, kinds=["outcome"])[-1]
        assert outcome.intent_id == half and outcome.step == "ExecuteSplit"
        assert outcome.ok is False and outcome.detail == {"ok": False, "rc": 3}


def test_outcome_moves_the_state_in_the_same_transaction(journal: Journal) -> None:
    record = start(journal)
    intent = journal.intent(record.id, "ExecuteSplit", "split")
    journal.outcome(
        record.id,
        intent,
        ok=False,
        message="module 1 failed",
        upgrade_state="PrepareSplit",
        operational_state="Broken",
        broken_step="ExecuteSplit",
        broken_reason="module 1 BROKEN",
    )
    now = journal.session(record.id)
    assert (now.upgrade_state, now.operational_state, now.broken_step) == (
        "PrepareSplit",
        "Broken",
        "ExecuteSplit",
    )
    kinds = [e.kind for e in journal.entries(record.id)]
    assert kinds[-3:] == ["intent", "outcome", "state"]


def test_an_intent_takes_one_outcome_and_a_refused_write_changes_nothing(
    journal: Journal,
) -> None:
    record = start(journal)
    intent = journal.intent(record.id, "Commit", "commit")
    journal.outcome(record.id, intent, ok=True, message="committed")
    before = (journal.entries(), journal.session(record.id))
    with pytest.raises(TransitionError, match="already has outcome") as info:
        journal.outcome(
            record.id,
            intent,
            ok=True,
            message="again",
            upgrade_state="Idle",
            operational_state="Ready",
        )
    one_line(info.value)
    with pytest.raises(FtkitError, match="not an intent"):
        journal.outcome(record.id, record.id, ok=True, message="not an intent")
    assert (journal.entries(), journal.session(record.id)) == before
    assert journal.verify() == len(before[0])


def test_an_outcome_writes_its_steps_notes_ends_and_releases_in_one_transaction(
    journal: Journal,
) -> None:
    record = start(journal)
    journal.claim("alice")
    intent = journal.intent(record.id, "Finish", "finish")
    notes = [Note("warning", "outage 45.0 s", step="Finish", detail={"outage_s": 45.0}),
             Note("info", "verified", step="Finish", remote=True)]
    heard: list[Entry] = []
    journal.subscribe(heard.append)
    journal.outcome(record.id, intent, ok=True, message="done", upgrade_state="Idle",
                    operational_state="Ready", end="committed", notes=notes, release=True)
    assert [(e.kind, e.message) for e in heard] == [
        ("warning", "outage 45.0 s"), ("info", "verified"), ("outcome", "done"),
        ("state", "Idle / Ready"), ("info", f"session {record.id} ended: committed")]
    assert heard[1].remote and heard[0].detail == {"outage_s": 45.0}
    assert journal.lease() is None and journal.session(record.id).outcome == "committed"
    assert journal.verify() == len(journal.entries())


def test_an_outcome_another_connection_recorded_is_refused_by_name(journal: Journal) -> None:
    """The second outcome is refused with the first one's id whoever wrote that one, and
    this object's next outcome of its own intent still goes through."""
    record = start(journal)
    intent = journal.intent(record.id, "Commit", "commit")
    with Journal(journal.path) as other:
        first = other.outcome(record.id, intent, ok=True, message="committed elsewhere")
    before = (journal.entries(), journal.session(record.id))
    with pytest.raises(TransitionError, match=f"intent {intent} \\(Commit\\) already has "
                       f"outcome {first}") as info:
        journal.outcome(record.id, intent, ok=True, message="again", upgrade_state="Idle",
                        notes=[Note("info", "seen twice")])
    one_line(info.value)
    assert (journal.entries(), journal.session(record.id)) == before
    again = journal.intent(record.id, "Commit", "commit again")
    journal.outcome(record.id, again, ok=True, message="committed")
    with pytest.raises(TransitionError, match=f"intent {again} \\(Commit\\) already has"):
        journal.outcome(record.id, again, ok=True, message="twice")
    assert journal.verify() == len(before[0]) + 2


def test_a_refused_outcome_writes_none_of_its_notes(journal: Journal) -> None:
    record = start(journal)
    intent = journal.intent(record.id, "Commit", "commit")
    journal.outcome(record.id, intent, ok=True, message="committed")
    before = journal.entries()
    with pytest.raises(TransitionError, match="already has outcome"):
        journal.outcome(record.id, intent, ok=True, message="again",
                        notes=[Note("info", "seen twice")])
    with pytest.raises(FtkitError, match="does not write 'intent' entries"):
        journal.outcome(record.id, intent, ok=True, message="again",
                        notes=[Note("intent", "not a note")])
    assert journal.entries() == before


def test_a_progress_note_unsynced_is_chained_and_heard_like_any_entry(journal: Journal) -> None:
    record = start(journal)
    heard: list[Entry] = []
    journal.subscribe(heard.append)
    first = journal.log(record.id, "info", "installing OrderDB 12.5", step="Install",
                        remote=True, sync=False)
    second = journal.log(record.id, "info", "verified", step="Install")
    assert [e.id for e in heard] == [first, second]
    assert heard[1].prev_hash == heard[0].hash
    assert journal.verify() == len(journal.entries())


def test_sync_commits_only_when_an_entry_has_not_reached_the_disk(journal: Journal) -> None:
    record = start(journal)
    statements: list[str] = []
    journal._conn.set_trace_callback(statements.append)  # white box: what SQLite is asked

    def synced_writes() -> int:
        statements.clear()
        journal.sync()
        return statements.count("BEGIN IMMEDIATE")

    assert synced_writes() == 0  # everything so far waited for the disk
    journal.claim("alice")
    journal.release()
    assert synced_writes() == 0  # the lease alone needs no sync
    journal.log(record.id, "info", "installing", sync=False)
    assert synced_writes() == 1
    assert synced_writes() == 0
    journal.log(record.id, "info", "installing", sync=False)
    journal.log(record.id, "info", "verified")  # a synced commit carries the one before
    assert synced_writes() == 0
    assert journal.verify() == len(journal.entries())


def test_a_sessions_entries_are_read_again_only_after_another_connection_wrote(
    journal: Journal,
) -> None:
    record = start(journal)
    assert [e.kind for e in journal.entries(record.id)] == ["info"]
    statements: list[str] = []
    journal._conn.set_trace_callback(statements.append)  # white box: what SQLite is asked
    journal.log(record.id, "warning", "mine")
    statements.clear()
    assert [e.message for e in journal.entries(record.id, kinds=["warning"])] == ["mine"]
    assert not [s for s in statements if "FROM entries" in s], statements
    with Journal(journal.path) as other:
        other.log(record.id, "warning", "theirs")
    assert [e.message for e in journal.entries(record.id, kinds="warning")] == ["mine",
                                                                                  "theirs"]
    assert [s for s in statements if "FROM entries" in s]
    assert journal.entries(record.id) == journal.entries()


def test_check_reads_only_what_other_connections_added(journal: Journal) -> None:
    """check() after this object's own appends costs no read of the entries; an entry
    another connection edits or adds meanwhile is still verified (and an edit found)."""
    record = start(journal)
    journal.verify()
    statements: list[str] = []
    journal._conn.set_trace_callback(statements.append)  # white box: what SQLite is asked
    journal.log(record.id, "info", "one")
    statements.clear()
    journal.check()
    assert not [s for s in statements if "FROM entries" in s], statements
    with Journal(journal.path) as other:  # another writer: check() reads what it added
        other.log(record.id, "info", "from elsewhere")
    journal.log(record.id, "info", "two")
    statements.clear()
    journal.check()
    assert [s for s in statements if "FROM entries WHERE id >" in s]
    journal.log(record.id, "info", "three")
    tamper(journal.path, "UPDATE entries SET message = 'edited' WHERE message = 'three'")
    journal.log(record.id, "info", "four")
    with pytest.raises(ArchiveError, match="was edited"):
        journal.check()


def test_a_write_reads_back_only_what_another_connection_may_have_changed(
    journal: Journal,
) -> None:
    """After this object's own write, the next continues the chain and returns the
    session's row without reading them back; once another connection committed, both
    are read again: the chain still verifies and the row is the other writer's."""
    record = start(journal)
    statements: list[str] = []
    journal._conn.set_trace_callback(statements.append)  # white box: what SQLite is asked
    journal.log(record.id, "info", "one")
    statements.clear()
    _, intent = journal.start(record.id, step="Install", message="Install", sim_time=1.0,
                              upgrade_state="Split")
    assert not [s for s in statements if "ORDER BY id DESC" in s], statements
    assert len([s for s in statements if s.startswith("INSERT INTO meta")]) == 1, (
        "the head is written once per transaction")
    assert journal.session(record.id).operational_state == "Busy"
    reads = [s for s in statements if s.startswith("SELECT * FROM sessions")]
    assert not reads, statements  # the row as the last write left it: not read back
    with Journal(journal.path) as other:  # another writer moves the row and the chain
        other.set_state(record.id, upgrade_state="Split", operational_state="Broken",
                        broken_step="Install", broken_reason="elsewhere")
    statements.clear()
    assert journal.session(record.id).broken_reason == "elsewhere"
    journal.outcome(record.id, intent, ok=False, message="Install failed",
                    upgrade_state="Split", operational_state="Broken",
                    broken_step="Install", broken_reason="mine")
    assert [s for s in statements if "ORDER BY id DESC" in s], "the chain's end read again"
    assert [s for s in statements if s.startswith("SELECT step, kind")], "the intent read"
    assert journal.session(record.id).broken_reason == "mine"
    assert journal.verify() == len(journal.entries())
    with Journal(journal.path) as fresh:
        assert fresh.session(record.id) == journal.session(record.id)
        assert fresh.entries(record.id) == journal.entries(record.id)


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | _TEXT
                     | st.floats(allow_nan=False, allow_infinity=False),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(_TEXT, inner, max_size=3), max_leaves=8)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(notes=st.lists(st.tuples(
    _TEXT, _TEXT, _JSON, st.booleans(), st.none() | st.floats(allow_nan=False),
    st.booleans()), min_size=1, max_size=4))
def test_any_entry_is_chained_as_it_reads_back(
    tmp_path_factory: pytest.TempPathFactory,
    notes: list[tuple[str, str, object, bool, float | None, bool]],
) -> None:
    """Whatever text, detail and sim time an entry holds (quotes, control characters,
    non-ASCII, an infinite sim time), what the write hands its listeners is what a fresh
    reader of the file reads, and the chain verifies."""
    path = tmp_path_factory.mktemp("any") / "j.db"
    heard: list[Entry] = []
    with Journal(path, target="sim://lab") as journal:
        record = start(journal)
        journal.subscribe(heard.append)
        journal.log_many(None, [Note("info", message, step=step, detail=detail, remote=remote,
                                     sim_time=sim_time) for message, step, detail, remote,
                                sim_time, _in in notes if not _in])
        journal.log_many(record.id, [Note("warning", message, step=step, detail=detail,
                                          remote=remote, sim_time=sim_time)
                                     for message, step, detail, remote, sim_time, _in in notes])
    with Journal(path) as fresh:
        assert fresh.verify() == len(fresh.entries())
        assert fresh.entries()[-len(heard):] == heard


# --- logs, decisions, listeners ----------------------------------------------------------


def test_local_and_remote_logs_kept_apart(journal: Journal) -> None:
    record = start(journal)
    journal.log(record.id, "info", "installing KB5030211", remote=True, step="Split")
    journal.log(record.id, "action", "quiesce exited 0", detail={"rc": 0, "stdout": "ok"})
    journal.log(None, "warning", "readiness: DHCP lease on team0")
    remote = journal.entries(log="remote")
    assert [e.message for e in remote] == ["installing KB5030211"]
    assert remote[0].remote and remote[0].step == "Split"
    assert all(not e.remote for e in journal.entries(log="local"))
    assert journal.entries(kinds=["warning"])[0].session_id is None
    with pytest.raises(FtkitError, match="does not write 'intent'"):
        journal.log(record.id, "intent", "sneaky")


def test_decision_records_who_what_why_when_source_where(tmp_path: Path) -> None:
    moment = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    with Journal(tmp_path / "d.db", clock=lambda: moment) as j:
        record = start(j)
        j.decision(
            record.id,
            name="merge",
            answer="proceed",
            who="alice",
            why="soak clean",
            source="widget",
            where="host-7 / JupyterLab",
            account="alice@hub",
        )
        entry = j.entries(record.id, kinds=["decision"])[0]
    assert entry.detail == {
        "name": "merge",
        "answer": "proceed",
        "who": "alice",
        "why": "soak clean",
        "when": "2025-03-01T02:00:00.000000Z",
        "source": "widget",
        "where": "host-7 / JupyterLab",
        "account": "alice@hub",
    }
    assert entry.ts == "2025-03-01T02:00:00.000000Z"
    assert entry.message == "decision merge: proceed by alice (widget): soak clean"


def test_listeners_hear_committed_appends(
    journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[Entry] = []
    unsubscribe = journal.subscribe(heard.append)
    journal.subscribe(lambda entry: 1 / 0)  # a broken listener is logged, nothing more
    record = start(journal)
    intent = journal.intent(record.id, "Split", "split")
    journal.outcome(
        record.id,
        intent,
        ok=True,
        message="split",
        upgrade_state="Split",
        operational_state="Ready",
    )
    assert [e.kind for e in heard] == ["info", "intent", "outcome", "state"]
    assert heard == journal.entries()
    assert "journal listener" in caplog.text
    unsubscribe()
    journal.log(record.id, "info", "unheard")
    assert len(heard) == 4


def test_to_dataframe(journal: Journal) -> None:
    record = start(journal)
    journal.log(record.id, "info", "hello", sim_time=1.5)
    frame = journal.to_dataframe(record.id)
    assert list(frame["kind"]) == ["info", "info"]
    assert str(frame["ts"].dtype).startswith("datetime64") and frame["ts"].dt.tz is not None
    assert frame["sim_time"].iloc[-1] == 1.5


# --- redaction ---------------------------------------------------------------------------


def test_secrets_never_reach_the_journal(journal: Journal) -> None:
    secret = "hunter2-very-secret"
    register_secret(secret)
    try:
        record = journal.begin_session(
            change_id="CHG-9",
            operator="alice",
            reason=f"pw {secret}",
            data={"remote": {"user": "admin", "password": "p@ss-in-data"}},
        )
        journal.log(record.id, "info", f"logged in with {secret}", detail={"api_key": "k-123456"})
        intent = journal.intent(record.id, "Split", "s", {"token": "tok-abcdef", "note": secret})
        journal.outcome(record.id, intent, ok=True, message=f"ok {secret}")
        journal.decision(
            record.id,
            name="split",
            answer="proceed",
            who="alice",
            why=f"because {secret}",
            source="parameter",
            where="cli",
        )
    finally:
        forget_secrets()
    assert journal.session(record.id).data == {"remote": {"user": "admin", "password": "***"}}
    with raw(journal.path) as conn:
        stored = [
            str(value)
            for table in ("sessions", "entries", "meta")
            for row in conn.execute(f"SELECT * FROM {table}")
            for value in tuple(row)
        ]
    text = "\n".join(stored)
    for leaked in (secret, "p@ss-in-data", "k-123456", "tok-abcdef"):
        assert leaked not in text
    assert "logged in with ***" in text


# --- the hash chain ----------------------------------------------------------------------


def filled(journal: Journal) -> list[Entry]:
    record = start(journal)
    for n in range(4):
        journal.log(record.id, "info", f"message {n}", detail={"n": n}, sim_time=n * 0.1)
    return journal.entries()


def test_chain_links_every_entry(journal: Journal) -> None:
    entries = filled(journal)
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert journal.verify() == len(entries) == 5
    assert journal.head() == entries[-1].hash


def test_entries_cannot_be_updated_or_deleted(journal: Journal) -> None:
    filled(journal)
    with raw(journal.path) as conn:
        for sql in ("UPDATE entries SET message = 'x' WHERE id = 2", "DELETE FROM entries"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql)
    assert journal.verify() == 5


def tamper(path: Path, *statements: str) -> None:
    with raw(path) as conn:
        conn.execute("DROP TRIGGER entries_no_update")
        conn.execute("DROP TRIGGER entries_no_delete")
        for sql in statements:
            conn.execute(sql)
    # a later Journal() re-creates the triggers; the damage stays


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (["UPDATE entries SET message = 'nothing happened' WHERE id = 3"], "entry 3 was edited"),
        (["UPDATE entries SET detail = '{\"n\":9}' WHERE id = 4"], "entry 4 was edited"),
        (["UPDATE entries SET sim_time = 99 WHERE id = 5"], "entry 5 was edited"),
        (["DELETE FROM entries WHERE id = 3"], "entry 4 does not follow entry 2"),
        (["DELETE FROM entries WHERE id = 1"], "entry 2 does not follow the start"),
        (["DELETE FROM entries WHERE id = 5"], "after entry 4 were removed"),
        (
            [
                "UPDATE entries SET id = 100 WHERE id = 2",
                "UPDATE entries SET id = 2 WHERE id = 3",
                "UPDATE entries SET id = 3 WHERE id = 100",
            ],
            "entry 2 does not follow entry 1",
        ),
    ],
    ids=["message", "detail", "sim_time", "removed", "first-removed", "last-removed", "reorder"],
)
def test_verify_names_the_first_tampered_entry(
    journal: Journal, statements: list[str], expected: str
) -> None:
    filled(journal)
    journal.close()
    tamper(journal.path, *statements)
    with Journal(journal.path) as reopened, pytest.raises(ArchiveError) as info:
        reopened.verify()
    assert expected in str(info.value)
    one_line(info.value)


# --- the sessions table under the chain (issue 18) ----------------------------------------


def ended_and_open(journal: Journal) -> tuple[SessionRecord, SessionRecord]:
    """A session that ended (committed) and an unfinished one, Broken at a step."""
    first = start(journal)
    journal.end_session(first.id, outcome="committed")
    second = start(journal)
    journal.set_state(second.id, upgrade_state="Split", operational_state="Broken",
                      broken_step="Install", broken_reason="disk full")
    return journal.session(first.id), journal.session(second.id)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("UPDATE sessions SET operator = 'mallory' WHERE id = 2",
         "session 2's operator is 'mallory' in the sessions table, the hash chain says "
         "'alice'"),
        ("UPDATE sessions SET change_id = 'CHG-99' WHERE id = 2", "session 2's change_id is"),
        ("UPDATE sessions SET outcome = 'aborted' WHERE id = 1",
         "session 1's outcome is 'aborted' in the sessions table, the hash chain says "
         "'committed'"),
        ("UPDATE sessions SET ended = 'x', outcome = 'aborted' WHERE id = 2; "
         "UPDATE sessions SET ended = NULL, outcome = NULL WHERE id = 1",
         "session 1's ended is None"),
        ("UPDATE sessions SET ended = '2025-01-01T00:00:00.000000Z', outcome = 'committed' "
         "WHERE id = 2", "session 2's ended is '2025-01-01T00:00:00.000000Z'"),
        ("UPDATE sessions SET operational_state = 'Ready', broken_step = NULL WHERE id = 2",
         "session 2's operational_state is 'Ready'"),
        ("UPDATE sessions SET data = '{\"account\":\"root\"}' WHERE id = 2",
         "session 2's data (configuration, packages, account) is not what the hash chain "
         "says"),
        ("DELETE FROM sessions WHERE id = 1", "session 1 was removed from the sessions table"),
        ("INSERT INTO sessions (target, change_id, operator, started, ended, outcome) VALUES "
         "('sim://lab', 'CHG-X', 'eve', 'x', 'y', 'committed')",
         "session 3 is not in the hash chain"),
    ],
    ids=["operator", "change-id", "outcome", "reopened", "ended", "unbroken", "data",
         "removed", "added"],
)
def test_an_edited_sessions_table_is_named_by_verify(
    journal: Journal, statement: str, expected: str
) -> None:
    """The sessions table is recomputed from the chain: an edit made with sqlite3 (no
    trigger stops it) is caught, naming the session and the field."""
    ended_and_open(journal)
    assert journal.verify() > 0
    with raw(journal.path) as conn:
        for sql in statement.split("; "):
            conn.execute(sql)
    with pytest.raises(ArchiveError, match=r"the table was edited|hash chain") as info:
        journal.check()  # the check before a step, on the open journal: another writer
    assert expected in str(info.value)
    one_line(info.value)
    with Journal(journal.path) as reopened, pytest.raises(ArchiveError) as again:
        reopened.verify()
    assert str(again.value) == str(info.value)


def old_journal(path: Path) -> None:
    """A journal as ftkit wrote it before sessions were chained (schema 1): a committed
    session whose row no entry carries."""
    from ftkit.journal import _SCHEMA, _entry_hash, _split_sql

    with raw(path) as conn:
        for statement in _split_sql(_SCHEMA):
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema', '1'), ('target', 'sim://old')")
        conn.execute("INSERT INTO sessions (target, change_id, operator, reason, started, "
                     "ended, outcome, upgrade_state) VALUES ('sim://old', 'CHG-1', 'alice', "
                     "'patch', '2024-01-01T00:00:00.000000Z', '2024-01-01T01:00:00.000000Z', "
                     "'committed', 'Idle')")
        fields = {"id": 1, "session_id": 1, "ts": "2024-01-01T01:00:00.000000Z",
                  "sim_time": None, "log": "local", "kind": "info", "step": "",
                  "message": "session 1 ended: committed",
                  "detail": '{"ended":"2024-01-01T01:00:00.000000Z","outcome":"committed"}',
                  "intent_id": None, "prev_hash": GENESIS}
        fields["hash"] = _entry_hash(fields)
        conn.execute("INSERT INTO entries VALUES (:id, :session_id, :ts, :sim_time, :log, "
                     ":kind, :step, :message, :detail, :intent_id, :prev_hash, :hash)", fields)
        conn.execute("INSERT INTO meta VALUES ('head', ?)", (fields["hash"],))


def test_an_old_journal_is_migrated_once_and_then_covered(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_journal(path)
    with Journal(path) as j:
        assert j.verify() == 2  # its entry, and the one that entered its row in the chain
        [migrated] = j.entries(kinds=["info"])[1:]
        assert migrated.session_id == 1 and migrated.detail["migrated"] is True
        assert migrated.message == "session 1 entered in the hash chain as it stands " \
                                   "(journal schema 2)"
        assert j.session(1).operator == "alice" and j.session(1).outcome == "committed"
    with Journal(path) as again:  # once: the schema says it is done
        assert again.verify() == 2
    with raw(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == "2"
        conn.execute("UPDATE sessions SET operator = 'mallory'")
    with Journal(path) as edited, pytest.raises(ArchiveError, match="session 1's operator"):
        edited.verify()


def test_a_journal_newer_than_this_ftkit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Journal(path).close()
    with raw(path) as conn:
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema'")
    with pytest.raises(FtkitError, match="schema 3, newer than this ftkit") as info:
        Journal(path)
    one_line(info.value)


def test_timestamps_come_from_the_injected_clock(tmp_path: Path) -> None:
    ticks = iter(datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=s) for s in range(10))
    with Journal(tmp_path / "c.db", clock=lambda: next(ticks)) as j:
        record = start(j)
        j.log(record.id, "info", "tick")
        assert record.started == "2025-01-01T00:00:00.000000Z"
        assert [e.ts[-10:] for e in j.entries()] == ["01.000000Z", "02.000000Z"]


def test_a_run_commits_one_transaction_per_state_change_synced_before_the_system_acts(
    tmp_path: Path,
) -> None:
    """Each write transaction of a whole upgrade as SQLite sees it: an intent goes with the
    decision that leads to it, an outcome with what its step saw last (an outage, the
    Upgrade side verified). Every intent and custom action's result waits for the disk; an
    outcome that does not is followed at once by a synced intent; progress notes and the
    lease do not wait; the run's last commit does (see ftkit.journal)."""
    from conftest import CONFIG, DECISIONS, PACKAGES

    from ftkit.decisions import ParameterDecisions
    from ftkit.process import open_session
    from ftkit.sim.driver import create_system

    driver = create_system(f"sim:///{tmp_path}/tx.db")
    session = open_session(driver, CONFIG, PACKAGES, change_id="CHG-TX", operator="t",
                           reason="one transaction per state change")
    events: list[tuple[str, str]] = []
    session.journal._conn.set_trace_callback(  # white box: the transactions SQLite runs
        lambda sql: events.append(("sql", sql)))
    session.subscribe(lambda e: events.append((e.kind, e.message)))
    session.run(ParameterDecisions(DECISIONS), soak_minutes=60)
    driver.close()
    txns: list[tuple[bool, list[str], list[tuple[str, str]]]] = []
    synced = True
    for kind, text in events:
        if kind != "sql":
            txns[-1][2].append((kind, text))
            txns[-1][1].append(kind)
        elif text.startswith("PRAGMA synchronous"):
            synced = text.endswith("FULL")
        elif text == "BEGIN IMMEDIATE":
            txns.append((synced, [], []))
    for at, (synced, kinds, written) in enumerate(txns):
        if "intent" in kinds:
            assert synced and kinds in (["info", "intent", "state"], ["intent", "state"],
                                        ["decision", "intent", "state"]), written
        elif "outcome" in kinds:
            where = kinds.index("outcome")
            assert set(kinds[:where]) <= {"info", "warning", "error"}
            assert kinds[where + 1:] in (["state"], ["state", "info"]), written
            assert synced or (txns[at + 1][0] and "intent" in txns[at + 1][1]), written
        elif kinds and "soaked" in written[0][1]:  # synced with the answer's intent
            assert synced or (txns[at + 1][0] and "intent" in txns[at + 1][1]), written
        elif kinds == ["info"] and not synced:  # a progress note
            assert written[0][1].startswith(
                ("installing ", "rebooting the Upgrade side", "event logs backed up"))
        elif kinds:
            assert synced and kinds == ["action"], written
        else:
            assert not synced  # the lease
    assert txns[-1][0] and "outcome" in txns[-1][1]  # Finish: durable before run() returns
    decisions = [k for _s, kinds, _w in txns for k in kinds if k == "decision"]
    assert len(decisions) == len(DECISIONS)
    outages = [kinds for _s, kinds, w in txns for k, m in w if k == "warning" and "outage" in m]
    assert outages and all("outcome" in kinds for kinds in outages)
    assert any("outcome" in kinds and not synced for synced, kinds, _w in txns)


# --- the WAL reserve: a synced commit rewrites blocks instead of growing the file ----------


def _wal_size(journal: Journal) -> int:
    return _wal_size_of(journal.path)


def test_synced_commits_rewrite_the_wal_reserve_instead_of_growing_the_file(
        journal: Journal) -> None:
    record = start(journal)
    journal.log(record.id, "info", "the WAL has frames now: the next write reserves")
    sizes = set()
    for n in range(40):
        journal.log(record.id, "info", f"note {n}", detail={"n": n, "pad": "x" * 500})
        sizes.add(_wal_size(journal))
    assert len(sizes) == 1  # forty synced commits, and the file never grew
    assert sizes.pop() >= store.WAL_RESERVE
    assert journal.verify() == len(journal.entries())


def test_writers_on_one_journal_never_stack_their_reserves(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db", target="sim://lab") as one, \
            Journal(tmp_path / "j.db", target="sim://lab") as two:
        record = start(one)
        for n in range(30):  # each writer finds the other's zeros at the end: one reserve
            (one if n % 2 else two).log(record.id, "info", f"note {n}")
        assert _wal_size(one) < 2 * store.WAL_RESERVE
        assert one.verify() == len(one.entries()) == 31


_KILLED_WRITER = """
import os, sys
from ftkit.journal import Journal
journal = Journal(sys.argv[1], target="sim://lab")
record = journal.begin_session(change_id="CHG-1", operator="alice", reason="patch")
for n in range(25):
    journal.log(record.id, "info", f"note {n}", sync=n % 3 != 0)
os.kill(os.getpid(), 9)  # no close: the WAL and its reserve stay as they are
"""


def test_a_writer_killed_with_zeros_past_its_wal_loses_no_committed_entry(
        tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    done = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path)], check=False)
    assert done.returncode == -9
    assert _wal_size_of(path) >= store.WAL_RESERVE  # the zeros are still there
    with Journal(path, target="sim://lab") as journal:  # SQLite recovers the WAL
        assert [e.message for e in journal.entries(kinds=["info"])][1:] == [
            f"note {n}" for n in range(25)]
        assert journal.verify() == 26
        record = journal.current_session()
        assert record is not None
        journal.log(record.id, "info", "written after the recovery")
        assert journal.verify() == 27
    assert raw(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _wal_size_of(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size


def test_a_writer_reads_back_its_own_write_as_it_left_the_row(journal: Journal,
                                                               tmp_path: Path) -> None:
    """``written`` is the row as this object's last write left it, with no statement run;
    ``session`` reads again once another connection committed."""
    record = start(journal)
    intent = journal.intent(record.id, "PrepareSplit", "checking")
    journal.outcome(record.id, intent, ok=True, message="done", upgrade_state="PrepareSplit",
                    operational_state="Ready")
    statements: list[str] = []
    journal._conn.set_trace_callback(statements.append)  # white box: what SQLite is asked
    left = journal.written(record.id)
    assert statements == []
    assert (left.upgrade_state, left.operational_state) == ("PrepareSplit", "Ready")
    with raw(tmp_path / "j.db") as other:  # the controller's row edited behind its back
        other.execute("UPDATE sessions SET reason = 'edited' WHERE id = ?", (record.id,))
    journal._conn.set_trace_callback(None)
    assert journal.written(record.id).reason == "patch"  # what its write left
    assert journal.session(record.id).reason == "edited"  # what the file holds now


def test_a_negative_zero_sim_time_still_verifies(journal: Journal) -> None:
    """SQLite stores -0.0 as 0: the entry is hashed as it will read back."""
    record = start(journal)
    journal.log(record.id, "info", "at the clock's start", sim_time=-0.0)
    assert journal.verify() == len(journal.entries()) == 2
