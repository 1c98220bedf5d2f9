"""The commit panel in a real JupyterLab (issue 17): it shows the soak's evidence and the
approval state; the operator's own account is told it cannot approve its change; Commit
is refused until another account approves (``ftkit approve`` in a process of its own,
``$JUPYTERHUB_USER=bob``), which the waiting panel shows without a click; then the same
panel commits."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .jupyterlab import (
    open_notebook,
    output_areas,
    require_browser,
    run_all,
    screenshot,
    wait_for_output_text,
    wait_until_cells_done,
)
from .test_upgrade_runbook import (
    QUESTION_COMMIT,
    QUESTION_MERGE,
    answer_label,
    decide,
    decision_panel,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from .conftest import JupyterLabFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]
require_browser(module_level=True)

ROOT = Path(__file__).resolve().parents[2]
CHANGE = "CHG-BROWSER-APPROVE"
#: One approval at Commit and a probe every 20 s of the soak (no decision timeout: the
#: panel waits for its click).
CONTROLS = """include = ["demo-config.toml"]
probe_every_s = 20

[approvals]
commit = 1

[[custom_actions]]
name = "orderdb-health"
kind = "probe"
path = "actions/health.sh"
timeout_s = 30
"""


def approve_as(account: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``ftkit approve`` run by ACCOUNT (``$JUPYTERHUB_USER``) in a process of its own."""
    env = {**os.environ, "FTKIT_HOME": str(home), "JUPYTERHUB_USER": account}
    return subprocess.run([sys.executable, "-m", "ftkit", "approve", "sim://demo", "--change",
                           CHANGE, "--by", "Bob B", "--reason", "evidence read"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def test_commit_panel_shows_evidence_and_approvals_then_commits_once_approved(
        jupyterlab_factory: JupyterLabFactory, page: Page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from ftkit.journal import Journal

    home = tmp_path / "ftkit-home"
    lab = jupyterlab_factory({"FTKIT_HOME": str(home), "JUPYTERHUB_USER": "alice",
                              "FTKIT_REPORTS": str(tmp_path / "reports")})
    for folder in ("runbooks", "examples"):
        shutil.copytree(ROOT / folder, lab.root / folder, dirs_exist_ok=True)
    (lab.root / "examples" / "browser-approvals.toml").write_text(CONTROLS)
    runbook = lab.root / "runbooks" / "active-upgrade.ipynb"
    text = runbook.read_text()
    for pattern, value in ((r'change_id = \\"\\"', f'change_id = \\"{CHANGE}\\"'),
                           (r'operator = \\"\\"', 'operator = \\"alice\\"'),
                           (r'config = \\"[^\\]*\\"',
                            'config = \\"../examples/browser-approvals.toml\\"'),
                           (r"soak_minutes = 30", "soak_minutes = 1")):
        text, found = re.subn(pattern, value, text, count=1)
        assert found == 1, f"no {pattern} in the parameters cell"
    runbook.write_text(text)
    panel = open_notebook(page, lab, "runbooks/active-upgrade.ipynb")
    run_all(page)

    decide(panel, "Proceed", "browser test: split")
    wait_for_output_text(panel, QUESTION_MERGE, timeout=120)
    decide(panel, "Proceed", "browser test: merge")
    wait_for_output_text(panel, QUESTION_COMMIT, timeout=180)
    commit = decision_panel(panel)
    evidence = commit.locator(".ftkit-evidence")
    expect(evidence).to_contain_text("approvals of Commit", timeout=30_000)
    shown = re.sub(r"\s+", " ", evidence.inner_text())
    screenshot(page, tmp_path / "commit-panel.png")
    # the soak's evidence: three rounds of the probe, the outage, what was served and lost
    assert "probes 3 passed, 0 failed" in shown, shown
    assert re.search(r"measured outage of the merge \d+\.\d s at t=", shown), shown
    assert re.search(r"soak 1 min on the upgraded software, \d+ transactions acknowledged",
                     shown), shown
    assert "transactions lost 0" in shown, shown
    # the approval state, and that alice's own account cannot approve
    assert "approvals of Commit 0 of 1 required" in shown, shown
    assert ("Your account (alice) runs this change: it cannot approve it; another account "
            f"runs: ftkit approve sim://demo --change {CHANGE} --by YOUR-NAME") in shown, shown

    decide(panel, "Commit", "browser test: commit")  # refused: nothing recorded
    wait_for_output_text(panel, "Commit needs 1 approval(s) from an account other than alice",
                         timeout=60)
    own = approve_as("alice", home)  # the operator's account, from another process
    assert own.returncode == 2 and "own account cannot approve" in own.stderr
    given = approve_as("bob", home)
    assert given.returncode == 0, given.stderr

    # the waiting panel reads the approvals again: bob's shows without a click
    expect(evidence).to_contain_text(re.compile(r"1 of 1 required: Bob B \(bob, "),
                                     timeout=30_000)
    # the same panel, its fields as typed: Commit again
    commit.get_by_role("button").filter(has_text=answer_label("Commit")).last.click()
    wait_until_cells_done(panel, timeout=240)
    wait_for_output_text(panel, "committed", timeout=30)
    # the decided panel (now its static rendering) shows who approved
    decided = output_areas(panel).filter(has_text="approvals of Commit").last
    expect(decided).to_contain_text(re.compile(r"1 of 1 required: Bob B \(bob, "),
                                    timeout=30_000)
    assert not output_areas(panel).filter(has_text="Commit waits for").count()
    screenshot(page, tmp_path / "committed.png")
    lab.delete_all_sessions()

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("FTKIT_HOME", str(home))
        with Journal.open("sim://demo") as journal:
            (session,) = journal.sessions()
            decisions = [e.detail for e in journal.entries(kinds=["decision"])]
            approvals = [e.detail["approval"] for e in journal.entries(kinds=["info"])
                         if isinstance(e.detail, dict) and "approval" in e.detail]
    assert session.outcome == "committed"
    assert [(d["name"], d["answer"], d["source"]) for d in decisions] == [
        ("split", "proceed", "widget"), ("merge", "proceed", "widget"),
        ("commit", "commit", "widget")]
    assert decisions[-1]["why"] == "browser test: commit"
    assert [(a["account"], a["by"]) for a in approvals] == [("bob", "Bob B")]
