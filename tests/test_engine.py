"""The one engine (ftkit/engine.py): every face advances a session through it, the state
comes back from the journal (never from an observer), any failure inside a step leaves the
session Broken, and the process's names are declared once (ftkit/flow.py, ftkit/model.py)."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from drive import request, retry

from ftkit import flow
from ftkit.decisions import ParameterDecisions
from ftkit.flow import Kind, Next
from ftkit.journal import Journal
from ftkit.model import OperationalState, Request, UpgradeState
from ftkit.process import Session
from ftkit.sim.driver import SimDriver

REPO = Path(__file__).resolve().parents[1]
COMMIT = {"split": "proceed", "merge": "proceed", "commit": "commit"}


def _literals(path: Path) -> list[tuple[int, str]]:
    """String literals of PATH, docstrings aside."""
    tree = ast.parse(path.read_text())
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef
                          | ast.ClassDef)
            and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docs]


def test_no_request_or_state_name_is_spelled_outside_its_declaration() -> None:
    names = ({r.value for r in Request} | {s.value for s in UpgradeState}
             | {o.value for o in OperationalState})
    declared = {REPO / "ftkit" / "flow.py", REPO / "ftkit" / "model.py"}
    files = [p for p in sorted((REPO / "ftkit").rglob("*.py")) + sorted(
        (REPO / "widgets").glob("*.py")) if p not in declared]
    assert len(files) > 30
    spelled = [f"{p.relative_to(REPO)}:{line}: {value!r}" for p in files
               for line, value in _literals(p) if value in names]
    assert spelled == [], "use the enums of ftkit.model / ftkit.flow instead"


def test_the_scan_finds_a_spelled_name(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text('"""Doc mentions Commit."""\nif state == "Commit":\n    pass\n')
    assert _literals(probe) == [(2, "Commit")]


def _cells() -> list[Next]:
    """The steps the upgrade runbook's code cells take, in order."""
    notebook = json.loads((REPO / "runbooks" / "active-upgrade.ipynb").read_text())
    steps: list[Next] = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        for kind, name in re.findall(r'fw\.(step|ask)\(session, "(\w+)"', source):
            steps.append(Next(Kind.REQUEST if kind == "step" else Kind.DECIDE, name))
        if re.search(r"fw\.soak\(session,", source):
            steps.append(Next(Kind.SOAK, flow.Question.COMMIT))
    return steps


def test_the_runbook_cells_follow_the_declared_flow() -> None:
    """Each step of the declared flow has its cell, in the flow's order: a decision's cell
    runs the request its answer leads to (flow.route)."""
    assert _cells() == flow.route(COMMIT)
    for answers in ({"split": "stop"}, {**COMMIT, "merge": "abort"},
                    {**COMMIT, "commit": "abort"}):
        taken = iter(_cells())  # every other path takes a subsequence of the cells
        assert all(step in taken for step in flow.route(answers)), answers


def test_only_the_engine_writes_a_step() -> None:
    """Intents, outcomes and state moves are written by ftkit/engine.py alone (a lost
    journal's recovery writes one transaction of its own, Journal.adopt_session): no face has
    a second way of driving."""
    writers = re.compile(r"\.journal\.(start|outcome|set_state)\(|\bjournal\.(start|outcome"
                         r"|set_state)\(")
    found = sorted(str(p.relative_to(REPO)) for p in (REPO / "ftkit").rglob("*.py")
                   if writers.search(p.read_text()))
    found += sorted(str(p.relative_to(REPO)) for p in (REPO / "widgets").glob("*.py")
                    if writers.search(p.read_text()))
    assert found == ["ftkit/engine.py"], found  # the recovery writes through adopt_session


def test_a_failing_observer_changes_nothing_the_engine_reads(session: Session) -> None:
    """A display listener that raises on every entry (swallowed by the journal) does not
    make the session report a state the journal does not hold."""
    calls = []

    def broken_display(_entry: object) -> None:
        calls.append(1)
        raise RuntimeError("a widget failed")

    session.subscribe(broken_display)
    session.record = None  # nothing kept from before: what the engine reads back counts
    request(session, "PrepareSplit")
    did = session.advance(ParameterDecisions(COMMIT))
    assert did.did is Kind.REQUEST and did.name == "ExecuteSplit"
    assert calls
    held = Journal.of(session.driver).current_session()
    assert held is not None and session.record is not None
    assert (session.upgrade_state.value, session.operational_state.value) == (
        held.upgrade_state, held.operational_state) == ("Split", "Ready")


def test_what_the_engine_reads_from_the_log_is_read_on_as_it_grows(
        session: Session) -> None:
    """Session.log_facts, worked out again only from the entries added since (by this
    process or another), says what one pass over the whole log says, at every step."""
    from ftkit.process import LogFacts

    session.soak_minutes = 30.0
    decider = ParameterDecisions(COMMIT)
    seen = []
    while (did := session.advance(decider)).did is not Kind.DONE:
        assert session.log_facts() == LogFacts.of(session.entries())
        seen.append(did.did)
        if did.did is Kind.SOAK:  # another connection adds to the log meanwhile
            assert session.record is not None
            with Journal(session.journal.path) as other:
                other.log(session.record.id, "info", "soaked elsewhere",
                          detail={"soak_minutes": 5, "transactions": 7})
            facts = session.log_facts()
            assert facts == LogFacts.of(session.entries())
            assert (facts.soak_minutes, facts.soak_served) == session.soak_result()
            assert facts.soak_minutes == 35.0
    assert Kind.SOAK in seen and session.record is not None
    assert session.log_facts().succeeded >= {"PrepareSplit", "Commit", "Finish"}
    assert session.answers() == COMMIT


