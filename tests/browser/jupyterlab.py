"""Drive a real JupyterLab server from headless Chromium (Playwright sync API).

The server side (`JupyterLabServer`, `start_jupyterlab`) only needs the standard library; the
page helpers take Playwright objects but never import Playwright at module level, so importing
this module works where Playwright is not installed (the fixtures then skip).

Each choice below says, where it is made, the fact about JupyterLab or Chromium behind it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, Playwright

# Debian's chromium; FTKIT_CHROMIUM points elsewhere (e.g. on a developer's laptop).
CHROMIUM_PATH = Path(os.environ.get("FTKIT_CHROMIUM", "/usr/bin/chromium"))

# Without the networking flags Chromium keeps trying hosts this machine cannot reach.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

# JupyterLab user settings written before the server starts.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    # The only switch that silences the "get notified about Jupyter news" popup.
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    # No "Select Kernel" dialog; all cells rendered, even those off-screen.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "autoStartDefaultKernel": True,
        "windowingMode": "none",
    },
}

STARTUP_TIMEOUT = 60.0
KERNEL_TIMEOUT = 120.0  # a kernel starting on a busy 2-core machine

# How the page's load is judged: by what it shows, not by a fixed time. While its resources
# keep arriving it is waited for (up to LOAD_BUDGET); a page that shows JupyterLab's "Error
# Loading Theme" dialog, or loads nothing new for LOAD_STALL seconds, is loaded again, at
# most LOAD_ATTEMPTS times. On a busy 2-core machine the first load of a new server takes
# tens of seconds, and a theme stylesheet whose request failed leaves JupyterLab's shell
# hidden for good (its theme manager shows that dialog and never shows the shell).
THEME_ERROR = "Error Loading Theme"
LOAD_ATTEMPTS = 3
LOAD_STALL = 30.0
LOAD_BUDGET = 240.0
# the theme JupyterLab loads first: fetched once by start_jupyterlab, so that the first
# page's request is served from a warm server
THEME_CSS = "lab/api/themes/@jupyterlab/theme-light-extension/index.css"


def browser_unavailable_reason() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright Python package (pip install playwright)")
    if not CHROMIUM_PATH.exists():
        missing.append(f"{CHROMIUM_PATH} (apt-get install -y chromium)")
    if importlib.util.find_spec("jupyterlab") is None:
        missing.append("jupyterlab (pip install jupyterlab)")
    if not missing:
        return None
    return "browser tests need " + " and ".join(missing)


def require_browser(*, module_level: bool = False) -> None:
    """Skip when the browser tools are missing; under CI (env CI set) fail instead.

    CI installs Playwright and Chromium, so a skip there would hide a broken setup.
    Call with `module_level=True` at the top of a test module to skip the whole module.
    """
    import pytest

    reason = browser_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        if module_level:
            return  # let the fixtures fail each test with the reason
        pytest.fail(f"{reason}; CI must provide them", pytrace=False)
    pytest.skip(reason, allow_module_level=module_level)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


@dataclass
class JupyterLabServer:
    """A running `jupyter lab` process. Create it with `start_jupyterlab`."""

    root: Path
    """The server's root dir: copy notebooks here, open them by their relative path."""
    port: int
    token: str
    env: dict[str, str]
    """The environment the server (and so every kernel it starts) runs with."""
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "", query: str = "") -> str:
        """Absolute URL of `path` on the server with the token appended.

        `url("lab/tree/x.ipynb", query="reset")` -> `http://127.0.0.1:P/lab/tree/x.ipynb?reset&token=T`
        """
        quoted = urllib.parse.quote(path.lstrip("/"), safe="/")
        params = "&".join(p for p in (query, f"token={self.token}") if p)
        return f"{self.base_url}/{quoted}?{params}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<no server log: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    # REST ----------------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        """Call the Jupyter server REST API (`path` like "/api/sessions"); JSON in and out."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def sessions(self) -> list[dict[str, Any]]:
        return list(self.api("GET", "/api/sessions"))

    def kernel_for(self, notebook: str) -> dict[str, Any] | None:
        """The kernel model of the session whose path is `notebook`, if any."""
        for session in self.sessions():
            if session.get("path") == notebook and session.get("kernel"):
                return dict(session["kernel"])
        return None

    def delete_all_sessions(self) -> None:
        """Shut down every session's kernel (closing a page does not) and stray kernels."""
        for session in self.sessions():
            with contextlib.suppress(urllib.error.HTTPError):
                self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)
        for kernel in self.api("GET", "/api/kernels"):
            with contextlib.suppress(urllib.error.HTTPError):
                self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=30)

    # Lifecycle -----------------------------------------------------------------------------

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Delete all sessions, then terminate the server's whole process group."""
        if self.is_running():
            with contextlib.suppress(OSError, urllib.error.URLError, TimeoutError):
                self.delete_all_sessions()
        _terminate_group(self.process, timeout)


