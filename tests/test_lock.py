"""One controller per system, whoever asks: the controller lock lives with the system (an OS
lock beside its state, found by its driver), not with the controller's ``$FTKIT_HOME``,
pid namespace or host name. Real processes: the lock is the kernel's, per process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import CONFIG, PACKAGES, REPO

from ftkit import drivers, home
from ftkit.archive import read_ledger
from ftkit.cli import main
from ftkit.errors import SessionBusyError
from ftkit.journal import LEASE_EXPIRY_S, Journal
from ftkit.sim import admin

ALL = "{split: proceed, merge: proceed, commit: commit}"

HOLD = """\
import sys
import ftkit.journal
from ftkit.journal import Journal
ftkit.journal.LEASE_RENEW_S = float(sys.argv[3])
journal = Journal.open(sys.argv[1])
journal.claim(sys.argv[2])
print("held", flush=True)
sys.stdin.readline()  # a long step: the main thread does nothing meanwhile
journal.close()
print("released", flush=True)
"""

CLAIM = """\
import sys
from ftkit.errors import SessionBusyError
from ftkit.journal import Journal
journal = Journal.open(sys.argv[1])
try:
    journal.claim(sys.argv[2])
except SessionBusyError as err:
    print("refused:", err.message, flush=True)
else:
    print("claimed", flush=True)
    journal.close()
"""

UPGRADE = """\
import sys
from ftkit.decisions import ParameterDecisions
from ftkit.process import open_session
session = open_session(sys.argv[1], sys.argv[2], sys.argv[3:], change_id="CHG-A",
                       operator="alice", reason="two homes")
session.advance(request="PrepareSplit")
print("split", flush=True)
sys.stdin.readline()
print(session.run(ParameterDecisions({"split": "proceed", "merge": "proceed",
                                      "commit": "commit"})), flush=True)
session.close()
"""


def python(script: str, *args: str, home_dir: Path | None = None,
           prefix: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if home_dir is not None:
        env["FTKIT_HOME"] = str(home_dir)
    return subprocess.Popen([*prefix, sys.executable, "-c", script, *args], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A process that claims sim://held, says "held" and keeps it until told (a line)."""
    admin.create("held")
    proc = python(HOLD, "sim://held", "the other run", "30")
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("held")
        yield proc
    finally:
        proc.kill()
        proc.communicate()


