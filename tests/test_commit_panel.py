"""The commit panel shows what the commit decision rests on (issue 17): the soak's
evidence (probes passed and failed, their errors, transactions served, the outage against
its budget) and the approval state (how many Commit needs, who gave them, and that the
operator's own account cannot). Driven the way an operator does: ``.click()`` on the
panel's buttons, values typed into its fields; the approval is given through
``ftkit.approvals.approve`` as another account (``$JUPYTERHUB_USER``)."""

from __future__ import annotations

import asyncio
import html
import re
import uuid
from pathlib import Path

import pytest
from conftest import CONFIG, PACKAGES
from conftest import DECISIONS as ALL
from drive import request

import ftkit_widgets as fw
from ftkit.approvals import approve
from ftkit.decisions import ParameterDecisions
from ftkit.errors import DecisionError
from ftkit.model import UpgradeState
from ftkit.process import Session, open_session
from ftkit.sim.driver import SimDriver


def text(markup: str) -> str:
    """What a reader sees of some HTML: tags dropped, entities decoded, spaces folded."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup)))


def controls(tmp_path: Path) -> Path:
    """The demo configuration with one approval at Commit, an outage budget and two probe
    actions every 20 s of the soak: one passes, one fails with a message."""
    scripts = []
    for name, code in (("good", 0), ("bad", 3)):
        script = tmp_path / f"probe-{name}.sh"
        script.write_text(f"#!/bin/sh\necho {name} says {code}\nexit {code}\n",
                          encoding="utf-8")
        script.chmod(0o755)
        scripts.append((name, script))
    actions = "".join(f'[[custom_actions]]\nname = "{name}"\nkind = "probe"\n'
                      f'path = "{script}"\ntimeout_s = 10\n' for name, script in scripts)
    path = tmp_path / f"commit-panel-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(f'include = ["{CONFIG}"]\nprobe_every_s = 20\n'
                    "[window]\nmax_outage_s = 600\ndecision_timeout_min = { commit = 0 }\n"
                    f"[approvals]\ncommit = 1\n{actions}", encoding="utf-8")
    return path


@pytest.fixture
def soaked(sim: SimDriver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Session:
    """alice's session (account alice) merged and soaked 1 min: waits for the commit."""
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    session = open_session(sim, controls(tmp_path), PACKAGES, change_id="CHG-P",
                           operator="alice", reason="patch tuesday")
    request(session, "PrepareSplit")
    session.advance(ParameterDecisions(ALL, operator="alice"))  # split and ExecuteSplit
    request(session, "Install")
    session.advance(ParameterDecisions(ALL, operator="alice"))  # merge and PrepareMerge
    request(session, "ExecuteMerge")
    fw.soak(session, 1)
    assert session.needs_decision("commit")
    yield session
    session.journal.close()


def test_commit_panel_shows_evidence_and_approvals_and_refuses_until_approved(
        soaked: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    session = soaked
    panel = fw.DecisionPanel(session, "commit")
    shown = text(panel.evidence.value)
    # the soak's evidence: three rounds of two probes, the failing one's error, the outage
    # against its budget, the transactions served in the soak and lost
    assert "probes 3 passed, 3 failed" in shown
    assert "probe error bad: exit 3" in shown
    (outage,) = session.outages()
    assert f"measured outage of the merge {outage.seconds:.1f} s" in shown
    assert "(budget 600 s: met)" in shown
    assert f"soak 1 min on the upgraded software, {session.soak_result()[1]} transactions " \
        "acknowledged" in shown
    assert "transactions lost 0" in shown
    # the approval state: none of one given; alice's own account cannot give it
    assert "approvals of Commit 0 of 1 required" in shown
    assert ("Commit waits for 1 more approval(s). Your account (alice) runs this change: it "
            "cannot approve it; another account runs: ftkit approve "
            f"{session.target} --change CHG-P --by YOUR-NAME") in shown

    panel.operator.value, panel.reason.value = "alice", "soak looks fine"
    panel.buttons["commit"].click()  # refused: no approval yet
    assert "not recorded" in text(panel.message.value)
    assert "Commit needs 1 approval(s) from an account other than alice" \
        in text(panel.message.value)
    assert panel.decision is None and session.upgrade_state is UpgradeState.MERGE
    assert session.decision("commit") is None  # nothing decided: merged, abortable

    monkeypatch.setenv("JUPYTERHUB_USER", "bob")  # bob's process approves
    given = approve(session.target, change_id="CHG-P", by="Bob B", reason="evidence read")
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    assert given["evidence"]["probes_failed"] == 3  # what bob was shown, journaled

    panel.buttons["commit"].click()  # now it commits
    assert panel.decision is not None and panel.decision.answer == "commit"
    shown = text(panel.evidence.value)
    assert f"approvals of Commit 1 of 1 required: Bob B (bob, {given['when']})" in shown
    assert "Commit waits" not in shown
    assert panel.error is None and session.due("Finish")  # the run carries on to Finish


def test_commit_panel_of_another_account_names_the_operator(
        soaked: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "carol")  # carol looks at alice's session
    shown = text(fw.DecisionPanel(soaked, "commit").evidence.value)
    assert "Any account but alice (the operator's) runs: ftkit approve" in shown
    assert "cannot approve" not in shown


def test_a_waiting_commit_panel_shows_an_approval_given_meanwhile(
        soaked: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cell waits for the panel (``wait``); bob approves from his own process: the
    panel reads the approvals again while it waits, without a click."""
    from ftkit_widgets import decide

    panel = fw.DecisionPanel(soaked, "commit")
    assert "0 of 1 required" in text(panel.evidence.value)
    monkeypatch.setenv("JUPYTERHUB_USER", "bob")
    approve(soaked.target, change_id="CHG-P", by="Bob B")
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    monkeypatch.setattr(decide, "EVIDENCE_S", 0.0)  # read again at once
    with pytest.raises(DecisionError, match="no commit decision within"):
        asyncio.run(panel.wait(timeout_s=0))  # nobody clicks: it gives up, nothing changed
    shown = text(panel.evidence.value)
    assert "approvals of Commit 1 of 1 required: Bob B (bob, " in shown
    assert "Commit waits" not in shown and soaked.decision("commit") is None