def _terminate_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    # start_new_session=True made the server a group leader: its pgid is its pid.
    pgid = process.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; take down anything left in its group (e.g. kernels).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        return


def _write_lab_settings(settings_dir: Path) -> None:
    for relative, content in LAB_SETTINGS.items():
        target = settings_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(content, indent=2))


def start_jupyterlab(
    base_dir: Path,
    extra_env: Mapping[str, str] | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> JupyterLabServer:
    """Start `python -m jupyter lab` isolated under `base_dir` and wait until it answers.

    `extra_env` is added to the server's environment; kernels inherit it.
    Raises RuntimeError (with the server's log tail) when it does not come up in time.
    """
    base_dir = Path(base_dir)
    root = base_dir / "root"
    dirs = {
        "JUPYTERLAB_SETTINGS_DIR": base_dir / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": base_dir / "lab-workspaces",
        "JUPYTER_RUNTIME_DIR": base_dir / "runtime",
        "JUPYTER_CONFIG_DIR": base_dir / "config",
        "IPYTHONDIR": base_dir / "ipython",
        # Notebook-signing key, user kernelspecs and user labextensions live here; installed
        # kernelspecs (python3) and labextensions (widgets) come from sys.prefix regardless.
        "JUPYTER_DATA_DIR": base_dir / "data",
    }
    for path in (root, *dirs.values()):
        path.mkdir(parents=True, exist_ok=True)
    _write_lab_settings(dirs["JUPYTERLAB_SETTINGS_DIR"])

    env = dict(os.environ)
    env.update({name: str(path) for name, path in dirs.items()})
    if sys.prefix != sys.base_prefix:
        # A virtual environment made with --system-site-packages imports the base's packages
        # but does not search the base's data files: add them, so that the front-end
        # extensions of packages installed there (ipywidgets') load. Harmless otherwise.
        base_data = os.path.join(sys.base_prefix, "share", "jupyter")
        env["JUPYTER_PATH"] = os.pathsep.join(
            p for p in (env.get("JUPYTER_PATH", ""), base_data) if p)
    env["PYTHONUNBUFFERED"] = "1"
    if extra_env:
        env.update(extra_env)

    token = secrets.token_hex(24)
    port = free_port()
    command = [
        sys.executable,
        # jupyterlab's own entry point: `-m jupyter lab` runs whichever `jupyter-lab` the
        # PATH finds first, whose interpreter then runs the kernels (jupyter_client starts
        # kernelspec "python" as the server's sys.executable): another environment's ftkit.
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")

    log_path = base_dir / "jupyterlab.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = JupyterLabServer(
        root=root, port=port, token=token, env=env, log_path=log_path, process=process
    )
    try:
        _wait_until_up(server, startup_timeout)
    except BaseException:
        server.stop()
        raise
    _warm_up(server)
    return server


def _warm_up(server: JupyterLabServer) -> None:
    """Fetch the lab page and its theme stylesheet once, so that a browser's first load
    finds them ready (a cold server answers them slowest, and a theme that fails to load
    hides JupyterLab's shell). Failures are left to the page load to meet and recover."""
    for path in ("lab", THEME_CSS):
        with (contextlib.suppress(OSError, urllib.error.URLError, TimeoutError),
              urllib.request.urlopen(server.url(path), timeout=60) as response):
            response.read()


def _wait_until_up(server: JupyterLabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not server.is_running():
            raise RuntimeError(
                f"jupyter lab exited with code {server.process.returncode} before answering; "
                f"log tail:\n{server.log_tail()}"
            )
        try:
            server.api("GET", "/api/status", timeout=2)
            return
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last_error = exc
        time.sleep(0.2)
    raise RuntimeError(
        f"jupyter lab did not answer /api/status within {timeout:g} s "
        f"(last error: {last_error!r}); log tail:\n{server.log_tail()}"
    )


# --------------------------------------------------------------------------------------------
# Browser and page helpers
# --------------------------------------------------------------------------------------------


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM_PATH), headless=True, args=list(CHROMIUM_ARGS)
    )


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def open_notebook(
    page: Page,
    lab: JupyterLabServer,
    name: str,
    timeout: float = KERNEL_TIMEOUT,
    fresh_kernel: bool = True,
) -> Locator:
    """Open `name` (a path relative to `lab.root`) and wait until a real kernel is idle.

    With `fresh_kernel` (the default) any session the server still holds for `name` is
    deleted first: closing a page keeps its kernel, and reopening the notebook would
    reconnect to it, state and all.

    Returns the visible `.jp-NotebookPanel`; scope every further locator to it.
    """
    from playwright.sync_api import expect

    if fresh_kernel:
        for session in lab.sessions():
            if session.get("path") == name:
                lab.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)

    # ?reset: restored tabs from a former workspace would steal "Run All".
    load_lab_page(page, lab.url(f"lab/tree/{name}", query="reset"))
    # ":visible" rather than .filter(visible=True), which needs Playwright >= 1.51.
    panel = page.locator(".jp-NotebookPanel:visible")
    expect(panel).to_have_count(1, timeout=_ms(timeout))
    expect(panel.locator(".jp-Cell").first).to_be_visible(timeout=_ms(timeout))
    # The indicator can say "idle" while the kernel name still reads "No Kernel": then cells
    # run into nothing. Wait for both, and for the server to agree.
    kernel_name = panel.locator(".jp-Toolbar-kernelName")
    expect(kernel_name).not_to_have_text(re.compile(r"^\s*$|No Kernel"), timeout=_ms(timeout))
    expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
        "data-status", "idle", timeout=_ms(timeout)
    )
    deadline = time.monotonic() + timeout
    while True:
        kernel = lab.kernel_for(name)
        if kernel and kernel.get("execution_state") == "idle":
            break
        if kernel and kernel.get("execution_state") == "dead":
            raise AssertionError(f"the kernel for {name} died; server log:\n{lab.log_tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no idle kernel for {name} on the server: {kernel!r}")
        time.sleep(0.1)
    return panel


