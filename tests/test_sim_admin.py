"""The simulator's administration and identity: the public admin API, one identity per
system whatever the target's spelling, side names fixed for the whole session, malformed
targets refused up front, creation atomic under concurrency, resumable parts declared."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ftkit.drivers import connect
from ftkit.errors import FaultError, TargetError
from ftkit.model import ModuleState, Request, SideRole
from ftkit.sim import admin
from ftkit.sim.driver import SimDriver, create_system, system_path
from ftkit.sim.faults import enclosure as enclosure_of
from ftkit.sim.parts import PARTS, AbortPart, CommitPart, Marker, MergePart, todo
from ftkit.sim.twin import SystemExistsError

CRITICAL = ["OrderDB", "WebFront"]
PACKAGE: dict[str, Any] = {
    "name": "OrderDB", "version": "12.5.0", "duration_min": 12.0, "needs_reboot": True,
}
SPAWN = multiprocessing.get_context("spawn")


def merged(driver: SimDriver) -> None:
    driver.split(critical=CRITICAL, upgrade_ip="192.0.2.50")
    driver.install(PACKAGE)
    driver.reboot_upgrade_side()
    driver.merge(critical=CRITICAL)


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and text
    return text


# --- one identity --------------------------------------------------------------------


def test_both_spellings_of_a_system_report_one_system_id(ftkit_dirs: SimpleNamespace) -> None:
    made = create_system("sim://a1")
    by_name = connect("sim://a1")
    by_path = connect(f"sim://{ftkit_dirs.home / 'systems' / 'a1.db'}")
    other = create_system("sim://a2")
    try:
        ident = made.status().system_id
        assert uuid.UUID(ident).version == 4
        assert by_name.status().system_id == by_path.status().system_id == ident
        assert other.status().system_id != ident  # a new system is a new identity
        by_path.wait(60)  # the id survives changes through either spelling
        assert by_name.status().system_id == ident
    finally:
        for driver in (made, by_name, by_path, other):
            driver.close()


def test_a_twin_made_before_system_ids_gets_one_once(sim: SimDriver) -> None:
    path = sim.store.path
    sim.close()
    with closing(sqlite3.connect(path)) as conn, conn:  # as an older ftkit wrote it
        conn.execute("UPDATE twin SET state = json_remove(state, '$.system_id')")
    first = connect(sim.target)
    second = connect(sim.target)
    try:
        ident = first.status().system_id
        assert ident and second.status().system_id == ident
    finally:
        first.close()
        second.close()


# --- side names fixed for the session (SPEC §7) ---------------------------------------


@pytest.mark.parametrize(("side", "enclosure"), [("production", 0), ("upgrade", 1)])
def test_after_merge_a_side_name_hits_the_enclosure_status_calls_by_it(
        sim: SimDriver, side: str, enclosure: int) -> None:
    merged(sim)
    before = sim.status()
    assert before.production == 0 and before.apps_on == 1  # the Upgrade side serves
    roles = {enc: s.role for enc, s in before.sides.items()}
    assert roles == {0: SideRole.PRODUCTION, 1: SideRole.UPGRADE}

    armed = admin.arm_fault(sim.target, "module-fail", point="now", side=side)

    assert armed.enclosure == enclosure
    broken = {m.enclosure for m in armed.state.modules.values()
              if m.state is ModuleState.BROKEN}
    assert broken == {enclosure}
    role = SideRole.PRODUCTION if side == "production" else SideRole.UPGRADE
    assert armed.state.sides[enclosure].role is role  # status agrees with the fault
    # the Production side is spare after the merge: losing it stops nothing
    assert (armed.state.apps_on is None) is (side == "upgrade")


@pytest.mark.parametrize("when", ["duplex", "split", "merged"])
def test_side_names_mean_the_same_enclosure_before_during_and_after_the_split(
        sim: SimDriver, when: str) -> None:
    if when == "split":
        sim.split(critical=CRITICAL, upgrade_ip="192.0.2.50")
    elif when == "merged":
        merged(sim)
    for side, enclosure in (("production", 0), ("upgrade", 1), ("0", 0), ("1", 1)):
        sim.inject("disk-fail", point="commit", side=side)
        [record] = sim.disarm()
        assert enclosure_of(sim.status(), record["side"]) == enclosure


# --- the admin API -------------------------------------------------------------------


def test_create_list_info_remove(ftkit_dirs: SimpleNamespace) -> None:
    made = admin.create("lab1", scenario="mtbf-low", seed=3, time_scale=0.5)
    assert made.target == "sim://lab1" and made.path == ftkit_dirs.home / "systems" / "lab1.db"
    assert made.scenario == "mtbf-low" and made.time_scale == 0.5 and made.state is not None
    with pytest.raises(SystemExistsError, match="already exists") as info:
        admin.create("sim://lab1")
    one_line(info.value)
    admin.create("lab2")
    assert [s.name for s in admin.systems()] == ["lab1", "lab2"]
    assert admin.info("lab1").system_id == made.system_id

    assert admin.remove("lab1") == made.path
    assert not made.path.exists() and [s.name for s in admin.systems()] == ["lab2"]
    with pytest.raises(TargetError, match="no simulated system"):
        admin.remove("lab1")


def test_a_damaged_twin_is_listed_and_removed_only_with_force(
        ftkit_dirs: SimpleNamespace) -> None:
    path = ftkit_dirs.home / "systems" / "c1.db"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")  # what a crashed creator of old left behind
    [row] = admin.systems()
    assert row.state is None and "not an ftkit twin" in row.problem
    with pytest.raises(TargetError, match="--force") as info:
        admin.remove("c1")
    one_line(info.value)
    assert path.exists()  # refused: nothing changed
    assert admin.remove("c1", force=True) == path and not path.exists()
    assert admin.create("c1").state is not None  # and the name can be created again


def test_remove_sets_the_journal_aside_so_a_new_system_of_the_name_starts_clean(
        ftkit_dirs: SimpleNamespace) -> None:
    from conftest import CONFIG, PACKAGES

    from ftkit.home import journal_path
    from ftkit.journal import Journal
    from ftkit.process import open_session

    admin.create("ux2")
    session = open_session("sim://ux2", CONFIG, PACKAGES, change_id="CHG-1", operator="op",
                           reason="monthly patches")
    session.run_request("PrepareSplit")  # an unfinished session 1
    session.close()
    old = Journal.of(session.driver).path
    session.driver.close()
    by_target = journal_path("sim://ux2")  # a journal keyed by the name alone
    by_target.write_bytes(old.read_bytes())

    assert old.parent == ftkit_dirs.home / "systems" / "ux2.ftkit"  # beside the twin
    admin.remove("ux2")
    assert not old.exists() and not by_target.exists()
    for journal in (old, by_target):  # each set aside where it was
        aside = [p.name for p in journal.parent.glob("*.removed-*")
                 if not p.name.endswith(("-wal", "-shm"))]
        assert [name.split(".removed-")[0] for name in aside] == [journal.name]

    admin.create("ux2")
    again = open_session("sim://ux2", CONFIG, PACKAGES, change_id="CHG-2", operator="op")
    try:
        assert again.record is None and not again.resumed  # nothing of session 1
    finally:
        again.close()
        again.driver.close()


def test_arm_clear_and_repair(sim: SimDriver) -> None:
    armed = admin.arm_fault(sim.target, "installer-fail")
    assert (armed.point, armed.side, armed.times) == ("install", "upgrade", 1)
    assert [f["name"] for f in sim.settings().faults] == ["installer-fail"]
    assert [f["name"] for f in admin.clear_faults(sim.target)] == ["installer-fail"]
    assert admin.clear_faults(sim.target) == []
    with pytest.raises(FaultError, match="unknown fault"):
        admin.clear_faults(sim.target, "no-such")
    with pytest.raises(FaultError, match="unknown fault"):
        admin.arm_fault(sim.target, "no-such")
    assert sim.settings().faults == []  # refused: nothing armed

    version = sim.store.version()
    nothing = admin.repair(sim.target)
    assert nothing.repaired == () and nothing.message.startswith("nothing to repair")
    assert admin.repair(sim.target, "1").message == "nothing to repair: module 1 is ONLINE"
    assert sim.store.version() == version  # nothing to repair changes nothing
    with pytest.raises(FaultError, match="no module or disk named 'x9'") as info:
        admin.repair(sim.target, "x9")
    one_line(info.value)

    admin.arm_fault(sim.target, "module-fail", side="1")
    done = admin.repair(sim.target)
    assert done.repaired == ("module 1",) and done.message == "repaired module 1"
    assert done.state.duplex


def test_ensure_creates_once_then_opens(ftkit_dirs: SimpleNamespace) -> None:
    first, created = admin.ensure("fresh", time_scale=0.25)
    second, again = admin.ensure("sim://fresh")
    try:
        assert (created, again) == (True, False)
        assert first.status().system_id == second.status().system_id
        assert second.settings().time_scale == 0.25
    finally:
        first.close()
        second.close()


# --- malformed targets ---------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "sim://../../etc/x", "sim://a/b", "sim://a\x00b", "sim://", "sim://.hidden",
    "sim://-dash", "sim://" + "a" * 65, "sim://x\n", "sim://bad name",
    "sim:///abs/twin.txt", "sim:///abs/../etc/x.db", "sim:///abs/.x.db", "sim:///abs/a b.db",
])
def test_malformed_sim_targets_are_refused_in_one_line_naming_the_rule(
        ftkit_dirs: SimpleNamespace, target: str) -> None:
    for attempt in (lambda: connect(target), lambda: create_system(target),
                    lambda: admin.ensure(target), lambda: admin.remove(target, force=True)):
        with pytest.raises(TargetError) as info:
            attempt()
        text = one_line(info.value)
        assert "malformed" in text
        assert "[A-Za-z0-9]" in text or "SCHEME://NAME" in text  # the rule is named
    assert not ftkit_dirs.home.exists() or not list(ftkit_dirs.home.rglob("*"))


def test_well_formed_names_and_paths_are_accepted(tmp_path: Path) -> None:
    assert system_path("a").name == "a.db"
    assert system_path("A1.b_c-" + "d" * 57).name.endswith(".db")
    assert system_path(f"{tmp_path}/x.db") == tmp_path / "x.db"


# --- atomic creation -----------------------------------------------------------------

ROUNDS = 4
WORKERS = 6


def _race(home: str, rounds: int, barrier: Any, out: Any, worker: int) -> None:
    """Each round, create (even workers) or ensure (odd) one new name at the same moment
    as the others; report what happened (runs in a child process)."""
    os.environ["FTKIT_HOME"] = home
    for r in range(rounds):
        name = f"race{r}"
        barrier.wait(60)
        try:
            if worker % 2 == 0:
                info = admin.create(name)
                out.put((r, worker, "created", info.system_id))
            else:
                driver, created = admin.ensure(name)
                try:
                    ident = driver.status().system_id
                    driver.wait(1)  # the twin works, not merely opens
                finally:
                    driver.close()
                out.put((r, worker, "created" if created else "opened", ident))
        except Exception as err:
            out.put((r, worker, "error", f"{type(err).__name__}: {err}"))


def test_concurrent_creators_make_one_whole_twin(ftkit_dirs: SimpleNamespace) -> None:
    barrier = SPAWN.Barrier(WORKERS)
    out = SPAWN.Queue()
    procs = [SPAWN.Process(target=_race, args=(str(ftkit_dirs.home), ROUNDS, barrier, out, w))
             for w in range(WORKERS)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=180) for _ in range(ROUNDS * WORKERS)]
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    for r in range(ROUNDS):
        rows = [row for row in results if row[0] == r]
        created = [row for row in rows if row[2] == "created"]
        assert len(created) == 1, rows  # exactly one creation
        ident = created[0][3]
        for _r, worker, what, detail in rows:
            if what == "error":  # only a losing `create`, in one line
                assert worker % 2 == 0 and detail.startswith("SystemExistsError: "), detail
                assert "already exists" in detail and "\n" not in detail
            else:
                assert detail == ident, rows  # everyone opened the winner's twin
        assert admin.info(f"race{r}").system_id == ident
    left = sorted(p.name for p in (ftkit_dirs.home / "systems").iterdir())
    assert left == [f"race{r}.db" for r in range(ROUNDS)]  # no stray temporary files


# --- the declared parts --------------------------------------------------------------


def test_each_multi_part_request_declares_its_parts_in_order() -> None:
    assert {Request.EXECUTE_MERGE: MergePart, Request.COMMIT: CommitPart,
                     Request.ABORT: AbortPart} == PARTS
    values = [p.value for parts in PARTS.values() for p in parts]
    assert len(values) == len(set(values))  # no part can be mistaken for another's
    assert todo(None, Request.ABORT) == list(AbortPart)
    assert Marker.after(MergePart.START_APPLICATIONS) == Marker(
        Request.EXECUTE_MERGE, MergePart.SHUT_DOWN_ORIGINAL_SIDE)
    assert Marker.after(MergePart.SHUT_DOWN_ORIGINAL_SIDE) is None
    assert Marker.after(CommitPart.RESYNC) == Marker(Request.COMMIT, CommitPart.RESYNC)
    marker = Marker(Request.ABORT, AbortPart.REJOIN)
    assert todo(marker, Request.ABORT) == [AbortPart.REJOIN, AbortPart.RESYNC]
    assert todo(marker, Request.COMMIT) == list(CommitPart)  # another's: superseded
    with pytest.raises(ValueError):
        Marker(Request.COMMIT, MergePart.HAND_OVER)


@pytest.mark.parametrize("part", list(MergePart)[1:])
def test_a_merge_killed_before_a_part_resumes_there(sim: SimDriver, part: MergePart) -> None:
    """The marker alone says where a merge stands: set it as a killed process would have
    left it, and the next call does the remaining parts only."""
    sim.split(critical=CRITICAL, upgrade_ip="192.0.2.50")
    sim.install(PACKAGE)
    sim.reboot_upgrade_side()
    done = list(MergePart)[: list(MergePart).index(part)]
    with sim.store.transaction() as txn:  # what the parts before PART left
        txn.apps_stopped()
        txn.sim.marker = Marker(Request.EXECUTE_MERGE, part)
        if MergePart.START_APPLICATIONS in done:
            txn.state.merged = True
            txn.apps_started(1)
    assert sim.status().unfinished is Request.EXECUTE_MERGE
    sim.merge(critical=CRITICAL)
    st = sim.status()
    assert st.merged and st.apps_on == 1 and st.unfinished is None
    assert sim.settings().marker is None
    stopped = [m for _t, _s, m in sim.events() if "applications stopped" in m]
    assert stopped == []  # the part done before the kill was not done again


def test_concurrent_sim_create_commands_give_one_system_and_one_line_refusals(
        ftkit_dirs: SimpleNamespace) -> None:
    """Issue 8 #5 as an operator met it: four ``ftkit sim create x`` at once."""
    env = {**os.environ, "FTKIT_HOME": str(ftkit_dirs.home)}
    for r in range(3):
        name = f"cli{r}"
        procs = [subprocess.Popen([sys.executable, "-m", "ftkit", "sim", "create", name],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
                 for _ in range(4)]
        ends = [(*p.communicate(timeout=120), p.returncode) for p in procs]
        assert sorted(code for _out, _err, code in ends) == [0, 2, 2, 2], ends
        for _out, err, code in ends:
            if code:
                assert err.count("\n") == 1 and "already exists" in err, err
    left = sorted(p.name for p in (ftkit_dirs.home / "systems").iterdir())
    assert left == ["cli0.db", "cli1.db", "cli2.db"]
