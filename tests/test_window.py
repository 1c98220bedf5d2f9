"""Change controls (ftkit/window.py, declared in ftkit/flow.py): the change window, the
outage budget, decision timeouts.

The simulated systems here start at a fixed moment (``EPOCH``), and time is the system's
clock, so every window below is exact: the split starts at EPOCH, Install ends some 26
simulated minutes later, the merge's estimate of what remains is merge 1 min + soak +
commit 123 min. The runbook tests run it through papermill, as users do.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFIG, ORIGINAL, PACKAGES, UPGRADED
from conftest import DECISIONS as ALL
from drive import answer, request
from test_runbooks import fails, run, software, upgrade

from ftkit import flow
from ftkit.cli import main
from ftkit.config import load_config_text
from ftkit.drivers import connect
from ftkit.errors import ConfigError, ParameterError, TransitionError
from ftkit.flow import Kind
from ftkit.journal import Journal
from ftkit.process import open_session
from ftkit.sim.driver import SimDriver, create_system
from ftkit.window import Expired, parse_time

EPOCH = datetime(2026, 12, 5, 21, 0, tzinfo=UTC)  # 22:00 in Europe/Berlin


def fresh() -> tuple[str, SimDriver]:
    system = f"sim://win-{uuid.uuid4().hex[:8]}"
    return system, create_system(system, epoch=EPOCH)


def config_with(tmp_path: Path, window: str) -> str:
    """The demo configuration with a [window] table of its own (an including file)."""
    path = tmp_path / f"window-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(f'include = ["{CONFIG}"]\n\n[window]\n{window}\n')
    return str(path)


def entries(system: str, kind: str) -> list[Any]:
    with Journal.open(system) as journal:
        record = journal.sessions()[-1]
        return journal.entries(record.id, kinds=[kind])


def merged(system: str, driver: SimDriver) -> None:
    """Split, install and merge SYSTEM through the engine (no window: optional here)."""
    session = open_session(driver, CONFIG, PACKAGES, change_id="CHG-NB", operator="nb-test")
    request(session, "PrepareSplit")
    answer(session, "split", "proceed")
    request(session, "Install")
    answer(session, "merge", "proceed")
    request(session, "ExecuteMerge")
    session.close()


# --- the window: parsing and the one check before a run ----------------------------------


def test_a_window_is_iso_8601_with_an_offset_or_a_zone_name() -> None:
    assert parse_time("2026-12-05T22:00 Europe/Berlin", what="w") == EPOCH
    assert parse_time("2026-12-05T22:00[Europe/Berlin]", what="w") == EPOCH
    assert parse_time("2026-12-05T21:00:00+00:00", what="w") == EPOCH
    for bad, said in (("2026-12-05T22:00", "no UTC offset or zone"),
                      ("2026-12-05T22:00 Mars/Olympus", "unknown time zone"),
                      ("tonight", "not an ISO 8601"),
                      ("2026-12-05T22:00+01:00 Europe/Berlin", "both an offset and a zone")):
        with pytest.raises(ParameterError, match=said):
            parse_time(bad, what="window_start")


@pytest.mark.parametrize(("start", "end", "said"), [
    ("2026-12-05T22:00 Europe/Berlin", "2026-12-05T21:00 Europe/Berlin", "ends .* before"),
    ("2026-12-05T22:00 Europe/Nowhere", "2026-12-06T02:00 Europe/Berlin", "unknown time zone"),
    ("yesterday", "2026-12-06T02:00 Europe/Berlin", "not an ISO 8601"),
    ("2026-12-05T22:00 Europe/Berlin", "", "no end"),
])
def test_ftkit_run_refuses_a_bad_window_before_a_kernel_starts(
        start: str, end: str, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    system, _driver = fresh()
    code = main(["run", "active-upgrade", "-p", "system", system, "-p", "mode", "auto",
                 "-p", "decisions", str(ALL), "-p", "change_id", "CHG-W", "-p", "operator",
                 "alice", "-p", "window_start", start, "-p", "window_end", end])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and re.search(said, err), err
    with Journal.open(system) as journal:
        assert journal.sessions() == []


def test_the_configuration_window_table_is_checked_key_by_key(tmp_path: Path) -> None:
    cases = {'start = "2026-12-05T22:00"': "no UTC offset or zone",
             'on_window_end = "wait"': "unknown value 'wait'",
             "max_outage_s = -1": "greater than 0",
             "decision_timeout_min = { approve = 5 }": "unknown key",
             'colour = "red"': "unknown key"}
    for text, said in cases.items():
        with pytest.raises(ConfigError, match=said):
            load_config_text(f'[disks]\nsystem = ["system0"]\n[window]\n{text}\n',
                             base_dir=tmp_path)
    cfg = load_config_text(
        '[disks]\nsystem = ["system0"]\n[window]\nstart = 2026-12-05T22:00:00+01:00\n'
        'end = "2026-12-06T02:00 Europe/Berlin"\nmax_outage_s = 60\n'
        "decision_timeout_min = { commit = 90 }\n", base_dir=tmp_path)
    window = cfg.controls.the_window()
    assert window is not None and window.start == EPOCH
    assert cfg.controls.timeout_min("commit") == 90 and cfg.controls.timeout_min("split") is None
    assert cfg.to_dict()["window"]["max_outage_s"] == 60


def test_check_and_plan_show_the_window_and_whether_the_plan_fits(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    system, _driver = fresh()
    short = config_with(tmp_path, 'start = "2026-12-05T22:00 Europe/Berlin"\n'
                                  'end = "2026-12-05T23:00 Europe/Berlin"\n'
                                  "max_outage_s = 30\ndecision_timeout_min = 20")
    assert main(["check", system, "--config", short, "--package", str(PACKAGES[0])]) == 0
    out = capsys.readouterr().out
    assert "change-window: window 2026-12-05 22:00 +01:00 to 2026-12-05 23:00 +01:00" in out
    assert "does not fit (60 min left)" in out, out
    assert "outage budget 30 s (on breach: record), the merge's estimate about 60 s" in out
    assert "decision timeouts every decision 20 min" in out
    result = run("active-upgrade", tmp_path, **upgrade(
        system, mode="plan", window_start="2026-12-05T22:00 Europe/Berlin",
        window_end="2026-12-06T02:00 Europe/Berlin"))
    assert result["outcome"] == "planned"
    notebook = max(tmp_path.glob("active-upgrade-*.ipynb"), key=lambda p: p.stat().st_mtime)
    assert "240 min left: it fits" in notebook.read_text()


# --- the window through the runbook ------------------------------------------------------


def test_a_split_outside_the_window_is_refused_with_nothing_changed(tmp_path: Path) -> None:
    system, driver = fresh()
    error = fails("active-upgrade", tmp_path, **upgrade(
        system, decisions=ALL, window_start="2026-12-05T23:00 Europe/Berlin",
        window_end="2026-12-06T03:00 Europe/Berlin"))
    assert "the change window opens at 2026-12-05 23:00 +01:00, in 60 min" in str(error)
    with Journal.open(system) as journal:
        assert journal.sessions() == []  # no session began: nothing journaled but the look
    assert software(driver) == [ORIGINAL, ORIGINAL] and driver.status().duplex


def test_a_merge_whose_estimate_overruns_the_window_is_refused_with_the_figures(
        tmp_path: Path) -> None:
    system, driver = fresh()
    error = fails("active-upgrade", tmp_path, **upgrade(
        system, decisions=ALL, soak_minutes=10, window_start="2026-12-05T21:00:00+00:00",
        window_end="2026-12-05T23:00:00+00:00"))
    said = str(error)
    assert "merge, soak and commit need about 134 min (merge 1.0, soak 10.0, commit 122.9 " \
           "min), the window ends in 94 min" in said, said
    assert "the system is left in Split / Ready" in said
    st = connect(system).status()
    assert st.split and not st.merged and st.apps_on == st.production  # Production serves
    (intent,) = [e for e in entries(system, "intent") if e.step == "PrepareMerge"] or [None]
    assert intent is None  # refused before its intent: nothing started
    assert driver.lost_transactions() == 0


@pytest.mark.parametrize("policy", ["abort", "hold"])
def test_a_soak_that_reaches_the_window_end_follows_on_window_end(
        policy: str, tmp_path: Path) -> None:
    system, driver = fresh()
    merged(system, driver)  # at about 21:28 UTC
    config = config_with(tmp_path, f'on_window_end = "{policy}"')
    params = upgrade(system, config=config, decisions={"commit": "commit"}, soak_minutes=30,
                     window_start="2026-12-05T21:00:00+00:00",
                     window_end="2026-12-05T21:40:00+00:00")
    if policy == "abort":
        result = run("active-upgrade", tmp_path, **params)
        assert result["outcome"] == "aborted"
        assert software(driver) == [ORIGINAL, ORIGINAL]
        (decision,) = [e.detail for e in entries(system, "decision")
                       if e.detail.get("name") == "commit"]
        assert decision["answer"] == "abort" and decision["source"] == "rule"
        assert "change window ended at 2026-12-05 21:40 +00:00" in decision["why"]
    else:
        result = run("active-upgrade", tmp_path, **params)
        assert result["outcome"] == "paused"
        assert "run again with commit: commit or abort" in result["message"]
        st = connect(system).status()
        assert st.merged and not st.duplex  # held: the upgraded side serves, abortable
        (held,) = [e for e in entries(system, "warning") if "not decided (hold)" in e.message]
        assert held.detail["source"] == "rule"
    (cut,) = [e for e in entries(system, "warning") if e.detail.get("window_end")]
    assert "the change window ended before the commit decision" in cut.message
    assert cut.detail["soak_minutes"] < 30 and cut.sim_time == 40 * 60


@pytest.mark.parametrize("policy", ["abort", "record"])
def test_a_breach_of_the_outage_budget_is_recorded_and_aborts_when_told(
        policy: str, tmp_path: Path) -> None:
    system, driver = fresh()
    config = config_with(tmp_path, f'max_outage_s = 10\non_outage_breach = "{policy}"')
    result = run("active-upgrade", tmp_path, **upgrade(system, config=config, decisions=ALL,
                                                       soak_minutes=0))
    budget = result["outage_budget"]
    assert budget["max_outage_s"] == 10 and budget["met"] is False
    assert budget["exceeded_by_s"] == pytest.approx(budget["merge_outage_s"] - 10)
    assert budget["merge_outage_s"] == result["outages"][0]  # the merge's, not the restart's
    if policy == "abort":
        assert result["outcome"] == "aborted" and software(driver) == [ORIGINAL, ORIGINAL]
        assert "commit: abort by ftkit (rule)" in result["decisions"]
    else:
        assert result["outcome"] == "committed" and software(driver) == [UPGRADED, UPGRADED]
    notebook = max(tmp_path.glob("active-upgrade-*.ipynb"), key=lambda p: p.stat().st_mtime)
    assert "outage budget" in notebook.read_text()  # the record's header says it
    assert f"10 s: exceeded by {budget['exceeded_by_s']:g} s" in notebook.read_text()
    assert main(["reports", "add", str(notebook)]) == 0  # the ledger entry carries it
    ledger = (Path(os.environ["FTKIT_REPORTS"]) / "ledger.jsonl").read_text().splitlines()
    assert json.loads(ledger[-1])["controls"]["outage_budget"] == budget
    assert main(["reports", "verify"]) == 0


# --- decisions time out, safely -----------------------------------------------------------


def test_an_expired_decision_before_the_merge_pauses_with_the_system_as_it_is() -> None:
    _system, driver = fresh()
    session = open_session(driver, CONFIG, PACKAGES, change_id="CHG-T", operator="alice")
    request(session, "PrepareSplit")
    did = session.advance(Expired(30))
    assert did.did is Kind.PAUSED and session.next().kind is Kind.PAUSED
    assert driver.status().duplex and software(driver) == [ORIGINAL, ORIGINAL]
    result = session.result(mode="auto").to_dict()
    assert result["outcome"] == "paused"
    assert "no split decision within 30 min" in result["message"]
    assert "run again with split: proceed or stop" in result["message"]
    (held,) = [e for e in session.entries(kinds=["warning"]) if e.detail.get("pause")]
    assert held.detail["answer"] == flow.EXPIRED and held.detail["source"] == "timeout"
    session.close()


def test_an_expired_commit_decision_follows_the_window_policy() -> None:
    system, driver = fresh()
    merged(system, driver)
    session = open_session(driver, CONFIG, PACKAGES, change_id="CHG-NB", operator="nb-test")
    did = session.advance(Expired(60))  # on_window_end: abort, the default
    assert did.did is Kind.REQUEST and did.name == "Abort"
    assert did.decision is not None and did.decision.answer == "abort"
    assert did.decision.source == "timeout" and "no commit decision within 60 min" in \
        did.decision.why
    assert session.decision("commit") is not None
    session.close()


def test_an_expired_panel_leaves_no_button_live_and_journals_the_expiry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import ftkit_widgets as fw
    from ftkit_widgets import decide

    shown: list[Any] = []
    monkeypatch.setattr(decide, "show", shown.append)
    monkeypatch.setattr(decide, "display", lambda *_a, **_k: None)
    _system, driver = fresh()
    config = config_with(tmp_path, "decision_timeout_min = { split = 0.002 }")  # 0.12 s
    session = open_session(driver, config, PACKAGES, change_id="CHG-P", operator="alice")
    request(session, "PrepareSplit")
    got = asyncio.run(fw.ask(session, "split", mode="interactive", decisions={},
                             operator="alice", reason="r"))
    (panel,) = shown
    assert got is None and all(b.disabled for b in panel.buttons.values())
    assert session.next().kind is Kind.PAUSED and driver.status().duplex
    (held,) = [e for e in session.entries(kinds=["warning"]) if e.detail.get("pause")]
    assert "no split decision within 0.002 min" in held.message
    assert "run again with split: proceed or split: stop" in held.message
    session.close()


def test_status_shows_the_window_and_the_outage_budget(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    system, driver = fresh()
    config = config_with(tmp_path, "max_outage_s = 10")
    session = open_session(driver, config, PACKAGES, change_id="CHG-S", operator="alice",
                           window_start="2026-12-05T22:00 Europe/Berlin",
                           window_end="2026-12-06T02:00 Europe/Berlin")
    from ftkit.decisions import ParameterDecisions

    assert session.run(ParameterDecisions(ALL)) == "committed"
    session.close()
    assert main(["status", system, "--json"]) == 0
    controls = json.loads(capsys.readouterr().out)["session"]["controls"]
    assert controls["window"]["met"] is True
    assert controls["outage_budget"]["met"] is False
    assert controls["outage_budget"]["merge_outage_s"] > 10
    assert main(["status", system]) == 0
    out = capsys.readouterr().out
    assert "change window 2026-12-05T22:00:00+01:00 to 2026-12-06T02:00:00+01:00: met" in out
    assert "outage budget 10 s: merge outage" in out and "exceeded by" in out


def test_a_required_window_is_refused_when_none_is_given(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    system, _driver = fresh()
    config = config_with(tmp_path, 'window = "required"')
    code = main(["run", "active-upgrade", "-p", "system", system, "-p", "mode", "auto",
                 "-p", "decisions", str(ALL), "-p", "change_id", "CHG-R", "-p", "operator",
                 "alice", "-p", "config", config])
    err = capsys.readouterr().err
    assert code == 2 and f"no change window: a run on {system} needs one" in err
    session = open_session(connect(system), config, PACKAGES, change_id="CHG-R",
                           operator="alice")  # the engine's guard says the same
    with pytest.raises(TransitionError, match="no change window"):
        request(session, "PrepareSplit")
    assert session.record is None
    session.close()


def test_a_merge_after_the_window_ended_is_refused_and_the_system_stays_split() -> None:
    _system, driver = fresh()
    session = open_session(driver, CONFIG, PACKAGES, change_id="CHG-E", operator="alice",
                           window_start="2026-12-05T21:00:00+00:00",
                           window_end="2026-12-05T21:20:00+00:00")
    request(session, "PrepareSplit")
    answer(session, "split", "proceed")
    request(session, "Install")  # about 26 simulated minutes: the window has ended
    with pytest.raises(TransitionError, match="the change window ended at 2026-12-05 "
                                              r"21:20 \+00:00, 6 min ago"):
        answer(session, "merge", "proceed")
    assert session.upgrade_state.value == "Split" and driver.status().split
    assert session.decision("merge") is not None  # the answer stands; its request refused
    session.close()