def test_any_exception_in_a_step_leaves_it_broken_not_busy(
        session: Session, sim: SimDriver, monkeypatch: pytest.MonkeyPatch) -> None:
    from ftkit.errors import StepFailedError

    request(session, "PrepareSplit")

    def fails(**_kw: object) -> None:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    monkeypatch.setattr(sim, "split", fails)
    with pytest.raises(StepFailedError, match="UnicodeDecodeError") as caught:
        session.advance(ParameterDecisions(COMMIT))
    assert caught.value.step == "ExecuteSplit"
    assert session.broken == ("ExecuteSplit", caught.value.reason)
    assert "invalid start byte" in caught.value.reason and "\n" not in caught.value.reason
    assert session.operational_state is OperationalState.BROKEN
    monkeypatch.undo()
    retry(session)  # the cause gone: Retry runs the step again
    assert session.upgrade_state is UpgradeState.SPLIT and session.broken is None


def test_advance_without_a_decider_waits_and_changes_nothing(session: Session) -> None:
    request(session, "PrepareSplit")
    before = len(session.entries())
    did = session.advance()
    assert did.did is Kind.DECIDE and did.name == "split"
    assert len(session.entries()) == before
    # a cell that expects another step does nothing either
    did = session.advance(ParameterDecisions(COMMIT), expect=Next(Kind.REQUEST, "Install"))
    assert did.did is Kind.HALTED and len(session.entries()) == before


def test_the_answer_is_journaled_in_its_request_s_intent_transaction(
        session: Session) -> None:
    request(session, "PrepareSplit")
    session.advance(ParameterDecisions(COMMIT))
    decision, intent = [e for e in session.entries() if e.kind in ("decision", "intent")][-2:]
    assert (decision.kind, intent.kind, intent.step) == ("decision", "intent", "ExecuteSplit")
    assert intent.id == decision.id + 1  # written together, in one transaction


# --- what waits for the disk (docs/DESIGN.md, "The journal's guarantees") ----------------


class _Asked:
    """A decider that answers COMMIT and notes, each time it is asked, whether something
    journaled had not reached the disk yet. ``at_once`` as given: False is a decider that
    may wait for a person (a provider without the attribute)."""

    def __init__(self, session: Session, *, at_once: bool) -> None:
        self.session, self.unsynced = session, []
        if at_once:
            self.at_once = True

    def decide(self, name: str) -> object:
        self.unsynced.append(self.session.journal._unsynced)  # white box: what is on disk
        return ParameterDecisions(COMMIT, operator="tester").decide(name)


def _synced_run(session: Session, *, at_once: bool) -> tuple[list[bool], int]:
    """Run SESSION to the end with :class:`_Asked`: what it noted, and how many of the
    run's commits waited for the disk."""
    asked = _Asked(session, at_once=at_once)
    statements: list[str] = []
    session.journal._conn.set_trace_callback(statements.append)  # white box: SQLite's work
    assert session.run(asked, soak_minutes=0) == "committed"
    session.journal._conn.set_trace_callback(None)
    assert not session.journal._unsynced  # durable when the run returns, either way
    synced, commits = True, 0  # the journal sets PRAGMA synchronous when it changes
    for sql in statements:
        if sql.startswith("PRAGMA synchronous"):
            synced = sql.endswith("FULL")
        commits += sql == "BEGIN IMMEDIATE" and synced
    return asked.unsynced, commits


def test_answers_given_up_front_are_read_without_waiting_for_the_disk(
        make_sim: Callable[..., SimDriver]) -> None:
    """The step before a question answered at once is not synced on its own: the answer's
    request intent, synced before the system is asked anything, makes it durable. A
    decider that may wait for a person costs one synced commit a question more."""
    from ftkit.process import open_session

    runs = {}
    for at_once in (True, False):
        session = open_session(make_sim(), REPO / "examples" / "demo-config.toml",
                               [REPO / "examples" / "packages" / "os-hotfix.toml"],
                               change_id="CHG-T", operator="tester")
        try:
            runs[at_once] = _synced_run(session, at_once=at_once)
        finally:
            session.journal.close()
    assert runs[True][0] == [True, True, True]  # after PrepareSplit, Install, ExecuteMerge
    assert runs[False][0] == [False, False, False]
    assert runs[False][1] - runs[True][1] == 3


def test_a_commit_waiting_for_an_approval_waits_with_everything_durable(
        sim: SimDriver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ftkit import notify
    from ftkit.approvals import approve
    from ftkit.process import open_session

    cfg = tmp_path / "approvals.toml"
    cfg.write_text(f'include = ["{REPO / "examples" / "demo-config.toml"}"]\n'
                   "[window]\ndecision_timeout_min = 1\n[approvals]\ncommit = 1\n",
                   encoding="utf-8")
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    session = open_session(sim, cfg, [REPO / "examples" / "packages" / "os-hotfix.toml"],
                           change_id="CHG-A", operator="alice")
    seen: list[bool] = []
    told = notify.pending

    def pending(s: Session, **said: str) -> None:  # people are told: bob approves
        seen.append(s.journal._unsynced)
        told(s, **said)
        monkeypatch.setenv("JUPYTERHUB_USER", "bob")
        approve(s.target, change_id="CHG-A", by="Bob B")
        monkeypatch.setenv("JUPYTERHUB_USER", "alice")

    monkeypatch.setattr(notify, "pending", pending)
    try:
        assert session.run(ParameterDecisions(COMMIT, operator="alice"),
                           soak_minutes=0) == "committed"
    finally:
        session.journal.close()
    assert seen == [False]  # the merge's outcome was synced before anyone was asked