# what the page shows: "ready" (a notebook panel with its cells), "theme" (JupyterLab's
# Error Loading Theme dialog), else how many resources it has loaded so far (progress)
_LOAD_STATE = """() => {
  for (const dialog of document.querySelectorAll(".jp-Dialog")) {
    if (dialog.textContent.includes(THEME_ERROR)) return "theme";
  }
  for (const panel of document.querySelectorAll(".jp-NotebookPanel")) {
    if (panel.getClientRects().length && panel.querySelector(".jp-Cell")) return "ready";
  }
  return performance.getEntriesByType("resource").length;
}""".replace("THEME_ERROR", json.dumps(THEME_ERROR))


def load_lab_page(page: Page, url: str, *, attempts: int = LOAD_ATTEMPTS,
                  stall: float = LOAD_STALL, budget: float = LOAD_BUDGET) -> int:
    """Go to URL (a notebook in JupyterLab) and wait until its notebook panel shows cells.

    Waits as long as the page makes progress (resources still arriving), up to BUDGET
    seconds per load; loads it again when the page shows "Error Loading Theme" or nothing
    new arrives for STALL seconds, at most ATTEMPTS loads. Returns the number of loads it
    took; raises AssertionError saying what the page showed when none succeeded.
    """
    from playwright.sync_api import Error as PlaywrightError

    seen: list[str] = []
    for attempt in range(1, attempts + 1):
        try:
            page.goto(url, wait_until="commit", timeout=_ms(budget))
        except PlaywrightError as exc:  # the server did not even answer: try again
            seen.append(f"load {attempt}: {str(exc).splitlines()[0]}")
            continue
        started = last_progress = time.monotonic()
        loaded = -1
        while True:
            try:
                state = page.evaluate(_LOAD_STATE)
            except PlaywrightError:  # navigating: the document is being replaced
                state = loaded
            now = time.monotonic()
            if state == "ready":
                return attempt
            if state == "theme":
                seen.append(f"load {attempt}: {THEME_ERROR} after {now - started:.0f} s")
                break
            if state != loaded:
                loaded, last_progress = state, now
            elif now - last_progress > stall:
                seen.append(f"load {attempt}: nothing new for {stall:g} s "
                            f"({loaded} resources loaded)")
                break
            if now - started > budget:
                seen.append(f"load {attempt}: not ready after {budget:g} s")
                break
            page.wait_for_timeout(200)
    raise AssertionError(f"JupyterLab did not show {url.split('?')[0]}: " + "; ".join(seen))