def test_the_journal_and_the_lock_live_beside_the_twin_whichever_home_asks(
        tmp_path: Path, ftkit_dirs: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    twin = tmp_path / "site" / "path.db"
    target = f"sim://{twin}"
    admin.create(target)
    found = []
    for name in ("home-a", "home-b"):
        monkeypatch.setenv("FTKIT_HOME", str(tmp_path / name))
        with Journal.open(target) as journal:
            found.append((journal.path, journal.lock_path))
        assert not (tmp_path / name).exists()  # nothing of this system in either home
    assert found[0] == found[1]
    assert found[0][0].parent == found[0][1].parent == tmp_path / "site" / "path.ftkit"
    assert [s.name for s in admin.systems()] == []  # sim list sees no twin in it


def test_two_homes_on_one_system_make_one_controller_and_one_outage(
        tmp_path: Path, ftkit_dirs: SimpleNamespace) -> None:
    twin = tmp_path / "site" / "path.db"
    target = f"sim://{twin}"
    admin.create(target)
    home_a, home_b = tmp_path / "home-a", tmp_path / "home-b"
    first = python(UPGRADE, target, str(CONFIG), *map(str, PACKAGES), home_dir=home_a)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "split"
        second = subprocess.run(
            [sys.executable, "-m", "ftkit", "run", "active-upgrade", "-p", "mode", "auto",
             "-p", "system", target, "-p", "decisions", ALL, "-p", "change_id", "CHG-B",
             "-p", "operator", "bob", "--reports", str(tmp_path / "reports-b")],
            env=dict(os.environ, FTKIT_HOME=str(home_b)), capture_output=True, text=True,
            timeout=120, check=False)
        assert second.returncode == 2, second.stderr
        assert "is driven by alice (CHG-A)" in second.stderr and second.stdout == ""
        out, _ = first.communicate("go\n", timeout=120)
        assert first.returncode == 0 and out.strip() == "committed"
    finally:
        first.kill()
        first.communicate()
    assert not (tmp_path / "reports-b").exists() or not read_ledger(tmp_path / "reports-b")
    status = subprocess.run([sys.executable, "-m", "ftkit", "status", target, "--json"],
                            env=dict(os.environ, FTKIT_HOME=str(home_b)),
                            capture_output=True, text=True, timeout=60, check=True)
    shown = json.loads(status.stdout)
    assert len(shown["outages"]) == 1 and shown["session"]["outcome"] == "committed"
    journals = list((tmp_path / "site" / "path.ftkit").glob("journal-*.db"))
    assert len(journals) == 1 and not (home_a / "journals").exists() \
        and not (home_b / "journals").exists()
    with Journal(journals[0]) as journal:
        assert len(journal.sessions()) == 1


def _unshare() -> list[str]:
    """The unshare command that starts a process in a new pid namespace here, else skip."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare command")
    for command in (["unshare", "--pid", "--fork"],
                    ["unshare", "--user", "--map-root-user", "--pid", "--fork"]):
        probe = subprocess.run([*command, "true"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return command
    pytest.skip(f"unshare is not permitted here: {probe.stderr.strip()}")


@pytest.mark.parametrize("inside", ["claimer", "holder"])
def test_a_controller_in_another_pid_namespace_is_refused_while_the_holder_lives(
        inside: str, tmp_path: Path) -> None:
    unshare = tuple(_unshare())
    admin.create("ns")
    hold = python(HOLD, "sim://ns", "the other run", "30",
                  prefix=unshare if inside == "holder" else ())
    try:
        assert hold.stdout is not None and hold.stdout.readline().startswith("held")
        claim = python(CLAIM, "sim://ns", "a second run",
                       prefix=unshare if inside == "claimer" else ())
        out, _ = claim.communicate(timeout=60)
        assert out.startswith("refused:") and "is driven by the other run" in out, out
    finally:
        hold.kill()
        hold.communicate()
    with Journal.open("sim://ns") as journal:  # once the holder is gone, it is taken over
        assert journal.claim("a third run") is True


def test_a_killed_holders_lock_is_taken_over_and_the_takeover_journaled(
        holder: subprocess.Popen[str]) -> None:
    with Journal.open("sim://held") as journal:
        with pytest.raises(SessionBusyError, match="is driven by the other run"):
            journal.claim("a second run")
        assert journal.busy() is not None and journal.lease()["pid"] == holder.pid
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert journal.busy() is None  # the kernel let the lock go with the process
        assert journal.claim("a second run") is True
        taken = [e for e in journal.entries(kinds=["warning"])
                 if isinstance(e.detail, dict) and e.detail.get("lease") == "takeover"]
        assert len(taken) == 1 and taken[0].detail["from"]["pid"] == holder.pid
        assert "taken over from the other run" in taken[0].message
        assert journal.lease()["pid"] == os.getpid()


def test_the_heartbeat_is_renewed_while_a_long_step_runs(tmp_path: Path) -> None:
    admin.create("long")
    proc = python(HOLD, "sim://long", "a long step", "0.05")
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("held")
        with Journal.open("sim://long") as journal:
            first = journal.lease()
            assert first is not None and first["pid"] == proc.pid
            beats = {first["heartbeat"]}
            for _ in range(400):  # the step's main thread sleeps; the heartbeat goes on
                beats.add(journal.lease()["heartbeat"])
                if len(beats) >= 3:
                    break
                time.sleep(0.05)
            assert len(beats) >= 3, "the heartbeat was not renewed"
            assert journal.lease()["pid"] == proc.pid and journal.busy() is not None
        out, _ = proc.communicate("done\n", timeout=60)
        assert out.strip() == "released"
    finally:
        proc.kill()
        proc.communicate()
    with Journal.open("sim://long") as journal:
        assert journal.lease() is None and journal.busy() is None


def test_across_hosts_a_fresh_heartbeat_holds_and_a_stale_one_is_taken_over() -> None:
    """Where the OS lock may not reach (a network file system), the lease row's heartbeat
    decides: another host's row younger than LEASE_EXPIRY_S refuses, an older one not."""
    admin.create("nfs")
    with Journal.open("sim://nfs") as journal:
        with sqlite3.connect(journal.path) as raw:
            raw.execute("INSERT INTO lease VALUES (1, 'elsewhere', 4242, '1', 'T0', ?, "
                        "'a run on another host')", (time.time(),))
        assert "pid 4242 on elsewhere" in str(journal.busy())
        with pytest.raises(SessionBusyError, match="a run on another host"):
            journal.claim("here")
        assert journal.lease()["host"] == "elsewhere"  # refused: nothing changed
        with sqlite3.connect(journal.path) as raw:
            raw.execute("UPDATE lease SET heartbeat = ?",
                        (time.time() - LEASE_EXPIRY_S - 1,))
        assert journal.busy() is None and journal.claim("here") is True
        assert "taken over from a run on another host" in journal.entries()[-1].message


def test_busy_tests_the_lock_without_keeping_or_creating_it() -> None:
    admin.create("quiet")
    with Journal.open("sim://quiet") as journal:
        assert journal.busy() is None and not journal.lock_path.exists()
        journal.claim("me")
        assert journal.busy() is None  # held by this process: not busy for it
        journal.release()
        assert journal.lease() is None
    probe = python(CLAIM, "sim://quiet", "another run")  # free again for another process
    assert probe.communicate(timeout=60)[0].strip() == "claimed"


class _Plain:
    """A third-party driver written before drivers named a state folder."""

    def __init__(self, inner: object) -> None:
        self._inner = inner
        self.target = "plain://p1"

    def __getattr__(self, name: str) -> object:
        if name == "state_dir":
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_a_driver_that_names_no_state_folder_keeps_journal_and_lock_in_the_home(
        ftkit_dirs: SimpleNamespace) -> None:
    admin.create("p1")
    plain = _Plain(admin.open_system("p1"))
    assert drivers.state_dir_of(plain) is None  # type: ignore[arg-type]
    with Journal.of(plain) as journal:
        assert journal.path.parent == ftkit_dirs.home / "journals"
        assert journal.lock_path == journal.path.with_suffix(".lock")
        assert journal.claim("me") is True and journal.lock_path.exists()


def test_a_journal_an_older_ftkit_kept_in_the_home_is_moved_beside_the_system(
        ftkit_dirs: SimpleNamespace) -> None:
    driver = admin.open_system(admin.create("old").target)
    legacy = home.journal_path(f"system:{driver.status().system_id}")
    with Journal(legacy, target="sim://old") as journal:
        record = journal.begin_session(change_id="CHG-OLD", operator="alice", reason="r")
    with Journal.of(driver) as journal:
        assert journal.path.parent == ftkit_dirs.home / "systems" / "old.ftkit"
        assert journal.current_session() == record and journal.verify() > 0
    assert not legacy.exists()
    assert [p.name.split(".moved-")[0] for p in legacy.parent.glob("*.moved-*")] == [
        legacy.name]
    driver.close()


def test_four_ftkit_runs_of_one_new_system_make_one_session_and_one_outage(
        ftkit_dirs: SimpleNamespace, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    argv = [sys.executable, "-m", "ftkit", "run", "runbooks/active-upgrade.ipynb",
            "-p", "mode", "auto", "-p", "system", "sim://smoke", "-p", "decisions", ALL,
            "-p", "change_id", "CHG-SMOKE", "-p", "operator", "smoke", "-p", "reason",
            "smoke", "--reports", str(ftkit_dirs.reports)]
    runs = [subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(4)]
    done = [(run.communicate(timeout=180), run.returncode) for run in runs]
    assert sorted(code for _, code in done)[0] == 0, done
    assert {code for _, code in done} <= {0, 2}, done
    for (out, err), code in done:
        if code == 2:  # refused while the winner drove it, or before it was archived
            assert out == "" and len(err.strip().splitlines()) == 1, err
            assert "sim://smoke is driven by" in err or "ran already" in err, err
        elif "ran already" in out:  # after the winner was archived: it says where
            assert "already archived as ledger entry seq 1" in out, out
    monkeypatch.chdir(REPO)
    assert main(argv[3:]) == 0  # a fifth, after them: nothing run, the entry named
    assert "CHG-SMOKE ran already" in capsys.readouterr().out
    ledger = read_ledger(ftkit_dirs.reports)
    assert [e.outcome for e in ledger] == ["committed"]
    assert main(["status", "sim://smoke", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["outages"]) == 1
    with Journal.open("sim://smoke") as journal:
        assert len(journal.sessions()) == 1
        # the kernel was handed ftkit run's lock: no takeover, no refusal inside the run
        assert not [e for e in journal.entries(kinds=["warning"]) if "lease" in e.message]


SIDE_BY_SIDE = """\
import json, sys, threading
from pathlib import Path
from ftkit.runner import controlling, execute
runbook, folder = Path(sys.argv[1]), Path(sys.argv[2])
ran, ready = {}, threading.Barrier(2)
def upgrade(name):
    params = {"system": f"sim://{name}", "mode": "auto", "operator": "alice",
              "decisions": {"split": "proceed", "merge": "proceed", "commit": "commit"},
              "change_id": f"CHG-{name}", "soak_minutes": 1}
    with controlling(runbook, params):
        ready.wait()  # both hold their lock before either kernel starts
        ran[name] = execute(runbook, params, folder / f"{name}.ipynb").error
threads = [threading.Thread(target=upgrade, args=(n,)) for n in ("side1", "side2")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(ran))
"""


def test_threads_of_one_process_each_hand_their_own_lock_to_their_own_kernel(
        tmp_path: Path) -> None:
    """A Dask worker with several threads runs systems side by side, each thread holding its
    system's lock: each kernel is started with its own thread's hand-off address (not the
    one another thread last wrote into the process's environment), so both commit. A
    process of its own, as a worker is (no test runner importing beside the threads)."""
    proc = subprocess.run([sys.executable, "-c", SIDE_BY_SIDE,
                           str(REPO / "runbooks" / "active-upgrade.ipynb"), str(tmp_path)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == {"side1": None, "side2": None}
    for name in ("side1", "side2"):
        with Journal.open(f"sim://{name}") as journal:
            assert [s.outcome for s in journal.sessions()] == ["committed"]
