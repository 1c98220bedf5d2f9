"""The ``ftkit`` command: every subcommand through ``main([...])``, exit codes, one-line
errors that change nothing, and (in subprocesses) ``python -m ftkit`` and start-up imports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pytest
from conftest import CONFIG, PACKAGES
from nbformat.v4 import new_code_cell, new_notebook

from ftkit.cli import main
from ftkit.drivers import connect
from ftkit.sim.driver import SimDriver, system_path
from ftkit.sim.faults import FAULTS
from ftkit.sim.twin import TwinStore, scenario_names
from ftkit.status import validate

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
HEAVY = ("pandas", "nbformat", "nbconvert", "papermill", "IPython", "ipywidgets")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ftkit: ") and "Traceback" not in err
    return lines[0]


def twin_version(name: str) -> int:
    store = TwinStore(system_path(name))
    try:
        return store.version()
    finally:
        store.close()


@pytest.fixture
def lab(capsys: pytest.CaptureFixture[str]) -> str:
    code, out, _ = run(capsys, "sim", "create", "lab")
    assert code == 0 and "created sim://lab" in out
    return "lab"


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


# --- argparse ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [[], ["sim"], ["status"], ["sim", "create"], ["reports"], ["nope"], ["sim", "create", "x",
     "--seed", "many"], ["check", "lab"], ["run", "rb", "-p", "only-name"]],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _out, err = run(capsys, *argv)
    assert code == 2
    assert "usage: ftkit" in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("ftkit: ")


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("sim", "status", "check", "run", "reports"):
        assert command in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("ftkit ")


# --- ftkit sim ----------------------------------------------------------------------------


def test_sim_create_list_remove(capsys: pytest.CaptureFixture[str],
                                ftkit_dirs: SimpleNamespace) -> None:
    assert run(capsys, "sim", "list")[1].startswith("no simulated systems")
    code, out, _ = run(capsys, "sim", "create", "a", "--scenario", "mtbf-low", "--seed", "7",
                       "--time-scale", "0")
    assert code == 0 and "created sim://a (mtbf-low, seed 7" in out
    assert (ftkit_dirs.home / "systems" / "a.db").is_file()
    assert run(capsys, "sim", "create", "sim://b")[0] == 0  # a sim:// target works too
    code, out, _ = run(capsys, "sim", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["name", "scenario", "sim", "time", "state"]
    assert lines[2].split()[:2] == ["a", "mtbf-low"] and "duplex" in lines[2]
    assert lines[3].split()[:2] == ["b", "demo"]
    code, out, _ = run(capsys, "sim", "list", "--json")
    assert [(r["name"], r["scenario"]) for r in json.loads(out)] == [("a", "mtbf-low"),
                                                                    ("b", "demo")]
    code, out, _ = run(capsys, "sim", "remove", "a")
    assert code == 0 and "removed sim://a" in out
    assert not (ftkit_dirs.home / "systems" / "a.db").exists()
    assert [r["name"] for r in json.loads(run(capsys, "sim", "list", "--json")[1])] == ["b"]


def test_sim_create_absolute_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "twins" / "x.db"
    assert run(capsys, "sim", "create", f"sim://{path}")[0] == 0
    code, out, _ = run(capsys, "status", f"sim://{path}", "--json")
    assert code == 0 and json.loads(out)["system"] == f"sim://{path}"
    assert run(capsys, "sim", "remove", f"sim://{path}")[0] == 0
    assert not path.exists()


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["sim", "create", "x", "--scenario", "nope"], "unknown scenario 'nope'"),
        (["sim", "create", "x", "--time-scale", "-1"], "--time-scale -1 is not between 0 and"),
        (["sim", "create", "x", "--time-scale", "nan"], "--time-scale must be a finite number"),
        (["sim", "create", "x", "--time-scale", "inf"], "--time-scale must be a finite number"),
        (["sim", "create", "bad/name"], "malformed simulator name"),
        (["sim", "create", "http://x"], "not a simulated system"),
        (["sim", "remove", "ghost"], "no simulated system"),
        (["sim", "repair", "ghost"], "no simulated system"),
    ],
)
def test_sim_bad_input_exits_2_and_creates_nothing(capsys: pytest.CaptureFixture[str],
                                                   ftkit_dirs: SimpleNamespace,
                                                   argv: list[str], match: str) -> None:
    code, _out, err = run(capsys, *argv)
    assert code == 2
    assert match in one_line_error(err)
    assert not (ftkit_dirs.home / "systems").exists() or not any(
        (ftkit_dirs.home / "systems").iterdir())


def test_sim_create_refuses_to_overwrite(capsys: pytest.CaptureFixture[str], lab: str) -> None:
    before = twin_version(lab)
    code, _, err = run(capsys, "sim", "create", lab, "--scenario", "module-broken")
    assert code == 2 and "already exists" in one_line_error(err)
    assert twin_version(lab) == before


def test_sim_scenarios_and_faults(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sim", "scenarios")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[2:]] == scenario_names()
    code, out, _ = run(capsys, "sim", "faults")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines()[2:] if line and line[0] != " "]
    assert set(FAULTS) <= set(listed)


def test_sim_fault_arms_and_clear_disarms(capsys: pytest.CaptureFixture[str], lab: str) -> None:
    code, out, _ = run(capsys, "sim", "fault", lab, "module-fail", "--at", "merge", "--side",
                       "production", "--times", "2")
    assert code == 0 and "armed module-fail at merge on the production side" in out
    assert "fires 2 times" in out
    code, out, _ = run(capsys, "sim", "fault", f"sim://{lab}", "installer-fail")
    assert code == 0
    status = json.loads(run(capsys, "status", lab, "--json")[1])
    assert [(f["name"], f["point"], f["times"]) for f in status["sim"]["armed_faults"]] == [
        ("module-fail", "merge", 2), ("installer-fail", "install", 1)]
    code, out, _ = run(capsys, "sim", "clear", lab, "installer-fail")
    assert code == 0 and "disarmed 1 fault(s)" in out
    code, out, _ = run(capsys, "sim", "clear", lab)
    assert code == 0 and "module-fail at merge" in out
    assert json.loads(run(capsys, "status", lab, "--json")[1])["sim"]["armed_faults"] == []


def test_sim_fault_now_happens_and_repair_undoes_it(capsys: pytest.CaptureFixture[str],
                                                   lab: str) -> None:
    code, out, _ = run(capsys, "sim", "fault", lab, "module-fail", "--side", "1")
    assert code == 0 and "module 1 BROKEN" in out
    assert "module-fail happened on enclosure 1 (the Upgrade side) of sim://lab" in out
    data = json.loads(run(capsys, "status", lab, "--json")[1])
    modules = {m["id"]: m for m in data["modules"]}
    assert modules[1]["state"] == "BROKEN" and not data["duplex"]
    code, out, _ = run(capsys, "sim", "repair", lab, "1")
    assert code == 0 and "repaired module 1" in out
    data = json.loads(run(capsys, "status", lab, "--json")[1])
    assert data["duplex"] and data["transactions"]["lost"] == 0 and data["outages"] == []
    before = twin_version(lab)
    code, out, err = run(capsys, "sim", "repair", lab)  # nothing left: success, no change
    assert (code, err) == (0, "")
    assert out == ("nothing to repair on sim://lab: every module is ONLINE and every disk "
                   "member healthy\n")
    code, out, _ = run(capsys, "sim", "repair", lab, "data0")
    assert code == 0 and out == ("nothing to repair on sim://lab: disk data0 is healthy on "
                                 "both enclosures\n")
    assert twin_version(lab) == before
    code, _, err = run(capsys, "sim", "repair", lab, "nope")
    assert code == 2 and "no module or disk named 'nope' on sim://lab" in one_line_error(err)
    assert "ftkit status lab" in err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["no-such-fault"], "unknown fault 'no-such-fault'"),
        (["installer-fail", "--at", "merge"], "cannot fire at 'merge'"),
        (["module-fail", "--side", "left"], "unknown side 'left'"),
        (["module-fail", "--times", "0"], "--times must be at least 1"),
        (["dhcp-lease-fail"], "no DHCP team"),
        (["disk-fail", "--target", "nope"], "no internal disk 'nope'"),
    ],
)
def test_sim_fault_bad_input_leaves_the_twin_untouched(capsys: pytest.CaptureFixture[str],
                                                       lab: str, argv: list[str],
                                                       match: str) -> None:
    before = twin_version(lab)
    state = run(capsys, "status", lab, "--json")[1]
    code, _, err = run(capsys, "sim", "fault", lab, *argv)
    assert code == 2 and match in one_line_error(err)
    assert twin_version(lab) == before
    assert run(capsys, "status", lab, "--json")[1] == state


def test_sim_fault_refused_on_the_lone_current_copy(capsys: pytest.CaptureFixture[str],
                                                    lab: str) -> None:
    driver = connect(f"sim://{lab}")
    driver.split(critical=["OrderDB", "WebFront"], upgrade_ip="192.0.2.50")
    driver.close()
    before = twin_version(lab)
    code, _, err = run(capsys, "sim", "fault", lab, "disk-fail", "--side", "production",
                       "--target", "data0")
    assert code == 2 and "only up-to-date copy" in one_line_error(err)
    assert twin_version(lab) == before


def test_sim_fault_on_a_missing_system(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sim", "fault", "ghost", "module-fail")
    assert code == 2 and "no simulated system" in one_line_error(err)


# --- ftkit status ------------------------------------------------------------------------


def test_status_json_is_the_model_plus_facts(capsys: pytest.CaptureFixture[str],
                                             lab: str) -> None:
    driver = connect(f"sim://{lab}")
    try:
        driver.wait(600)
        driver.split(critical=["OrderDB", "WebFront"], upgrade_ip="192.0.2.50")
        driver.install({"name": "OrderDB", "version": "12.5.0", "duration_min": 5})
        driver.reboot_upgrade_side()
        driver.merge(critical=["OrderDB", "WebFront"])
        acknowledged = driver.acknowledged()
        [outage] = driver.outages()
    finally:
        driver.close()
    code, out, _ = run(capsys, "status", f"sim://{lab}", "--json")
    assert code == 0
    data = json.loads(out)
    validate(data)  # the documented, driver-neutral schema
    assert data["system"] == "sim://lab" and data["schema"] == "ftkit.status/1"
    assert (data["upgrade_state"], data["operational_state"]) == ("Idle", "Ready")
    assert data["transactions"] == {"acknowledged": acknowledged, "lost": 0}
    assert data["outages"] == [{"start_s": outage.start, "end_s": outage.end,
                                "seconds": outage.seconds}]
    assert data["split"] and data["merged"] and data["applications"]["enclosure"] == 1
    assert (data["production_enclosure"], data["upgrade_enclosure"]) == (0, 1)
    assert data["applications"]["where"] == "upgrade side"
    assert {m["id"] for m in data["modules"]} == {0, 1, 10, 11}
    assert data["session"] is None
    assert run(capsys, "status", lab, "--json")[1] == out  # bare name = sim://name


def test_status_table(capsys: pytest.CaptureFixture[str], lab: str) -> None:
    driver = connect(f"sim://{lab}")
    try:
        driver.wait(60)
        driver.split(critical=["OrderDB", "WebFront"], upgrade_ip="192.0.2.50")
    finally:
        driver.close()
    code, out, _ = run(capsys, "status", lab)
    assert code == 0
    assert out.startswith("sim://lab — NEC Express5800")
    assert "split (Production side 0)" in out
    for heading in ("Modules", "Mirrors (RDR)", "External disks", "Teams", "Sides",
                    "Services", "Applications: enclosure 0", "Transactions: ",
                    "Outages: none", "session: none"):
        assert heading in out, heading
    sides = out.split("\nSides\n")[1].split("\n\n")[0]
    assert "Production" in sides and "Upgrade" in sides and "192.0.2.50" in sides
    assert "disabled" in out  # the mirrors and the critical services on the Upgrade side


def test_status_shows_the_unfinished_session(capsys: pytest.CaptureFixture[str],
                                             lab: str) -> None:
    from ftkit.journal import Journal

    journal = Journal.open("sim://lab")
    record = journal.begin_session(change_id="CHG-7", operator="alice", reason="test")
    journal.set_state(record.id, upgrade_state="Split", operational_state="Broken",
                      broken_step="Install", broken_reason="installer exit code 1603")
    journal.close()
    code, out, _ = run(capsys, "status", lab)
    assert code == 0
    assert ("upgrade state Split, operational state Broken at Install: installer exit code "
            "1603") in out
    assert "CHG-7" in out
    data = json.loads(run(capsys, "status", lab, "--json")[1])
    assert data["broken"] == {"step": "Install", "reason": "installer exit code 1603"}
    session = data["session"]
    assert session["upgrade_state"] == "Split" and session["change_id"] == "CHG-7"


def test_status_does_not_create_a_journal(capsys: pytest.CaptureFixture[str], lab: str,
                                          ftkit_dirs: SimpleNamespace) -> None:
    assert run(capsys, "status", lab)[0] == 0
    assert not (ftkit_dirs.home / "journals").exists()
    assert not (ftkit_dirs.home / "systems" / f"{lab}.ftkit").exists()  # where it would be


def test_status_shows_an_ongoing_outage(capsys: pytest.CaptureFixture[str], lab: str) -> None:
    driver = connect(f"sim://{lab}")
    assert isinstance(driver, SimDriver)
    try:
        driver.split(critical=["OrderDB", "WebFront"], upgrade_ip="192.0.2.50")
        driver.wait(10)
        driver.inject("module-fail", side="production")
        driver.wait(20)
    finally:
        driver.close()
    out = run(capsys, "status", lab)[1]
    assert "applications DOWN" in out and "ongoing" in out
    data = json.loads(run(capsys, "status", lab, "--json")[1])
    assert data["outages"][0]["end_s"] is None and data["applications"]["where"] == "down"


@pytest.mark.parametrize(
    ("target", "match"),
    [("sim://ghost", "no simulated system"), ("nosuch://x", "no driver for scheme 'nosuch'"),
     ("sim://bad name", "malformed simulator name"), ("::", "malformed")],
)
def test_status_bad_target_exits_2(capsys: pytest.CaptureFixture[str], target: str,
                                   match: str) -> None:
    code, out, err = run(capsys, "status", target)
    assert code == 2 and out == ""
    assert match in one_line_error(err)


# --- ftkit check ---------------------------------------------------------------------------


def check_args(name: str, *extra: str) -> list[str]:
    return ["check", name, "--config", str(CONFIG), "--package", *map(str, PACKAGES), *extra]


def test_check_passes_on_a_healthy_system(capsys: pytest.CaptureFixture[str], lab: str) -> None:
    code, out, err = run(capsys, *check_args(lab))
    assert code == 0, err
    assert "readiness check of sim://lab" in out and "0 failed" in out
    assert "FAIL" not in out


def test_check_fails_with_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "sim", "create", "mb", "--scenario", "module-broken")[0] == 0
    code, out, err = run(capsys, *check_args("mb"))
    assert code == 1
    assert "FAIL" in out and "module 11" in out and "→" in out  # the detail and the remedy
    assert "readiness check failed" in one_line_error(err)
    code, out, _ = run(capsys, *check_args("mb", "--json"))
    rows = json.loads(out)
    assert code == 1 and {"check", "status", "detail", "remedy"} <= set(rows[0])
    assert any(r["status"] == "fail" for r in rows)


def test_check_require_staged(capsys: pytest.CaptureFixture[str], lab: str) -> None:
    code, out, _ = run(capsys, *check_args(lab, "--require-staged"))
    assert code == 1 and "packages-staged" in out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["check", "lab", "--config", "no-such.toml"], "no-such.toml"),
        (["check", "lab", "--config", str(CONFIG), "--package", "no-such.toml"], "no-such.toml"),
        (["check", "ghost", "--config", str(CONFIG)], "no simulated system"),
    ],
)
def test_check_bad_input_exits_2(capsys: pytest.CaptureFixture[str], lab: str,
                                 argv: list[str], match: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and match in one_line_error(err)


# --- ftkit run and ftkit reports ----------------------------------------------------------

RUNBOOK_PARAMETERS = 'system = "sim://lab"\nchange_id = ""\noperator = ""\nfail = False\n'
RUNBOOK_BODY = """\
from ftkit.archive import RunResult
if fail:
    raise RuntimeError("the check failed on purpose")
