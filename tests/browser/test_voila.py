"""The upgrade runbook as an operator app without code: ``ftkit app`` serves it through
Voilà; the page runs it in interactive mode, shows no code, and the operator decides in
its panels (the same engine as in JupyterLab) until the upgrade is committed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .jupyterlab import free_port, require_browser
from .test_upgrade_runbook import QUESTION_COMMIT, QUESTION_MERGE, REASON, decide, shot

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
require_browser(module_level=True)


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``ftkit app active-upgrade`` on a free port, its kernels under this test's
    $FTKIT_HOME; the page's address. Stopped (its whole process group) at the end."""
    home = tmp_path / "ftkit-home"
    monkeypatch.setenv("FTKIT_HOME", str(home))
    port = free_port()
    env = {**os.environ, "FTKIT_HOME": str(home), "FTKIT_REPORTS": str(tmp_path / "reports"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log = (tmp_path / "app.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "ftkit", "app", "active-upgrade", "-p", "system", "sim://demo",
         "-p", "change_id", "CHG-VOILA-1", "-p", "operator", "alice", "-p", "reason",
         "monthly patches", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:  # the port answers: Voilà is up (a GET would start a run)
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", port), timeout=1):
                break
            assert process.poll() is None, (tmp_path / "app.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "app.log").read_text()
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/"
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def test_the_upgrade_runs_as_an_app_without_code(app: str, page: Page,
                                                 tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from ftkit.journal import Journal

    page.goto(app, wait_until="commit", timeout=120_000)  # it loads until the run ends
    body = page.locator("body")
    field = body.locator(REASON)
    field.first.wait_for(timeout=180_000)  # the split panel, in interactive mode
    shown = body.inner_text()
    assert "await fw.ask(" not in shown and "import ftkit_widgets" not in shown  # no code
    line = page.locator(".ftkit-attention-bar")
    expect(line).to_contain_text("Waiting for: the split decision", timeout=30_000)
    shot(page, tmp_path, "6-voila-split-panel.png")
    decide(body, "Proceed", "app test: split")
    body.locator(".jp-OutputArea-output").filter(has_text=QUESTION_MERGE).first.wait_for(
        timeout=120_000)
    decide(body, "Proceed", "app test: merge")
    body.locator(".jp-OutputArea-output").filter(has_text=QUESTION_COMMIT).first.wait_for(
        timeout=180_000)
    decide(body, "Commit", "app test: commit")
    expect(line).to_contain_text("Finished: committed", timeout=240_000)
    shot(page, tmp_path, "6-voila-committed.png")
    with Journal.open("sim://demo") as journal:
        (record,) = journal.sessions()
        sources = {e.detail["source"] for e in journal.entries(record.id, kinds=["decision"])}
    assert record.outcome == "committed" and record.change_id == "CHG-VOILA-1"
    assert sources == {"widget"}

    # the app archives its record as ftkit run does: the executed runbook, verified
    body.locator(".jp-OutputArea-output").filter(has_text="Its record is archived").wait_for(
        timeout=180_000)
    reports = tmp_path / "reports"
    (entry,) = [json.loads(line) for line in (reports / "ledger.jsonl").read_text().splitlines()]
    assert (entry["runbook"], entry["outcome"], entry["change_id"]) == (
        "active-upgrade", "committed", "CHG-VOILA-1")
    (notebook,) = [name for name in entry["files"] if name.endswith(".ipynb")]
    archived = (reports / notebook).read_text()
    assert "decided earlier by alice" in archived  # each decision, as the journal holds it
    verify = subprocess.run([sys.executable, "-m", "ftkit", "reports", "verify"],
                            env={**os.environ, "FTKIT_REPORTS": str(reports)},
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
