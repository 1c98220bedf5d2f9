"""The operator's upgrade in a real JupyterLab: Run All, decide in the widgets, commit.

What only a browser shows: the decision panel really blocks its cell until a person
clicks, the fields a person types into reach the kernel, and the executed cells render
the status bar, the system picture and the outage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .jupyterlab import (
    JupyterLabServer,
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
    from playwright.sync_api import Browser, Locator, Page

    from .conftest import JupyterLabFactory

pytestmark = pytest.mark.browser
require_browser(module_level=True)

ROOT = Path(__file__).resolve().parents[2]
REASON = 'input[placeholder^="why you decide this"]'
QUESTION_MERGE = "Merge: restart the applications"
QUESTION_COMMIT = "Commit the upgrade"
RUNBOOK = "runbooks/active-upgrade.ipynb"


def decision_panel(panel: Locator) -> Locator:
    """The newest cell output holding a Reason field: the panel asking now."""
    return output_areas(panel).filter(has=panel.page.locator(REASON)).last


def answer_label(answer: str) -> re.Pattern[str]:
    """A button's label for ANSWER: the answer first, then perhaps its step and what it
    costs ("Proceed — no outage, about 26 min", "Retry Install — …")."""
    return re.compile(rf"^\s*{re.escape(answer)}\b")


def decide(panel: Locator, answer: str, reason: str, operator: str = "alice") -> None:
    """Type operator and reason into the newest decision panel and click the answer."""
    outputs = output_areas(panel)
    for placeholder, text in (("your name", operator), ("why you decide this", reason)):
        field = outputs.locator(f'input[placeholder^="{placeholder}"]').last
        field.wait_for(timeout=60_000)
        field.fill(text)
        field.press("Tab")  # the change reaches the kernel
    # by its text: an icon (Retry's) makes the accessible name more than the label
    button = outputs.get_by_role("button").filter(
        has_text=answer_label(answer)).last
    button.click(timeout=30_000)


def merge_and_commit(panel: Locator) -> None:
    """Answer the merge panel (shown), then the commit panel, and wait for the end."""
    decide(panel, "Proceed", "browser test: merge")
    wait_for_output_text(panel, QUESTION_COMMIT, timeout=180)
    decide(panel, "Commit", "browser test: commit")
    wait_until_cells_done(panel, timeout=240)
    wait_for_output_text(panel, "committed", timeout=30)


def see_broken_install(page: Page, panel: Locator) -> Locator:
    """Install failed: Run All stops there; the Broken panel (what failed, Retry and
    Abort) is brought into view and JupyterLab raises a notification. Returns the panel."""
    from playwright.sync_api import expect

    wait_for_output_text(panel, "Broken at Install", timeout=120)
    wait_until_cells_done(panel, timeout=60)
    assert not output_has_text(panel, QUESTION_MERGE)
    broken = output_areas(panel).filter(has=retry_button(page)).last
    expect(broken).to_be_in_viewport(timeout=10_000)
    expect(retry_button(broken)).to_be_in_viewport()
    cell = panel.locator(".jp-Cell").filter(has=retry_button(page)).last
    expect(cell.locator(".jp-OutputArea-output").filter(has_text="Broken at Install").first
           ).to_be_in_viewport()  # what failed shows with the buttons
    toast = page.locator(".jp-Notification-Toast-error")
    expect(toast).to_contain_text("Broken at Install", timeout=10_000)
    expect(panel.locator(".ftkit-attention-bar")).to_contain_text(
        "Broken at Install — decide Retry or Abort")
    # the operator looked elsewhere; the notification's Show takes them back
    panel.locator(".jp-WindowedPanel-outer").evaluate("el => el.scrollTop = 0")
    expect(broken).not_to_be_in_viewport()
    toast.get_by_role("button", name="Show").click()
    expect(broken).to_be_in_viewport(timeout=10_000)
    return broken


def retry_button(scope: Locator | Page) -> Locator:
    # by its text: an icon makes the accessible name more than the label
    return scope.locator("button").filter(has_text=answer_label("Retry"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's $FTKIT_HOME, shared by the test process and the lab's kernels."""
    path = tmp_path / "ftkit-home"
    monkeypatch.setenv("FTKIT_HOME", str(path))
    return path


