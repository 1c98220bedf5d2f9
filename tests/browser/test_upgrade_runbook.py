"""The operator's upgrade in a real JupyterLab: Run All, decide in the widgets, commit.

What only a browser shows: the decision panel really blocks its cell until a person
clicks, the fields a person types into reach the kernel, and the executed cells render
the status bar, the system picture and the outage.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .jupyterlab import (
    cell_is_running,
    open_notebook,
    output_areas,
    output_has_text,
    require_browser,
    run_all,
    screenshot,
    wait_for_output_text,
    wait_until_cells_done,
)

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

    from .conftest import JupyterLabFactory

pytestmark = pytest.mark.browser
require_browser(module_level=True)

ROOT = Path(__file__).resolve().parents[2]
REASON = 'input[placeholder="why you decide this"]'


def decision_panel(panel: Locator) -> Locator:
    """The newest cell output holding a Reason field: the panel asking now."""
    return output_areas(panel).filter(has=panel.page.locator(REASON)).last


def decide(panel: Locator, answer: str, reason: str, operator: str = "alice") -> None:
    """Type operator and reason into the newest decision panel and click the answer."""
    outputs = output_areas(panel)
    for placeholder, text in (("your name", operator), ("why you decide this", reason)):
        field = outputs.locator(f'input[placeholder="{placeholder}"]').last
        field.wait_for(timeout=60_000)
        field.fill(text)
        field.press("Tab")  # the change reaches the kernel
    # by its text: an icon (Retry's) makes the accessible name more than the label
    button = outputs.get_by_role("button").filter(
        has_text=re.compile(rf"^\s*{re.escape(answer)}\s*$")).last
    button.click(timeout=30_000)


def merge_and_commit(panel: Locator) -> None:
    """Answer the merge panel (shown), then the commit panel, and wait for the end."""
    decide(panel, "Proceed", "browser test: merge")
    wait_for_output_text(panel, "Commit the upgrade", timeout=180)
    decide(panel, "Commit", "browser test: commit")
    wait_until_cells_done(panel, timeout=240)
    wait_for_output_text(panel, "committed", timeout=30)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's $FTKIT_HOME, shared by the test process and the lab's kernels."""
    path = tmp_path / "ftkit-home"
    monkeypatch.setenv("FTKIT_HOME", str(path))
    return path


def run_upgrade_runbook(jupyterlab_factory: JupyterLabFactory, page: Page,
                        home: Path) -> Locator:
    """A lab whose kernels see HOME, the runbooks and examples in it; Run All on the
    upgrade runbook (interactive mode, the default). Returns the notebook panel."""
    lab = jupyterlab_factory({"FTKIT_HOME": str(home),
                              "FTKIT_REPORTS": str(home.parent / "reports")})
    for folder in ("runbooks", "examples"):
        shutil.copytree(ROOT / folder, lab.root / folder, dirs_exist_ok=True)
    # the operator fills in the parameters cell first: who runs it, for which change
    runbook = lab.root / "runbooks" / "active-upgrade.ipynb"
    text = runbook.read_text()
    for name, value in (("change_id", "CHG-BROWSER-1"), ("operator", "alice")):
        text, found = re.subn(rf'"{name} = \\"\\"', f'"{name} = \\"{value}\\"', text)
        assert found == 1, f"no empty {name} in the parameters cell"
    runbook.write_text(text)
    panel = open_notebook(page, lab, "runbooks/active-upgrade.ipynb")
    run_all(page)
    return panel


