"""A record never runs anything: hostile markup (tests/hostile.py) in a notebook's outputs
(text/html, text/markdown, SVG, a Markdown cell), in a custom action's output and in every
parameter is archived, and the record's HTML keeps it only as inert text — checked in the
HTML, and in headless Chromium, which opens each record, clicks what can be clicked, and
hears no dialog, no script and no request; a script slipped past the sanitizer is still
stopped by the record's Content-Security-Policy."""

from __future__ import annotations

import json
import stat
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from browser.jupyterlab import launch_chromium, require_browser
from conftest import EXAMPLES
from hostile import ALL, PAYLOADS

from ftkit.archive import read_ledger
from ftkit.cli import main
from ftkit.report_html import CSP, notebook_html

#: Tags that run, load or navigate; none may be in a record.
ACTIVE_TAGS = {"script", "iframe", "object", "embed", "frame", "frameset", "base", "link",
               "form", "input", "button", "math", "animate", "set", "foreignobject",
               "use", "image", "audio", "video", "source", "track", "applet", "portal"}


class Active(HTMLParser):
    """What in a page could run or load: active tags, event handlers, URLs other than
    page fragments and ``data:image/…``, ``<meta>`` other than charset, viewport and the
    CSP; and the CSP it declares."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.csp: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ACTIVE_TAGS:
            self.found.append(f"<{tag}>")
        names = {name for name, _ in attrs}
        if tag == "meta":
            if ("http-equiv", "Content-Security-Policy") in attrs:
                self.csp.append(dict(attrs).get("content") or "")
            elif not names <= {"charset", "name", "content"}:
                self.found.append(f"<meta {attrs}>")
        for name, value in attrs:
            if name.startswith("on") or name in ("srcdoc", "formaction", "action", "xlink:href"):
                self.found.append(f"<{tag} {name}>")
            if name in ("href", "src", "srcset", "data") and value is not None and not (
                    value.startswith("#") or value.startswith("data:image/")):
                self.found.append(f"<{tag} {name}={value[:40]}>")
            if name == "style" and value and ("url(" in value or "expression" in value):
                self.found.append(f"<{tag} style={value[:40]}>")


def active(page_html: str) -> Active:
    parsed = Active()
    parsed.feed(page_html)
    return parsed


def test_hostile_outputs_and_facts_are_inert_in_the_page() -> None:
    """The page of a hand-made notebook (no kernel: the renderer alone) whose every place
    holds every payload: nothing active is left, the payloads' text is kept where it is
    evidence (printed output, an action's output, a parameter), and the CSP comes first."""
    notebook: dict[str, Any] = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {
            "ftkit": {"runbook": ALL, "change_id": "CHG<script>alert(1)</script>",
                      "system": PAYLOADS["svg onload"], "outcome": "committed", "seq": 1},
            "ftkit_record": {
                "summary": [["Operator", ALL], ["Reason", ALL]],
                "evidence": [{"action": PAYLOADS["iframe srcdoc"], "when": "after",
                              "request": "ExecuteMerge", "side": "Upgrade", "exit_code": 0,
                              "at": "now", "stdout": ALL, "stderr": ALL}]}},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ALL},
            {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": ALL,
             "outputs": [
                 {"output_type": "display_data", "metadata": {}, "data": {"text/html": ALL}},
                 {"output_type": "display_data", "metadata": {},
                  "data": {"text/markdown": ALL + "\n[x](javascript:alert(1))"}},
                 {"output_type": "display_data", "metadata": {},
                  "data": {"image/svg+xml": PAYLOADS["svg animate"]}},
                 {"output_type": "stream", "name": "stdout", "text": ALL},
                 {"output_type": "error", "ename": "ValueError", "evalue": ALL,
                  "traceback": [ALL]}]},
            {"cell_type": "raw", "metadata": {}, "source": ALL},
        ],
    }
    page = notebook_html(notebook)
    parsed = active(page)
    assert parsed.found == []
    assert parsed.csp == [CSP]
    assert page.index("Content-Security-Policy") < page.index("<title>")
    # a repeated style moves into the page's <style>, never one that could end it
    assert "<" not in page[page.index("<style>") + 7:page.index("</style>")]
    # evidence is kept as text: the action's output, printed output, the operator
    escaped = PAYLOADS["split script"].replace("<", "&lt;").replace(">", "&gt;")
    assert page.count(escaped) >= 4


def _payload_notebook(path: Path) -> None:
    """A notebook (for plain papermill) that shows its parameter ``note`` as HTML,
    Markdown, SVG and printed text; its Markdown cell holds every payload too."""
    def code(source: str, **metadata: Any) -> dict[str, Any]:
        return {"cell_type": "code", "id": f"c{len(source)}", "metadata": metadata,
                "execution_count": None, "outputs": [], "source": source}
    path.write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "cells": [
            {"cell_type": "markdown", "id": "m1", "metadata": {},
             "source": "# Hostile\n\n" + ALL},
            code('note = ""\nsystem = ""\noperator = ""\nreason = ""\nchange_id = ""',
                 tags=["parameters"]),
            code("from IPython.display import HTML, Markdown, display\n"
                 "display(HTML(note))\ndisplay(Markdown(note))\n"
                 "display({'image/svg+xml': note, 'text/plain': 'svg'}, raw=True)\n"
                 "print(note, system, operator, reason, change_id)"),
        ]}))


