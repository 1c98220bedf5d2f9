"""``ftkit reports add`` as an auditor needs it (issue 18): a notebook's facts are checked
against the system's journal (an edited notebook is refused, naming the first field that
differs), ``-p`` never overrides what ran, and one session's end makes one ledger entry
however many notebooks report it. Through the CLI and papermill, as users run them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pytest
from conftest import CONFIG, DECISIONS, PACKAGES
from drive import request

from ftkit.archive import RESULT_MIME, read_ledger, result_from_notebook, verify_reports
from ftkit.cli import main
from ftkit.decisions import ParameterDecisions
from ftkit.process import open_session
from ftkit.sim.driver import create_system

REPO = Path(__file__).resolve().parents[1]
RUNBOOKS = REPO / "runbooks"


def papermill_upgrade(out: Path, system: str, change_id: str = "CHG-P") -> Path:
    """The README's plain papermill run of the upgrade runbook, to OUT."""
    import papermill

    papermill.execute_notebook(
        str(RUNBOOKS / "active-upgrade.ipynb"), str(out), kernel_name="python3",
        cwd=str(RUNBOOKS), progress_bar=False, log_output=False,
        parameters={"system": system, "mode": "auto", "decisions": DECISIONS,
                    "change_id": change_id, "operator": "mallory", "reason": "monthly"})
    return out


def add(capsys: pytest.CaptureFixture[str], notebook: Path, *more: str) -> tuple[int, str]:
    """``ftkit reports add NOTEBOOK MORE…``: exit status and what it printed (one line on
    stderr for a refusal)."""
    capsys.readouterr()
    code = main(["reports", "add", str(notebook), *more])
    out, err = capsys.readouterr()
    if code:
        assert err.count("\n") == 1, err  # one line
    return code, out + err


