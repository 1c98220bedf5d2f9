"""The campaign notebook in a real JupyterLab (issue 20): Run All runs the canary, then the
cell waits at the approval panel of wave 1; the operator types who and why and clicks
Approve; the same cell runs wave 1 and the campaign completes. What only a browser shows:
the panel really holds its cell while its click still reaches the kernel."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .jupyterlab import (
    cell_is_running,
    open_notebook,
    output_areas,
    require_browser,
    run_all,
    screenshot,
    wait_for_output_text,
    wait_until_cells_done,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from .conftest import JupyterLabFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]
require_browser(module_level=True)

ROOT = Path(__file__).resolve().parents[2]
#: Two simulated systems: a canary, then a wave of one that waits for an approval.
CAMPAIGN = """name = "browser-approval"
change_id = "CHG-BROWSER-CAMPAIGN"
concurrency = 1
waves = [1, 1]
approve_between_waves = true

[parameters]
config = "demo-config.toml"
packages = ["packages/os-hotfix.toml", "packages/orderdb-12.5.toml"]
mode = "auto"
decisions = { split = "proceed", merge = "proceed", commit = "commit" }
soak_minutes = 1
operator = "campaign-op"
reason = "monthly patches"

[[systems]]
name = "canary"
target = "sim://browser-canary"

[[systems]]
name = "second"
target = "sim://browser-second"
"""


def test_the_campaign_waits_at_the_approval_panel_and_goes_on_when_approved(
        jupyterlab_factory: JupyterLabFactory, page: Page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from ftkit.campaign import campaign_status, load_campaign
    from ftkit.decisions import account

    home = tmp_path / "ftkit-home"
    lab = jupyterlab_factory({"FTKIT_HOME": str(home),
                              "FTKIT_REPORTS": str(tmp_path / "reports")})
    for folder in ("runbooks", "examples"):
        shutil.copytree(ROOT / folder, lab.root / folder, dirs_exist_ok=True)
    (lab.root / "examples" / "browser-campaign.toml").write_text(CAMPAIGN)
    runbook = lab.root / "runbooks" / "campaign.ipynb"
    text, found = re.subn(r'campaign = \\"[^\\]*\\"',
                          'campaign = \\"../examples/browser-campaign.toml\\"',
                          runbook.read_text(), count=1)
    assert found == 1, "no campaign in the parameters cell"
    runbook.write_text(text)
    panel = open_notebook(page, lab, "runbooks/campaign.ipynb")
    run_all(page)

    asking = wait_for_output_text(panel, "Approve wave 1 of campaign browser-approval",
                                  timeout=240)
    expect(asking).to_contain_text("It starts second (1 system). Before it: 1 ended, 0 "
                                   "failed.")
    expect(asking).to_contain_text("ftkit campaign approve")
    assert cell_is_running(panel)  # the panel holds its cell: the result is not shown yet
    assert not output_areas(panel).filter(has_text="completed: 2 systems").count()
    # brought into view, its first field focused, the sticky line saying what waits
    expect(panel.locator(".ftkit-attention-bar")).to_contain_text(
        "Waiting for: the approval of wave 1 (campaign browser-approval)", timeout=10_000)
    expect(asking.locator('input[placeholder^="your name"]')).to_be_focused(timeout=10_000)
    expect(asking).to_be_in_viewport()
    approve = asking.get_by_role("button").filter(has_text="Approve wave 1")
    expect(approve).to_be_enabled(timeout=30_000)  # armed a moment after it is shown
    for placeholder, typed in (("your name", "Carol C"), ("why you approve", "canary fine")):
        field = asking.locator(f'input[placeholder^="{placeholder}"]')
        field.fill(typed)
        field.press("Tab")  # the change reaches the kernel
    screenshot(page, tmp_path / "approval-panel.png")
    approve.click()

    wait_for_output_text(panel, re.compile(r"Wave 1 approved by Carol C \(account "),
                         timeout=60)
    wait_for_output_text(panel, "campaign browser-approval completed: 2 systems",
                         timeout=300)
    wait_until_cells_done(panel, timeout=120)
    expect(panel.locator(".ftkit-attention-bar")).to_contain_text(
        "Campaign browser-approval: completed")
    screenshot(page, tmp_path / "campaign-completed.png")
    lab.delete_all_sessions()

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("FTKIT_HOME", str(home))
        status = campaign_status(load_campaign(lab.root / "examples" /
                                               "browser-campaign.toml"))
    assert status["approvals"] == {"1": {"by": "Carol C", "account": account(),
                                         "why": "canary fine"}}
    assert [(s["name"], s["outcome"]) for s in status["systems"]] == [
        ("canary", "committed"), ("second", "committed")]