def _hostile_config(folder: Path) -> Path:
    """The demo configuration with one more custom action, which prints every payload."""
    action = folder / "hostile.sh"
    action.write_text("#!/bin/sh\ncat <<'EOF'\n" + ALL + "\nEOF\n"
                      "cat >&2 <<'EOF'\n" + PAYLOADS["img onerror, slash"] + "\nEOF\n")
    action.chmod(action.stat().st_mode | stat.S_IXUSR)
    demo = (EXAMPLES / "demo-config.toml").read_text()
    demo = demo.replace('include = ["base.toml"]',
                        f"include = [{json.dumps(str(EXAMPLES / 'base.toml'))}]")
    demo = demo.replace('path = "actions/', f'path = "{EXAMPLES}/actions/')
    config = folder / "hostile-config.toml"
    config.write_text(demo + '\n[[custom_actions]]\nname = "hostile"\npath = "hostile.sh"\n'
                      'when = "after"\nrequest = "ExecuteMerge"\nside = "Upgrade"\n'
                      "timeout_s = 60\n")
    return config


@pytest.mark.slow  # ~25 s: a papermill run, an upgrade, Chromium
@pytest.mark.notebook
@pytest.mark.browser
def test_records_of_hostile_outputs_actions_and_parameters_run_nothing_in_chromium(
        tmp_path: Path, ftkit_dirs: SimpleNamespace,
        capsys: pytest.CaptureFixture[str]) -> None:
    require_browser()
    import papermill

    # 1. a notebook run by plain papermill, every payload in its parameters and outputs,
    #    added with `ftkit reports add`
    source, executed = tmp_path / "hostile.ipynb", tmp_path / "hostile-out.ipynb"
    _payload_notebook(source)
    papermill.execute_notebook(str(source), str(executed), kernel_name="python3",
                               parameters={"note": ALL, "system": ALL, "operator": ALL,
                                           "reason": ALL, "change_id": ALL},
                               progress_bar=False, log_output=False)
    assert main(["reports", "add", str(executed)]) == 0
    # 2. an upgrade through `ftkit run`: a custom action prints every payload, and each
    #    parameter a person types holds one (as long as it may be)
    config = _hostile_config(tmp_path)
    assert main(["run", "active-upgrade", "-p", "system", "sim://hostile", "-p", "mode",
                 "auto", "-p", "config", str(config), "-p", "decisions",
                 "{split: proceed, merge: proceed, commit: commit}",
                 "-p", "change_id", PAYLOADS["img onerror, slash"],
                 "-p", "operator", PAYLOADS["svg onload"], "-p", "reason", ALL]) == 0
    capsys.readouterr()
    entries = read_ledger(ftkit_dirs.reports)
    assert [e.outcome for e in entries] == ["failed", "committed"]  # no result: failed
    pages = [ftkit_dirs.reports / str(e.html) for e in entries]
    for page_path in pages:
        text = page_path.read_text(encoding="utf-8")
        parsed = active(text)
        assert parsed.found == [], page_path.name
        assert parsed.csp == [CSP], page_path.name
    upgrade = pages[1].read_text(encoding="utf-8")
    assert "Evidence: the custom actions" in upgrade
    assert "hostile — after ExecuteMerge, Upgrade side: exit 0" in upgrade
    assert "ipt&gt;alert(1)&lt;/script&gt;" in upgrade  # the action's output, as text

    # 3. each record in headless Chromium; then one with a script slipped past the sanitizer
    slipped = tmp_path / "slipped.html"
    slipped.write_text(upgrade.replace(
        "<body>", "<body><script>alert(1)</script><img src=x onerror=alert(1)>", 1))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            for page_path in [*pages, slipped]:
                context = browser.new_context(java_script_enabled=True)
                page = context.new_page()
                dialogs: list[str] = []
                requests: list[str] = []
                blocked: list[str] = []
                page.on("dialog", lambda d, seen=dialogs: (seen.append(d.message),
                                                            d.dismiss()))
                page.on("request", lambda r, seen=requests: seen.append(r.url))
                page.on("console", lambda m, seen=blocked: seen.append(m.text)
                        if "Content Security Policy" in m.text else None)
                page.goto(page_path.as_uri(), wait_until="load")
                for element in page.locator("a, summary, button").all():
                    element.click(no_wait_after=True)
                page.wait_for_load_state("load")
                ran = page.evaluate("() => window.__ran === undefined ? null : window.__ran")
                assert (dialogs, ran) == ([], None), page_path.name
                assert page.url == page_path.as_uri(), page_path.name  # not navigated away
                if page_path == slipped:  # asked for x, and was refused by the CSP
                    assert blocked, "the CSP stopped the slipped script (and said so)"
                else:  # the sanitizer left nothing that even asks to load
                    others = [u for u in requests if u != page_path.as_uri()
                              and not u.startswith("data:")]
                    assert others == [], page_path.name
                context.close()
        finally:
            browser.close()