def run_upgrade_runbook(jupyterlab_factory: JupyterLabFactory, page: Page,
                        home: Path) -> tuple[JupyterLabServer, Locator]:
    """A lab whose kernels see HOME, the runbooks and examples in it; Run All on the
    upgrade runbook (interactive mode, the default). Returns the lab and the notebook
    panel."""
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
    return lab, panel


@pytest.fixture(scope="module")
def committed(jupyterlab_factory, browser: Browser,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One walk-through, shared by the tests below: Run All, split, merge, commit by
    clicking, checking on the way that each panel is brought into view; then the notebook
    saved and reopened. Yields what was seen (texts, the reopened outputs)."""
    from playwright.sync_api import expect

    tmp_path = tmp_path_factory.mktemp("committed")
    home = tmp_path / "ftkit-home"
    seen: dict[str, Any] = {"tmp_path": tmp_path, "home": home}
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("FTKIT_HOME", str(home))
        try:
            lab, panel = run_upgrade_runbook(jupyterlab_factory, page, home)

            # The split decision blocks its cell: nothing after it has run.
            field = output_areas(panel).locator(REASON)
            field.first.wait_for(timeout=120_000)
            seen["running"] = cell_is_running(panel)
            seen["split before"] = output_has_text(panel, "the session is Split / ")
            time.sleep(1.0)
            seen["still running"] = cell_is_running(panel)

            # Run All left the view at the last cell; the runbook brought the split panel
            # into view, its Reason field focused; the sticky line says what it waits for.
            split = decision_panel(panel)
            expect(split).to_be_in_viewport(timeout=10_000)
            expect(split.locator(REASON)).to_be_focused()
            line = panel.locator(".ftkit-attention-bar")
            expect(line).to_contain_text("Waiting for: the split decision")
            seen["line height"] = line.bounding_box()["height"]
            # scrolled away, the line stays in view and leads back
            panel.locator(".jp-WindowedPanel-outer").evaluate(
                "el => el.scrollTop = el.scrollHeight")
            expect(split).not_to_be_in_viewport()
            expect(line).to_be_in_viewport()
            line.get_by_role("button").click()
            expect(split).to_be_in_viewport()
            screenshot(page, tmp_path / "split-decision.png")

            decide(panel, "Proceed", "browser test: split")
            wait_for_output_text(panel, QUESTION_MERGE, timeout=120)
            # the next panel is brought into view in its turn
            expect(line).to_contain_text("Waiting for: the merge decision", timeout=30_000)
            merge = decision_panel(panel)
            expect(merge).to_be_in_viewport(timeout=10_000)
            expect(merge.locator(REASON)).to_be_focused()
            decide(panel, "Proceed", "browser test: merge")
            wait_for_output_text(panel, QUESTION_COMMIT, timeout=180)
            expect(line).to_contain_text("Waiting for: the commit decision", timeout=30_000)
            commit = decision_panel(panel)
            expect(commit).to_be_in_viewport(timeout=10_000)
            seen["commit panel"] = commit.inner_text()
            decide(panel, "Commit", "browser test: commit")
            wait_until_cells_done(panel, timeout=240)
            wait_for_output_text(panel, "committed", timeout=30)
            expect(line).to_contain_text("Finished: committed")
            screenshot(page, tmp_path / "committed.png")

            # the change record as saved, opened again later
            page.keyboard.press("Control+s")
            expect(panel.locator(".jp-mod-dirty")).to_have_count(0, timeout=30_000)
            lab.delete_all_sessions()
            panel = open_notebook(page, lab, "runbooks/active-upgrade.ipynb")
            time.sleep(2.5)  # the widget manager gives a missing model 2 s before it says so
            seen["reopened"] = output_areas(panel).all_inner_texts()
            yield seen
        finally:
            context.close()


def test_operator_commits_an_upgrade_in_jupyterlab(committed: dict[str, Any]) -> None:
    # the split panel blocked its cell until the click: nothing after it had run
    assert committed["running"] and committed["still running"]
    assert not committed["split before"]  # ExecuteSplit had not run
    assert committed["line height"] < 40  # the sticky line is one line at 1400 px

    # The decisions reached the journal as a person's clicks.
    from ftkit.journal import Journal

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("FTKIT_HOME", str(committed["home"]))
        with Journal.open("sim://demo") as journal:
            decisions = [e.detail for e in journal.entries(kinds=["decision"])]
    assert [d["name"] for d in decisions] == ["split", "merge", "commit"]
    assert {d["source"] for d in decisions} == {"widget"}
    assert decisions[-1]["why"] == "browser test: commit"
    assert {d["who"] for d in decisions} == {"alice"}


def test_commit_panel_shows_the_measured_outage(committed: dict[str, Any]) -> None:
    from ftkit.process import observe

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("FTKIT_HOME", str(committed["home"]))
        outage = observe("sim://demo").facts()["outage_s"]  # the merge's, measured
    assert outage > 0
    shown = [float(n) for n in re.findall(r"(\d+(?:\.\d+)?)\s*s\b",
                                          committed["commit panel"])]
    assert any(abs(n - outage) <= 0.5 for n in shown), (
        f"the commit panel does not show the measured outage ({outage:g} s): "
        f"{committed['commit panel']!r}")


def test_saved_notebook_reopens_without_missing_widgets(committed: dict[str, Any]) -> None:
    reopened = committed["reopened"]
    assert any("committed" in text for text in reopened)  # the outputs were saved
    assert not [t for t in reopened if "model not found" in t]


def test_operator_retries_a_broken_install_then_commits(jupyterlab_factory, page: Page,
                                                        tmp_path: Path, home: Path) -> None:
    from ftkit.journal import Journal
    from ftkit.sim.driver import create_system

    driver = create_system("sim://demo")
    driver.inject("installer-fail")  # the first installer exits 1603, once
    _, panel = run_upgrade_runbook(jupyterlab_factory, page, home)
    decide(panel, "Proceed", "browser test: split")
    see_broken_install(page, panel)
    screenshot(page, tmp_path / "broken.png")
    decide(panel, "Retry", "browser test: installer log read, retry")
    wait_for_output_text(panel, "Retry succeeded", timeout=120)

    run_all(page)  # carries on: nothing done twice, no decision asked twice
    wait_for_output_text(panel, "decided earlier by alice", timeout=120)
    wait_for_output_text(panel, QUESTION_MERGE, timeout=120)
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


def test_operator_aborts_a_broken_install_and_finishes_from_the_panels(
        jupyterlab_factory, page: Page, tmp_path: Path, home: Path) -> None:
    from playwright.sync_api import expect

    from ftkit.journal import Journal
    from ftkit.process import observe
    from ftkit.sim.driver import create_system

    create_system("sim://demo").inject("installer-fail")
    lab, panel = run_upgrade_runbook(jupyterlab_factory, page, home)
    decide(panel, "Proceed", "browser test: split")
    broken = see_broken_install(page, panel)
    decide(panel, "Abort", "browser test: installer broken, abort")
    expect(panel.locator(".ftkit-attention-bar")).to_contain_text("Next: Finish",
                                                                  timeout=120_000)
    # resolved: the red notification goes with the Broken state it announced
    expect(page.locator(".jp-Notification-Toast-error")).to_have_count(0, timeout=30_000)
    # the decision is taken: its buttons are disabled; the next step is a button
    expect(retry_button(broken)).to_be_disabled()
    expect(broken.locator("button").filter(has_text=answer_label("Abort"))
           ).to_be_disabled()
    finish = broken.locator("button").filter(has_text="Finish")
    expect(finish).to_be_enabled()
    finish.click()

    # "finished" is said once the journal has the Finish, and every view follows it:
    # the sticky line, the header and the result's box (whose cell ran before the click)
    line = panel.locator(".ftkit-attention-bar")
    expect(line).to_contain_text("Finished: aborted", timeout=120_000)
    wait_for_output_text(panel, re.compile(r"Session \d+ finished: aborted"), timeout=30)
    wait_for_output_text(panel, "Ended from a panel", timeout=30)
    header = wait_for_output_text(panel, "Change record", timeout=30)
    expect(header).to_contain_text(re.compile(r"outcome\s*aborted"))
    shot(page, tmp_path, "1-2-abort-finished-from-panels.png")
    with Journal.open("sim://demo") as journal:
        (record,) = journal.sessions()
    assert record.outcome == "aborted" and record.ended
    status = observe("sim://demo").system()
    assert not status.split and status.duplex

    # saved and reopened: the record reads the end, and no widget is missing
    page.keyboard.press("Control+s")
    expect(panel.locator(".jp-mod-dirty")).to_have_count(0, timeout=30_000)
    lab.delete_all_sessions()
    panel = open_notebook(page, lab, "runbooks/active-upgrade.ipynb")
    wait_for_output_text(panel, "Ended from a panel", timeout=30)
    page.wait_for_timeout(2500)  # the widget manager gives a missing model 2 s to appear
    reopened = output_areas(panel).all_inner_texts()
    assert not [t for t in reopened if "model not found" in t]
    shot(page, tmp_path, "2-aborted-record-reopened.png")


def wait_for_kernel(lab: JupyterLabServer, notebook: str, state: str,
                    timeout: float = 120.0) -> None:
    """Wait until NOTEBOOK's kernel reports STATE (a restart ends in "idle")."""
    deadline = time.monotonic() + timeout
    while (kernel := lab.kernel_for(notebook)) is None or \
            kernel.get("execution_state") != state:
        if time.monotonic() > deadline:
            raise AssertionError(f"{notebook}'s kernel is not {state} after {timeout:g} s: "
                                 f"{kernel}")
        time.sleep(0.2)


def wait_for_saved(lab: JupyterLabServer, notebook: str,
                   saved: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> None:
    """Wait until NOTEBOOK as saved on disk is SAVED (the save has landed, as expected)."""
    path = lab.root / notebook
    deadline = time.monotonic() + timeout
    while not saved(content := _read_saved(path)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{notebook} was not saved as expected in {timeout:g} s; "
                                 f"missing widget models: {missing_widget_models(content)}")
        time.sleep(0.2)


def _read_saved(path: Path) -> dict[str, Any]:
    """The notebook at PATH, or an empty one while a save is half written (JupyterLab's
    save was seen to leave the file empty for an instant)."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {"metadata": {}, "cells": []}
    return content if isinstance(content, dict) else {"metadata": {}, "cells": []}


def outputs_html(notebook: dict[str, Any]) -> str:
    """The text/html of NOTEBOOK's outputs, joined (not its metadata)."""
    return "\n".join("".join(out.get("data", {}).get("text/html", ""))
                     for cell in notebook["cells"] for out in cell.get("outputs", []))


def missing_widget_models(notebook: dict[str, Any]) -> list[str]:
    """The widget views of NOTEBOOK's outputs whose model state it does not keep: each
    would reopen as "Error displaying widget: model not found"."""
    kept = notebook.get("metadata", {}).get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}).get("state", {})
    return [view["model_id"] for cell in notebook["cells"] for out in cell.get("outputs", [])
            if (view := out.get("data", {}).get("application/vnd.jupyter.widget-view+json"))
            and view["model_id"] not in kept]