RunResult(outcome="checked", system=system, change_id=change_id, operator=operator,
          message="tiny checked " + system + "\\nsecond line")
"""


def write_runbook(folder: Path, name: str = "tiny") -> Path:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [new_code_cell(RUNBOOK_PARAMETERS, metadata={"tags": ["parameters"]}),
                new_code_cell(RUNBOOK_BODY)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def runbooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "runbooks"
    write_runbook(folder)
    monkeypatch.setenv("FTKIT_RUNBOOKS", str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO),
                                                      os.environ.get("PYTHONPATH", "")]))
    return folder


@pytest.mark.notebook
def test_run_list_verify(capsys: pytest.CaptureFixture[str], runbooks: Path, lab: str,
                         ftkit_dirs: SimpleNamespace) -> None:
    code, out, err = run(capsys, "run", "tiny", "-p", "change_id", "CHG-1", "-p", "operator",
                         "alice", "--kernel", "python3")
    assert code == 0, err
    # the one-line outcome carries the first line of the result's message
    assert out.splitlines()[0] == "outcome: checked — tiny checked sim://lab"
    reports = ftkit_dirs.reports
    html = [line.split("report:")[1].strip() for line in out.splitlines()
            if line.startswith("report:") and line.endswith(".html")]
    assert html and Path(html[0]).is_file() and Path(html[0]).parent == reports

    code, out, err = run(capsys, "run", "tiny", "-p", "fail", "True", "--kernel", "python3",
                         "-p", "change_id", "CHG-2", "-p", "operator", "alice")
    assert code == 1
    assert "RuntimeError: the check failed on purpose" in one_line_error(err)

    code, out, _ = run(capsys, "reports", "list")
    assert code == 0
    rows = out.splitlines()[2:]
    assert len(rows) == 2 and "CHG-1" in rows[0] and "checked" in rows[0]
    assert "failed" in rows[1]
    entries = json.loads(run(capsys, "reports", "list", "--json")[1])
    assert [e["outcome"] for e in entries] == ["checked", "failed"]

    code, out, _ = run(capsys, "reports", "verify")
    assert code == 0 and "2 ledger entries" in out
    (reports / Path(html[0]).name).write_text("tampered", encoding="utf-8")
    code, out, err = run(capsys, "reports", "verify")
    assert code == 1 and "edited" in out
    assert "problem(s)" in one_line_error(err)


@pytest.mark.notebook
def test_reports_add_archives_a_plain_papermill_run(capsys: pytest.CaptureFixture[str],
                                                    runbooks: Path, tmp_path: Path,
                                                    ftkit_dirs: SimpleNamespace) -> None:
    import papermill

    output = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(runbooks / "tiny.ipynb"), str(output),
                               parameters={"change_id": "CHG-9", "operator": "bob"},
                               kernel_name="python3", progress_bar=False)
    # -p never changes what ran (issue 18): another operator, or a parameter the run did
    # not pass, is refused naming it, and nothing is archived
    for given, said in ((["-p", "operator", "alice"], "the run used operator bob"),
                        (["-p", "fail", "True"], "the run did not pass fail")):
        code, _, err = run(capsys, "reports", "add", str(output), *given)
        assert code == 2 and said in one_line_error(err)
        assert not (ftkit_dirs.reports / "ledger.jsonl").exists()
    code, out, err = run(capsys, "reports", "add", str(output), "-p", "operator", "bob")
    assert code == 0, err  # what ran: a check, and it holds
    assert "outcome: checked" in out
    [entry] = json.loads(run(capsys, "reports", "list", "--json")[1])
    assert entry["runbook"] == "tiny" and entry["change_id"] == "CHG-9"
    assert entry["operator"] == "bob"
    assert entry["parameters"] == {"change_id": "CHG-9", "operator": "bob"}
    # added again: one entry, and it says which
    code, out, err = run(capsys, "reports", "add", str(output))
    assert code == 0, err
    assert "already archived as ledger entry seq 1" in out and "nothing added" in out
    assert len(json.loads(run(capsys, "reports", "list", "--json")[1])) == 1


def test_run_bad_input_exits_2_and_runs_nothing(capsys: pytest.CaptureFixture[str],
                                               runbooks: Path,
                                               ftkit_dirs: SimpleNamespace) -> None:
    code, _, err = run(capsys, "run", "no-such-runbook")
    assert code == 2 and "no runbook 'no-such-runbook'" in one_line_error(err)
    code, _, err = run(capsys, "run", "tiny", "-p", "colour", "blue")
    assert code == 2 and "has no parameter colour" in one_line_error(err)
    code, _, err = run(capsys, "run", "tiny", "-p", "2x", "1")
    assert code == 2 and "not a Python identifier" in one_line_error(err)
    assert not ftkit_dirs.reports.exists()


def test_run_refuses_interactive_mode_and_bad_decisions_up_front(capsys: pytest.CaptureFixture[str],
                                              ftkit_dirs: SimpleNamespace) -> None:
    # the shipped runbook defaults to interactive: nobody could click its decision panel
    for argv in (["run", "active-upgrade"], ["run", "active-upgrade", "-p", "mode", "interactive"]):
        code, _, err = run(capsys, *argv)
        line = one_line_error(err)
        assert code == 2 and "interactive mode waits for clicks" in line
        assert "-p mode auto" in line
    # a bad mode or answer is bad input too: refused before a kernel starts
    for argv, words in ((["-p", "mode", "auto", "-p", "decisions", "{split: maybe}"],
                         "decision 'split' cannot be 'maybe'"),
                        (["-p", "mode", "bogus"], "unknown mode 'bogus'")):
        code, _, err = run(capsys, "run", "active-upgrade", *argv)
        assert code == 2 and words in one_line_error(err)
    assert not ftkit_dirs.reports.exists() and not ftkit_dirs.home.exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["status", "-p", "system", "sim://../../etc/x"], "malformed simulator name '../../etc/x'"),
        (["status", "-p", "system", "SIM://v1"], "malformed target 'SIM://v1'"),
        (["status", "-p", "system", "lab9"], "malformed target 'lab9' — write -p system sim://lab9"),
        (["status", "-p", "system", "nosuch://x"], "no driver for scheme 'nosuch'"),
        (["status", "-p", "system", "sim://ghost"],
         "no simulated system sim://ghost, and runbook status creates none — create it with: "
         "ftkit sim create sim://ghost"),
        (["abort", "-p", "system", "sim://ghost", "-p", "operator", "o"],
         "runbook abort creates none"),
        (["abort", "-p", "system", "sim://ghost"], "runbook abort changes the system, and no "
         "operator was given"),
        (["active-upgrade", "-p", "mode", "auto", "-p", "decisions", "{split: stop}", "-p",
          "handover", "yes"], "handover 'yes' is not True or False"),
        (["active-upgrade", "-p", "system", "sim://ghost", "-p", "mode", "plan"],
         "no simulated system sim://ghost, and plan mode creates none"),
        (["active-upgrade", "-p", "system", "sim://new", "-p", "mode", "auto", "-p", "config",
          "no-such.toml", "-p", "decisions", "{split: stop}"],
         "no file 'no-such.toml' for parameter config"),
        (["active-upgrade", "-p", "system", "sim://new", "-p", "mode", "plan", "-p", "packages",
          f"[{PACKAGES[0]}, missing-pkg.toml]"],
         "no file 'missing-pkg.toml' for parameter packages"),
        (["readiness-check", "-p", "packages", str(EXAMPLES / "demo-config.toml")],
         "demo-config.toml"),  # a file that is there but is no package manifest
        (["abort", "-p", "config", "typo.toml", "-p", "operator", "o"],
         "no file 'typo.toml' for parameter config"),
    ],
)
def test_run_refuses_bad_systems_and_files_before_a_kernel_starts(
        capsys: pytest.CaptureFixture[str], ftkit_dirs: SimpleNamespace, argv: list[str],
        words: str) -> None:
    code, out, err = run(capsys, "run", *argv)
    assert code == 2 and out == ""
    assert words in one_line_error(err)
    assert not ftkit_dirs.reports.exists()  # nothing archived
    assert not (ftkit_dirs.home / "systems").exists()  # no system created, plan mode or not


def test_run_help_lists_every_runbook_with_its_parameters(
        capsys: pytest.CaptureFixture[str]) -> None:
    import papermill

    code, out, _ = run(capsys, "run", "--help")
    assert code == 0
    listing = out.split("\nrunbooks (in ")[1]
    books = sorted((REPO / "runbooks").glob("*.ipynb"))
    assert [b.stem for b in books] == ["abort", "active-upgrade", "campaign", "readiness-check",
                                          "status"]
    for book in books:
        section = re.split(r"\n  (?=\S)", listing.split(f"\n  {book.stem} — ")[1])[0]
        # the json + ast reader says what papermill says, name by name
        for name, info in papermill.inspect_notebook(str(book)).items():
            line = next(x for x in section.splitlines() if x.split()[0] == name)
            assert info["default"] in line
            if info["help"]:
                assert line.endswith(f"# {info['help']}")
    for words in ("-p NAME VALUE", "RUNBOOK", "--kernel", "--reports", "--progress"):
        assert words in out


def test_runbook_parameters_agree_with_papermill(tmp_path: Path) -> None:
    import papermill

    from ftkit.runner import runbook_parameters

    for book in sorted((REPO / "runbooks").glob("*.ipynb")):
        assert runbook_parameters(book) == dict(papermill.inspect_notebook(str(book)))
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [new_code_cell('a: int = 3  # three\nb = [1,\n     2]  # a list\nc, d = 1, 2\n'
                              'e = f"{a}"\n', metadata={"tags": ["parameters"]})]
    path = tmp_path / "typed.ipynb"
    nbformat.write(nb, str(path))
    assert runbook_parameters(path) == dict(papermill.inspect_notebook(str(path)))


def _actions(parser: Any) -> list[tuple[str, Any]]:
    import argparse

    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(f"{name} {where}", a) for where, a in _actions(sub)]
        else:
            found.append((parser.prog, action))
    return found


def test_every_argument_and_command_has_help() -> None:
    import argparse

    from ftkit.cli.parser import build_parser

    parser = build_parser()
    actions = _actions(parser)
    assert len(actions) > 40
    for where, action in actions:
        assert action.help and action.help is not argparse.SUPPRESS, (where, action.dest)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            assert all(choice.help for choice in action._choices_actions)


def test_hints_use_the_names_typed(capsys: pytest.CaptureFixture[str], lab: str) -> None:
    code, _, err = run(capsys, "status", "lab7")
    assert code == 2 and one_line_error(err).endswith("create it with: ftkit sim create lab7")
    code, _, err = run(capsys, "sim", "fault", "sim://lab8", "module-fail")
    assert code == 2 and one_line_error(err).endswith("ftkit sim create sim://lab8")
    code, _, err = run(capsys, "sim", "create", lab)
    assert code == 2 and one_line_error(err).endswith("ftkit sim remove lab")
    assert "NAME" not in err


def test_status_primary_io_agrees_with_the_module_table(capsys: pytest.CaptureFixture[str],
                                                        lab: str) -> None:
    out = run(capsys, "status", lab)[1]
    modules = out.split("\nModules\n")[1].split("\n\n")[0].splitlines()[2:]
    [primary] = [row.split() for row in modules if row.split()[4] == "yes"]
    module, enclosure = primary[0], primary[2]
    assert (f"Applications: duplex (both enclosures in lockstep, primary I/O module {module} "
            f"in enclosure {enclosure})") in out


def test_reports_on_an_empty_archive(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "reports", "list")
    assert code == 0 and out.startswith("no reports in")
    code, out, _ = run(capsys, "reports", "verify")
    assert code == 0 and "0 ledger entries" in out
    code, _, err = run(capsys, "reports", "add", "missing.ipynb")
    assert code == 2 and "no notebook" in one_line_error(err)


def test_reports_damaged_ledger_is_one_line(capsys: pytest.CaptureFixture[str],
                                            ftkit_dirs: SimpleNamespace) -> None:
    ftkit_dirs.reports.mkdir(parents=True)
    (ftkit_dirs.reports / "ledger.jsonl").write_text("not json\n", encoding="utf-8")
    code, _, err = run(capsys, "reports", "list")
    assert code == 1 and "is not a ledger entry" in one_line_error(err)
    code, out, err = run(capsys, "reports", "verify")
    assert code == 1 and "not a ledger entry" in out


# --- subprocesses: python -m ftkit, no traceback, start-up imports ----------------------------


def test_python_m_ftkit(tmp_path: Path) -> None:
    env = subprocess_env(FTKIT_HOME=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-m", "ftkit", "sim", "create", "p"], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "ftkit", "status", "sim://p", "--json"],
                          env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and json.loads(done.stdout)["system"] == "sim://p"


@pytest.mark.parametrize(
    ("argv", "code"),
    [(["status", "sim://ghost"], 2), (["sim", "fault", "ghost", "nope"], 2),
     (["status"], 2)],
)
def test_errors_in_a_subprocess_are_one_line(tmp_path: Path, argv: list[str],
                                             code: int) -> None:
    env = subprocess_env(FTKIT_HOME=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-m", "ftkit.cli", *argv], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == code
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("ftkit: ")


IMPORT_PROBE = """
import json, sys
from ftkit.cli import main
codes = [main(argv) for argv in json.loads(sys.argv[1])]
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy})
print(json.dumps({{"codes": codes, "heavy": heavy}}))
"""


def test_status_sim_and_run_help_do_not_import_heavy_modules(tmp_path: Path) -> None:
    env = subprocess_env(FTKIT_HOME=str(tmp_path / "home"))
    argvs = [["sim", "create", "fast"], ["sim", "list"], ["sim", "scenarios"],
             ["sim", "faults"], ["sim", "fault", "fast", "module-fail", "--side", "1"],
             ["sim", "repair", "fast"], ["status", "sim://fast"],
             ["status", "sim://fast", "--json"], ["sim", "remove", "fast"], ["run", "--help"]]
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE.format(heavy=set(HEAVY)), json.dumps(argvs)],
        env=env, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["codes"] == [0] * len(argvs)
    assert result["heavy"] == []


def test_importtime_of_status(tmp_path: Path) -> None:
    env = subprocess_env(FTKIT_HOME=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "ftkit.cli", "status",
                           "sim://x", "--json"], env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2  # no such system: the point is what got imported
    imported = {line.split("|")[-1].strip().split(".")[0]
                for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "ftkit" in imported
    assert not imported & set(HEAVY)


def test_a_file_that_is_not_a_twin_is_refused_and_left_alone(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import sqlite3

    text = tmp_path / "notes.db"
    text.write_text("hello", encoding="utf-8")
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE x (a)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    for path in (text, other, tmp_path):
        for argv in (["status", f"sim://{path}"], ["sim", "remove", f"sim://{path}"],
                     ["sim", "fault", f"sim://{path}", "module-fail"]):
            code, _, err = run(capsys, *argv)
            assert code == 2, argv
            one_line_error(err)
    assert text.read_text(encoding="utf-8") == "hello"
    assert other.read_bytes() == before  # not even switched to WAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db", "other.db"]


def test_recover_adopts_a_split_system_whose_journal_was_lost(
        capsys: pytest.CaptureFixture[str], lab: str) -> None:
    from ftkit.journal import Journal

    code, _, err = run(capsys, "recover", lab, "--operator", "bob", "--reason", "r")
    assert code == 2 and "there is nothing to recover" in one_line_error(err)
    driver = connect(f"sim://{lab}")
    try:
        driver.split(critical=["OrderDB", "WebFront"], upgrade_ip="192.0.2.50")
    finally:
        driver.close()
    code, out, _ = run(capsys, "recover", lab, "--operator", "bob", "--reason", "journal lost")
    assert code == 0 and "recovered sim://lab: session 1 in Split / Ready" in out, out
    assert "ftkit run abort -p system sim://lab -p operator bob" in out
    data = json.loads(run(capsys, "status", lab, "--json")[1])
    assert (data["upgrade_state"], data["operational_state"]) == ("Split", "Ready")
    code, _, err = run(capsys, "recover", lab, "--operator", "bob", "--reason", "again")
    assert code == 2 and "has an unfinished session" in one_line_error(err)
    with Journal.open(f"sim://{lab}") as journal:
        assert "recovered from the system's own state" in journal.entries(
            kinds=["state"])[-1].message


@pytest.mark.parametrize("decisions", [
    {"split": "proceed", "merge": "proceed", "commit": "commit"},
    {"split": "proceed", "merge": "abort"},
])
def test_critical_services_stay_critical_after_a_session_ends(
        capsys: pytest.CaptureFixture[str], lab: str, decisions: dict[str, str]) -> None:
    from ftkit.decisions import ParameterDecisions
    from ftkit.process import open_session

    status = json.loads(run(capsys, "status", lab, "--json")[1])
    before = status["applications"]["critical_services"]
    assert before == ["OrderDB", "WebFront"]
    session = open_session(connect(f"sim://{lab}"), CONFIG, PACKAGES, change_id="CHG-C",
                           operator="tester", reason="test")
    try:
        assert session.run(ParameterDecisions(decisions)) in ("committed", "aborted")
    finally:
        session.journal.close()
    code, out, _ = run(capsys, "status", lab, "--json")
    assert code == 0 and json.loads(out)["applications"]["critical_services"] == before
    code, out, _ = run(capsys, "status", lab)
    assert re.search(r"OrderDB\s.*\byes\b", out), out  # the table's "critical" column