def edited(source: Path, to: Path, **facts: Any) -> Path:
    """SOURCE with its result's FACTS replaced, as someone with an editor would: in the
    result's JSON, and in its text forms."""
    nb = nbformat.read(str(source), as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RESULT_MIME in data:
                data[RESULT_MIME] = {**data[RESULT_MIME], **facts}
    nbformat.write(nb, str(to))
    return to


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One committed upgrade by plain papermill, and a second papermill run of the same
    change (it reports the finished session and changes nothing), on a home of its own."""
    root = tmp_path_factory.mktemp("provenance")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FTKIT_HOME", str(root / "home"))
        system = f"sim://prov-{uuid.uuid4().hex[:8]}"
        first = papermill_upgrade(root / "first.ipynb", system)
        again = papermill_upgrade(root / "again.ipynb", system)
    return SimpleNamespace(home=root / "home", system=system, first=first, again=again)


@pytest.fixture
def home(upgraded: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.setenv("FTKIT_HOME", str(upgraded.home))
    return upgraded


def entries(ftkit_dirs: SimpleNamespace) -> list[Any]:
    return read_ledger(ftkit_dirs.reports)


@pytest.mark.notebook
def test_the_papermill_flow_run_twice_and_added_twice_makes_one_entry(
        capsys: pytest.CaptureFixture[str], home: SimpleNamespace,
        ftkit_dirs: SimpleNamespace) -> None:
    first = result_from_notebook(nbformat.read(str(home.first), as_version=4))
    again = result_from_notebook(nbformat.read(str(home.again), as_version=4))
    assert first and again and first["outcome"] == again["outcome"] == "committed"
    assert first["journal_hash"] == again["journal_hash"]  # the same session's end
    code, said = add(capsys, home.first)
    assert code == 0, said
    [entry] = entries(ftkit_dirs)
    assert (entry.operator, entry.change_id, entry.outcome) == ("mallory", "CHG-P",
                                                                "committed")
    assert entry.outage_s == pytest.approx(first["outage_s"]) and entry.outage_s > 0
    for notebook in (home.first, home.again, home.first):  # the same, the rerun, the same
        code, said = add(capsys, notebook)
        assert code == 0, said
        assert "already archived as ledger entry seq 1" in said and "nothing added" in said
    assert len(entries(ftkit_dirs)) == 1
    assert verify_reports(ftkit_dirs.reports) == []


@pytest.mark.notebook
@pytest.mark.parametrize(
    ("facts", "said"),
    [
        ({"operator": "alice", "outage_s": 5.0},
         "operator: the notebook says alice, the journal says mallory"),
        ({"outage_s": 5.0}, "outage: the notebook says 5 s, the journal says"),
        ({"outcome": "aborted"}, "outcome: the notebook says aborted, the journal says "
                                 "committed"),
        ({"change_id": "CHG-Q"}, "change_id: the notebook says CHG-Q, the journal says CHG-P"),
        ({"account": "root@elsewhere"}, "account: the notebook says root@elsewhere"),
        ({"decisions": "split: proceed by alice (parameter)"},
         "decisions: the notebook says split: proceed by alice (parameter), the journal says "
         "split: proceed by mallory"),
        ({"session": 7}, "session: the notebook says 7, the journal of"),
        ({"journal_entry": 1}, "journal entry: the notebook cites entry 1"),
        ({"reason": "approved by CAB"},
         "reason: the notebook says approved by CAB, the journal says monthly"),
        ({"packages": [{"name": "orderdb", "version": "99"}]},
         "packages: the notebook says orderdb 99, the journal says"),
    ],
    ids=["operator-outage", "outage", "outcome", "change", "account", "decisions", "session",
         "cited-entry", "reason", "packages"],
)
def test_an_edited_notebook_is_refused_naming_the_first_difference(
        facts: dict[str, Any], said: str, capsys: pytest.CaptureFixture[str],
        home: SimpleNamespace, ftkit_dirs: SimpleNamespace, tmp_path: Path) -> None:
    forged = edited(home.first, tmp_path / "forged.ipynb", **facts)
    code, out = add(capsys, forged)
    assert code == 2 and said in out, out
    assert "nothing was archived" in out
    assert not (ftkit_dirs.reports / "ledger.jsonl").exists()


@pytest.mark.notebook
def test_parameters_given_to_add_never_override_what_ran(
        capsys: pytest.CaptureFixture[str], home: SimpleNamespace,
        ftkit_dirs: SimpleNamespace) -> None:
    for given, said in ((["-p", "operator", "alice"],
                         "-p operator alice: the run used operator mallory"),
                        (["-p", "operator", "mallory", "-p", "reason", "approved by CAB"],
                         "-p reason approved by CAB: the run used reason monthly"),
                        (["-p", "soak_minutes", "30"], "the run did not pass soak_minutes")):
        code, out = add(capsys, home.first, *given)
        assert code == 2 and said in out, out
        assert not (ftkit_dirs.reports / "ledger.jsonl").exists()
    code, out = add(capsys, home.first, "-p", "operator", "mallory", "-p", "change_id",
                    "CHG-P")
    assert code == 0, out  # saying what ran is a check, and it holds
    [entry] = entries(ftkit_dirs)
    ran = json.loads(home.first.read_text(encoding="utf-8"))["metadata"]["papermill"]
    assert entry.parameters == json.loads(json.dumps(ran["parameters"]))
    assert entry.parameters["operator"] == entry.operator == "mallory"


@pytest.mark.notebook
def test_an_abort_by_another_operator_is_added_once(
        capsys: pytest.CaptureFixture[str], ftkit_dirs: SimpleNamespace,
        tmp_path: Path) -> None:
    """bob split it; carol ran the abort runbook (anyone may): the journal names her, so
    her notebook is archived, once, under her name; one claiming dave is refused."""
    import papermill

    system = f"sim://prov-{uuid.uuid4().hex[:8]}"
    session = open_session(create_system(system), CONFIG, PACKAGES, change_id="CHG-A",
                           operator="bob", reason="monthly")
    request(session, "PrepareSplit")
    session.advance(ParameterDecisions(DECISIONS, operator="bob"))  # split and its request
    session.close()
    out = tmp_path / "abort.ipynb"
    papermill.execute_notebook(
        str(RUNBOOKS / "abort.ipynb"), str(out), kernel_name="python3", cwd=str(RUNBOOKS),
        progress_bar=False, log_output=False,
        parameters={"system": system, "operator": "carol", "reason": "window closed"})
    code, said = add(capsys, edited(out, tmp_path / "dave.ipynb", operator="dave"))
    assert code == 2 and "operator: the notebook says dave, the journal says bob" in said
    for _ in range(2):
        code, said = add(capsys, out)
        assert code == 0, said
    [entry] = entries(ftkit_dirs)
    assert (entry.operator, entry.change_id, entry.outcome) == ("carol", "CHG-A", "aborted")


def hand_made(path: Path, **facts: Any) -> Path:
    """An executed-looking notebook whose result states FACTS (no kernel)."""
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from ftkit.archive import RunResult

    result = RunResult(facts.pop("outcome"), **facts)
    nb = new_notebook(cells=[new_code_cell("1", execution_count=1, outputs=[
        new_output("display_data", data=result._repr_mimebundle_())])])
    nbformat.write(nb, str(path))
    return path


def test_a_session_end_nothing_here_can_vouch_for_is_refused_a_check_is_not(
        capsys: pytest.CaptureFixture[str], ftkit_dirs: SimpleNamespace,
        tmp_path: Path) -> None:
    nowhere = f"sim://gone-{uuid.uuid4().hex[:8]}"
    claimed = hand_made(tmp_path / "claimed.ipynb", outcome="committed", system=nowhere,
                        change_id="CHG-Z", operator="eve", outage_s=1.0)
    code, said = add(capsys, claimed)
    assert code == 2 and f"the notebook says {nowhere}, which cannot be opened here" in said
    fresh = f"sim://fresh-{uuid.uuid4().hex[:8]}"
    create_system(fresh).close()  # a system, but no run ever journaled on it
    code, said = add(capsys, hand_made(tmp_path / "fresh.ipynb", outcome="aborted",
                                       system=fresh, change_id="CHG-Z", operator="eve"))
    assert code == 2 and f"reports aborted on {fresh}, which has no journal here" in said
    assert not (ftkit_dirs.reports / "ledger.jsonl").exists()
    checked = hand_made(tmp_path / "checked.ipynb", outcome="checked", system=nowhere)
    code, said = add(capsys, checked)
    assert code == 0, said
    assert [e.outcome for e in entries(ftkit_dirs)] == ["checked"]


def test_a_notebook_is_not_added_against_a_journal_whose_sessions_table_was_edited(
        capsys: pytest.CaptureFixture[str], ftkit_dirs: SimpleNamespace,
        tmp_path: Path) -> None:
    """The journal vouches only once it verifies, its sessions table included: mallory
    made herself the operator with sqlite3, and her notebook agreeing with the edited
    table is refused, naming the session and the field."""
    import sqlite3

    system = f"sim://prov-{uuid.uuid4().hex[:8]}"
    session = open_session(create_system(system), CONFIG, PACKAGES, change_id="CHG-E",
                           operator="alice", reason="monthly")
    request(session, "PrepareSplit")
    path, sid = session.journal.path, session.record.id
    session.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sessions SET operator = 'mallory'")
    notebook = hand_made(tmp_path / "mallory.ipynb", outcome="paused", system=system,
                         change_id="CHG-E", operator="mallory", extra={"session": sid})
    code, said = add(capsys, notebook)
    assert code == 2, said
    assert (f"session {sid}'s operator is 'mallory' in the sessions table, the hash chain "
            "says 'alice'") in said
    assert not (ftkit_dirs.reports / "ledger.jsonl").exists()


@pytest.mark.notebook
def test_a_pause_then_its_end_are_two_entries_whatever_order_they_are_added_in(
        capsys: pytest.CaptureFixture[str], ftkit_dirs: SimpleNamespace,
        tmp_path: Path) -> None:
    """A paused run's notebook added after the session went on to commit is still what
    happened then (two entries: the pause, the end); a check citing the same journal entry
    as the end is another record, not the end again."""
    import papermill

    system = f"sim://prov-{uuid.uuid4().hex[:8]}"
    outs = []
    for name, decisions in (("paused", {"split": "proceed", "merge": "later"}),
                            ("ended", DECISIONS)):
        outs.append(tmp_path / f"{name}.ipynb")
        papermill.execute_notebook(
            str(RUNBOOKS / "active-upgrade.ipynb"), str(outs[-1]), kernel_name="python3",
            cwd=str(RUNBOOKS), progress_bar=False, log_output=False,
            parameters={"system": system, "mode": "auto", "decisions": decisions,
                        "change_id": "CHG-L", "operator": "mallory", "reason": "monthly"})
    paused, ended = outs
    for notebook in (ended, paused):
        code, said = add(capsys, notebook)
        assert code == 0 and "already archived" not in said, said
    end = result_from_notebook(nbformat.read(str(ended), as_version=4))
    assert end is not None
    check = hand_made(tmp_path / "check.ipynb", outcome="checked", system=system,
                      extra={"session": end["session"], "journal_entry": end["journal_entry"],
                             "journal_hash": end["journal_hash"]})
    code, said = add(capsys, check)
    assert code == 0 and "already archived" not in said, said
    assert [e.outcome for e in entries(ftkit_dirs)] == ["committed", "paused", "checked"]