SHOTS = Path(os.environ.get("FTKIT_SHOTS", "")) if os.environ.get("FTKIT_SHOTS") else None


def shot(page: Page, tmp_path: Path, name: str) -> None:
    """A screenshot under tmp_path, and under $FTKIT_SHOTS too when that is set."""
    screenshot(page, tmp_path / name)
    if SHOTS is not None:
        screenshot(page, SHOTS / name)


@pytest.mark.slow
def test_a_repeated_click_after_split_proceed_does_not_merge(
        jupyterlab_factory, page: Page, tmp_path: Path, home: Path) -> None:
    """The operator double-clicks Proceed on the split panel (a second click a second
    later, at the same spot): the merge panel that appeared meanwhile takes nothing from
    it (its Reason is empty and typed per decision, its buttons are armed only after a
    moment, and its outage button is not where Proceed was). Nothing merges."""
    from playwright.sync_api import expect

    from ftkit.journal import Journal

    _, panel = run_upgrade_runbook(jupyterlab_factory, page, home)
    outputs = output_areas(panel)
    split = decision_panel(panel)
    expect(split.locator(REASON)).to_be_focused(timeout=120_000)
    expect(split.locator(REASON)).to_have_value("")  # typed per decision, not pre-filled
    proceed = split.get_by_role("button").filter(has_text=answer_label("Proceed"))
    expect(proceed).to_be_enabled(timeout=30_000)
    box = proceed.bounding_box()  # where the operator clicks, twice
    assert box is not None
    decide(panel, "Proceed", "browser test: split")
    time.sleep(1.0)  # the operator's second click, a second after the first
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    shot(page, tmp_path, "3-repeated-click-landed.png")

    wait_for_output_text(panel, QUESTION_MERGE, timeout=120)
    merge = decision_panel(panel)
    grave = merge.get_by_role("button").filter(has_text=answer_label("Proceed"))
    expect(grave).to_be_enabled(timeout=30_000)  # armed a moment after it was shown
    expect(panel.locator(".ftkit-attention-bar")).to_contain_text(
        "Waiting for: the merge decision")
    expect(merge.locator(REASON)).to_have_value("")
    grave_box = grave.bounding_box()
    assert grave_box is not None
    assert not (grave_box["x"] <= box["x"] + box["width"] / 2
                <= grave_box["x"] + grave_box["width"]
                and grave_box["y"] <= box["y"] + box["height"] / 2
                <= grave_box["y"] + grave_box["height"])
    shot(page, tmp_path, "3-after-repeated-click.png")
    assert not output_has_text(panel, "merge: proceed")  # nothing running for it
    assert "Decided" not in merge.inner_text()  # nor decided in its panel
    assert outputs.filter(has_text="ExecuteMerge done").count() == 0
    with Journal.open("sim://demo") as journal:
        decided = [e.detail["name"] for e in journal.entries(kinds=["decision"])]
        steps = [e.step for e in journal.entries(kinds=["intent"])]
    assert decided == ["split"]
    assert "PrepareMerge" not in steps and "ExecuteMerge" not in steps


