"""Prove the JupyterLab harness: a cell blocks on an ipywidgets button until it is clicked.

The blocking idiom is the one runbooks use (jupyter-ui-poll hangs on ipykernel >= 7.1):
a top-level `await asyncio.sleep(...)` loop until the button's handler sets a flag.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .jupyterlab import (
    JupyterLabServer,
    cell_is_running,
    click_widget_button,
    open_notebook,
    output_has_text,
    require_browser,
    run_all,
    screenshot,
    wait_for_output_text,
    wait_until_cells_done,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser
require_browser(module_level=True)

BLOCKING_CELL = """\
import asyncio
import time

import ipywidgets as widgets
from IPython.display import display

clicked = False


def _on_click(_button):
    global clicked
    clicked = True


button = widgets.Button(description="Proceed")
button.on_click(_on_click)
display(button)

deadline = time.monotonic() + 120
while not clicked:
    if time.monotonic() > deadline:
        raise TimeoutError("nobody clicked Proceed within 120 s")
    await asyncio.sleep(0.05)
print("decided: proceed")
"""

AFTER_CELL = 'print("after the decision")'


def write_notebook(path: Path, sources: list[str]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, path)


def test_button_unblocks_running_cell(
    jupyterlab: JupyterLabServer, page: Page, tmp_path: Path
) -> None:
    name = "blocking-decision.ipynb"
    write_notebook(jupyterlab.root / name, [BLOCKING_CELL, AFTER_CELL])

    panel = open_notebook(page, jupyterlab, name)
    run_all(page)

    wait_for_output_text(panel, "Proceed", timeout=30)
    # The source of cell 1 contains "decided: proceed" too: only outputs may count.
    assert cell_is_running(panel), "the cell should block until the button is clicked"
    page.wait_for_timeout(500)  # give a non-blocking cell time to betray itself
    assert cell_is_running(panel)
    assert not output_has_text(panel, "decided")
    assert not output_has_text(panel, "after the decision")

    screenshot(page, tmp_path / "blocked.png")
    click_widget_button(panel, "Proceed")

    wait_for_output_text(panel, "decided: proceed", timeout=30)
    wait_for_output_text(panel, "after the decision", timeout=30)
    wait_until_cells_done(panel, timeout=30)
    assert not cell_is_running(panel)
    screenshot(page, tmp_path / "decided.png")


def test_a_page_whose_theme_failed_to_load_is_loaded_again(
    jupyterlab: JupyterLabServer, page: Page
) -> None:
    # What a busy machine's first load met: the theme stylesheet's request failed,
    # JupyterLab said "Error Loading Theme" and never showed its toolbar.
    name = "theme.ipynb"
    write_notebook(jupyterlab.root / name, ['print("the page works")'])
    failed: list[str] = []

    def fail_once(route: Any) -> None:
        if failed:
            route.continue_()
        else:
            failed.append(route.request.url)
            route.abort()

    page.route(re.compile(r"/lab/api/themes/.*\.css"), fail_once)
    panel = open_notebook(page, jupyterlab, name)
    assert len(failed) == 1  # the first load met the failure; the second one worked
    run_all(page)
    wait_for_output_text(panel, "the page works", timeout=60)
    assert page.locator(".jp-Dialog").count() == 0


def test_server_isolated_and_reachable(jupyterlab: JupyterLabServer) -> None:
    assert "started" in jupyterlab.api("GET", "/api/status")
    assert jupyterlab.url("lab", query="reset").endswith(f"/lab?reset&token={jupyterlab.token}")
    for var in (
        "JUPYTERLAB_SETTINGS_DIR",
        "JUPYTERLAB_WORKSPACES_DIR",
        "JUPYTER_RUNTIME_DIR",
        "JUPYTER_CONFIG_DIR",
        "IPYTHONDIR",
    ):
        assert Path(jupyterlab.env[var]).is_relative_to(jupyterlab.root.parent), var
    settings = Path(jupyterlab.env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab"
    tracker = json.loads(
        (settings / "notebook-extension" / "tracker.jupyterlab-settings").read_text()
    )
    assert tracker == {"autoStartDefaultKernel": True, "windowingMode": "none"}
    notification = json.loads(
        (settings / "apputils-extension" / "notification.jupyterlab-settings").read_text()
    )
    assert notification == {"fetchNews": "false", "checkForUpdates": False}


def test_factory_passes_env_to_kernels(
    jupyterlab_factory: Callable[..., JupyterLabServer], page: Page, tmp_path: Path
) -> None:
    lab = jupyterlab_factory({"FTKIT_HOME": str(tmp_path)})
    assert jupyterlab_factory({"FTKIT_HOME": str(tmp_path)}) is lab  # shared per env
    write_notebook(lab.root / "env.ipynb", ['import os; print("home=" + os.environ["FTKIT_HOME"])'])

    panel = open_notebook(page, lab, "env.ipynb")
    run_all(page)

    wait_for_output_text(panel, f"home={tmp_path}", timeout=30)

    # Reopening gets a new kernel, not the one the former page left running.
    first_kernel = lab.kernel_for("env.ipynb")
    assert first_kernel is not None
    open_notebook(page, lab, "env.ipynb")
    second_kernel = lab.kernel_for("env.ipynb")
    assert second_kernel is not None
    assert second_kernel["id"] != first_kernel["id"]