def run_all(page: Page) -> None:
    """Run -> Run All Cells in the current notebook, through the menu bar."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    menu = page.locator(".lm-Menu:visible")
    menu.locator(
        ".lm-Menu-item",
        has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")),
    ).click()


def output_areas(panel: Locator) -> Locator:
    """All cell outputs of the notebook (never its sources)."""
    return panel.locator(".jp-OutputArea-output")


def wait_for_output_text(
    panel: Locator, text: str | re.Pattern[str], timeout: float = 30.0
) -> Locator:
    """Wait until some cell output (not a cell source) contains `text`; return that output."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    output = output_areas(panel).filter(has_text=text).first
    try:
        output.wait_for(state="visible", timeout=_ms(timeout))
    except PlaywrightTimeoutError:
        seen = output_areas(panel).all_inner_texts()
        raise AssertionError(
            f"no cell output contains {text!r} after {timeout:g} s; outputs: {seen!r}"
        ) from None
    return output


def output_has_text(panel: Locator, text: str | re.Pattern[str]) -> bool:
    return output_areas(panel).filter(has_text=text).count() > 0


def click_widget_button(panel: Locator, label: str, timeout: float = 30.0) -> None:
    """Click the ipywidgets button whose label is exactly `label` (in an output area)."""
    button = output_areas(panel).get_by_role("button", name=label, exact=True)
    button.click(timeout=_ms(timeout))


def cell_is_running(panel: Locator) -> bool:
    """True when any cell's input prompt shows `[*]` (running or queued)."""
    prompts = panel.locator(".jp-InputArea-prompt").all_inner_texts()
    return any("[*]" in prompt for prompt in prompts)


def wait_until_cells_done(panel: Locator, timeout: float = 60.0) -> None:
    """Wait until no input prompt shows `[*]` (nothing running or queued)."""
    from playwright.sync_api import expect

    expect(panel.locator(".jp-InputArea-prompt", has_text="[*]")).to_have_count(
        0, timeout=_ms(timeout)
    )


def screenshot(page: Page, path: str | os.PathLike[str]) -> Path:
    """Save a full-page PNG at `path` (parent dirs created) and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    return target


def copy_notebook(
    lab: JupyterLabServer, source: str | os.PathLike[str], name: str | None = None
) -> str:
    """Copy a notebook into the server root; return the name to pass to `open_notebook`."""
    source = Path(source)
    target = lab.root / (name or source.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target.relative_to(lab.root).as_posix()