@pytest.mark.slow
def test_after_a_kernel_restart_the_panels_say_so_and_run_all_resumes_with_evidence(
        jupyterlab_factory, page: Page, tmp_path: Path, home: Path) -> None:
    """The kernel behind the merge panel is restarted: the panel and the sticky line say
    that its kernel stopped, a click on it explains; saved then and reopened, the notebook
    shows every display of the stopped kernel as its static rendering (no "model not
    found"), the merge panel saying its kernel stopped; Run All resumes where the journal
    stands and shows the steps done before, with their evidence, then commits."""
    from playwright.sync_api import expect

    lab, panel = run_upgrade_runbook(jupyterlab_factory, page, home)
    decide(panel, "Proceed", "browser test: split")
    wait_for_output_text(panel, QUESTION_MERGE, timeout=120)
    line = panel.locator(".ftkit-attention-bar")
    expect(line).to_contain_text("Waiting for: the merge decision", timeout=30_000)
    merge = decision_panel(panel)
    # saved mid-run (a run abandoned here): the widgets' state is saved with it (the
    # toolbar's Save: the focused Reason field keeps Ctrl+S from JupyterLab)
    panel.locator('.jp-Toolbar [data-command="docmanager:save"]').click()
    wait_for_saved(lab, RUNBOOK, lambda nb: bool(nb["metadata"].get("widgets"))
                   and not missing_widget_models(nb))
    # the operator restarts the kernel: Kernel → Restart Kernel…, then Restart
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Kernel$")).click()
    page.locator(".lm-Menu:visible .lm-Menu-item", has=page.locator(
        ".lm-Menu-itemLabel", has_text=re.compile(r"^Restart Kernel…$"))).click()
    page.locator(".jp-Dialog button.jp-mod-accept").click()

    stopped = "this panel's kernel stopped — Run All to resume where the journal stands"
    expect(line).to_contain_text(stopped, timeout=60_000)
    note = merge.locator(".ftkit-dead-note")
    expect(note).to_contain_text(stopped, ignore_case=True)
    merge.get_by_role("button").filter(has_text=answer_label("Proceed")).click(force=True)
    expect(note).to_contain_text("a click here does nothing")
    shot(page, tmp_path, "4-kernel-restarted-panel.png")

    # saved now and reopened: what the stopped kernel showed is kept as static renderings
    wait_for_kernel(lab, RUNBOOK, "idle")  # restarted
    panel.locator('.jp-Toolbar [data-command="docmanager:save"]').click()
    wait_for_saved(lab, RUNBOOK, lambda nb: not missing_widget_models(nb)
                   and stopped.lower() in outputs_html(nb).lower())
    lab.delete_all_sessions()
    panel = open_notebook(page, lab, "runbooks/active-upgrade.ipynb")
    line = panel.locator(".ftkit-attention-bar")
    wait_for_output_text(panel, QUESTION_MERGE, timeout=60)
    page.wait_for_timeout(2500)  # the widget manager gives a missing model 2 s to appear
    reopened = output_areas(panel).all_inner_texts()
    assert not [t for t in reopened if "model not found" in t]
    assert any(stopped.lower() in t.lower() and QUESTION_MERGE in t for t in reopened)
    assert any("upgrade state" in t.lower() for t in reopened)  # the status bar, static
    shot(page, tmp_path, "4-restarted-saved-reopened.png")

    run_all(page)
    wait_for_output_text(panel, "split: proceed — decided earlier by alice", timeout=120)
    for step in ("PrepareSplit", "ExecuteSplit", "Install"):
        wait_for_output_text(panel, f"{step}: done earlier in session", timeout=60)
    wait_for_output_text(panel, "Upgrade side verified", timeout=30)  # the install's evidence
    expect(line).to_contain_text("Waiting for: the merge decision", timeout=60_000)
    shot(page, tmp_path, "4-run-all-after-restart.png")
    merge_and_commit(panel)