def test_operator_commits_an_upgrade_in_jupyterlab(jupyterlab_factory, page: Page,
                                                   tmp_path: Path, home: Path) -> None:
    from playwright.sync_api import expect

    panel = run_upgrade_runbook(jupyterlab_factory, page, home)

    # The split decision blocks its cell: nothing after it has run.
    field = output_areas(panel).locator(REASON)
    field.first.wait_for(timeout=120_000)
    assert cell_is_running(panel)

    # Run All left the view at the last cell; the runbook brought the split panel into
    # view, its Reason field focused, and the sticky line says what it waits for.
    split = decision_panel(panel)
    expect(split).to_be_in_viewport(timeout=10_000)
    expect(split.locator(REASON)).to_be_focused()
    line = panel.locator(".ftkit-attention-bar")
    expect(line).to_contain_text("Waiting for: the split decision")
    assert line.bounding_box()["height"] < 40  # one line at 1400 px
    # scrolled away, the line stays in view and leads back
    panel.locator(".jp-WindowedPanel-outer").evaluate("el => el.scrollTop = el.scrollHeight")
    expect(split).not_to_be_in_viewport()
    expect(line).to_be_in_viewport()
    line.get_by_role("button").click()
    expect(split).to_be_in_viewport()
    assert not output_has_text(panel, "the session is Split / ")  # ExecuteSplit has not run
    time.sleep(1.0)
    assert cell_is_running(panel)  # still waiting for a person
    screenshot(page, tmp_path / "split-decision.png")

    decide(panel, "Proceed", "browser test: split")
    wait_for_output_text(panel, "Merge: restart the applications", timeout=120)
    # the next panel is brought into view in its turn
    expect(line).to_contain_text("Waiting for: the merge decision", timeout=30_000)
    merge = decision_panel(panel)
    expect(merge).to_be_in_viewport(timeout=10_000)
    expect(merge.locator(REASON)).to_be_focused()
    merge_and_commit(panel)
    expect(line).to_contain_text("Finished: committed")
    screenshot(page, tmp_path / "committed.png")

    # The decisions reached the journal as a person's clicks.
    from ftkit.journal import Journal

    with Journal.open("sim://demo") as journal:
        decisions = [e.detail for e in journal.entries(kinds=["decision"])]
    assert [d["name"] for d in decisions] == ["split", "merge", "commit"]
    assert {d["source"] for d in decisions} == {"widget"}
    assert decisions[-1]["why"] == "browser test: commit"
    assert {d["who"] for d in decisions} == {"alice"}


def test_operator_retries_a_broken_install_then_commits(jupyterlab_factory, page: Page,
                                                        tmp_path: Path, home: Path) -> None:
    from ftkit.journal import Journal
    from ftkit.sim.driver import create_system

    driver = create_system("sim://demo")
    driver.inject("installer-fail")  # the first installer exits 1603, once
    panel = run_upgrade_runbook(jupyterlab_factory, page, home)
    decide(panel, "Proceed", "browser test: split")

    # Install fails: Run All stops there, with the way on and Retry/Abort in reach.
    wait_for_output_text(panel, "Broken at Install", timeout=120)
    wait_until_cells_done(panel, timeout=60)
    assert not output_has_text(panel, "Merge: restart the applications")
    screenshot(page, tmp_path / "broken.png")
    decide(panel, "Retry", "browser test: installer log read, retry")
    wait_for_output_text(panel, "Retry succeeded", timeout=120)

    run_all(page)  # carries on: nothing done twice, no decision asked twice
    wait_for_output_text(panel, "decided earlier by alice", timeout=120)
    merge_and_commit(panel)

    with Journal.open("sim://demo") as journal:
        (record,) = journal.sessions()
        decisions = [(e.detail["name"], e.detail["answer"], e.detail["source"])
                     for e in journal.entries(record.id, kinds=["decision"])]
        intents = [e.step for e in journal.entries(record.id, kinds=["intent"])]
    assert record.outcome == "committed"
    assert decisions == [("split", "proceed", "widget"), ("broken", "retry", "widget"),
                         ("merge", "proceed", "widget"), ("commit", "commit", "widget")]
    assert intents.count("ExecuteSplit") == 1 and intents.count("Install") == 2
    assert driver.lost_transactions() == 0 and driver.status().duplex