@pytest.mark.slow
def test_the_sticky_line_shows_the_install_and_the_soak_in_progress(
        jupyterlab_factory, page: Page, tmp_path: Path, home: Path) -> None:
    """At a time scale where steps take real seconds, the line shows the running step with
    its percentage and the time left from the plan's estimate, then the soak's progress."""
    from playwright.sync_api import expect

    from ftkit.sim.driver import create_system

    create_system("sim://demo", time_scale=0.01)  # Install: about 16 s, the soak 18 s
    _, panel = run_upgrade_runbook(jupyterlab_factory, page, home)
    line = panel.locator(".ftkit-attention-bar")
    decide(panel, "Proceed", "browser test: split")
    running = re.compile(r"Running: Install — \d+% · about \d+(\.\d)? (s|min|h) left")
    expect(line).to_contain_text(running, timeout=120_000)
    shot(page, tmp_path, "5-install-in-progress.png")
    wait_for_output_text(panel, QUESTION_MERGE, timeout=180)
    decide(panel, "Proceed", "browser test: merge")
    expect(line).to_contain_text(re.compile(r"Soaking: \d+% · about .* left, then the commit "
                                            r"decision"), timeout=180_000)
    shot(page, tmp_path, "5-soak-in-progress.png")
    wait_for_output_text(panel, QUESTION_COMMIT, timeout=180)

    # Commit, a long step the click runs below its panel: the line leads there, wherever
    # the operator has scrolled meanwhile
    decide(panel, "Commit", "browser test: commit")
    expect(line).to_contain_text(re.compile(r"Running: Commit — \d+%"), timeout=120_000)
    resync = panel.get_by_text("commit: RDR resync:").last
    resync.wait_for(timeout=120_000)
    panel.locator(".jp-WindowedPanel-outer").first.evaluate("el => { el.scrollTop = 0; }")
    expect(resync).not_to_be_in_viewport()
    line.get_by_role("button").click()
    expect(resync).to_be_in_viewport(timeout=10_000)
    shot(page, tmp_path, "5-commit-in-progress.png")
    expect(line).to_contain_text("Finished: committed", timeout=240_000)
