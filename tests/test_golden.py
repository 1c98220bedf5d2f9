"""Golden files: what an operator reads, compared whole after normalising what changes
from run to run (ids, temporary paths, wall-clock times). Regenerate after an intended
change with ``FTKIT_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and review the
diff like code."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from ftkit.cli import main
from ftkit.decisions import ParameterDecisions
from ftkit.process import open_session
from ftkit.sim.driver import create_system

GOLDEN = Path(__file__).with_name("golden")
REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "examples" / "demo-config.toml"
PACKAGES = [REPO / "examples" / "packages" / "os-hotfix.toml",
            REPO / "examples" / "packages" / "orderdb-12.5.toml"]

_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def normalise(text: str, home: Path) -> str:
    text = text.replace(str(home), "$FTKIT_HOME")
    text = _UUID.sub("<system-id>", text)
    return _ISO.sub("<time>", text)


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("FTKIT_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.is_file(), f"no golden file {path.name}: run with FTKIT_UPDATE_GOLDEN=1"
    assert text == path.read_text(), (
        f"{path.name} changed; if intended, regenerate with FTKIT_UPDATE_GOLDEN=1 and review")


@pytest.fixture
def split_system(ftkit_dirs: SimpleNamespace) -> str:
    """sim://golden split, installed, Broken at nothing: a session in Split / Ready."""
    driver = create_system("sim://golden", scenario="demo", seed=0)
    session = open_session(driver, CONFIG, PACKAGES, change_id="CHG-GOLD", operator="alice",
                           reason="golden")
    session.run(ParameterDecisions({"split": "proceed", "merge": "later"}))
    session.close()
    driver.close()
    return "sim://golden"


@pytest.mark.parametrize("form", ["text", "json"])
def test_status_reads_as_its_golden_file(split_system: str, form: str,
                                         capsys: pytest.CaptureFixture[str],
                                         ftkit_dirs: SimpleNamespace) -> None:
    assert main(["status", split_system, *(["--json"] if form == "json" else [])]) == 0
    out = capsys.readouterr().out
    if form == "json":
        out = json.dumps(json.loads(out), indent=1, sort_keys=True) + "\n"
    check(f"status-split.{'json' if form == 'json' else 'txt'}",
          normalise(out, ftkit_dirs.home))


@pytest.mark.notebook
def test_the_html_report_of_a_readiness_check_reads_as_its_golden_file(
        tmp_path: Path, ftkit_dirs: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The archived HTML of one executed runbook, whole, as a change manager reads it
    (nbclient's habit: compare normalised outputs, not fifty substrings)."""
    from datetime import UTC, datetime

    monkeypatch.setenv("JUPYTERHUB_USER", "golden")  # the account, here and in the kernel

    import papermill

    from ftkit.archive import archive_run

    create_system("sim://golden-html", scenario="demo", seed=0).close()
    out = tmp_path / "readiness-check.ipynb"
    papermill.execute_notebook(str(REPO / "runbooks" / "readiness-check.ipynb"), str(out),
                               parameters={"system": "sim://golden-html"},
                               kernel_name="python3", cwd=str(REPO / "runbooks"),
                               progress_bar=False, log_output=False)
    moment = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    entry = archive_run(out, runbook="readiness-check", parameters={"system":
                        "sim://golden-html"}, started=moment, ended=moment,
                        reports=ftkit_dirs.reports)
    assert entry.html is not None
    html = (ftkit_dirs.reports / entry.html).read_text()
    html = re.sub(r"[0-9a-f]{64}", "<sha256>", html)  # file and chain hashes
    html = re.sub(r"\b\d+(\.\d+)? ?(ms|s)\b(?= *(<|\)|$))", "<duration>", html)
    check("readiness-check.html", normalise(html, ftkit_dirs.home).replace(
        str(REPO), "<repo>"))


class RecordText(HTMLParser):
    """What a person reads in an archived record, as text: one line per block, a table
    row's cells joined by `` | ``, a picture as ``[picture]``, no style; the code
    appendix reduced to its summary line (the code is the notebook's, not the record's)."""

    BLOCKS = frozenset({"p", "div", "tr", "li", "h1", "h2", "h3", "h4", "pre", "section",
                        "header", "summary", "details", "table", "br", "ul", "ol"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self._skip: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip:
            self._skip.append(tag) if tag in ("svg", "style", "pre") else None
            return
        if tag in ("style", "title", "svg") or (tag == "pre" and ("class", "in") in attrs):
            self._skip.append(tag)
            if tag == "svg":
                self.lines[-1] += "[picture]"
            return
        if tag == "img":
            self.lines[-1] += "[figure]"
        if tag in self.BLOCKS:
            self.lines.append("")
        elif tag in ("td", "th") and self.lines[-1].strip():
            self.lines[-1] += " | "

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag == self._skip[-1]:
                self._skip.pop()
            return
        if tag in self.BLOCKS:
            self.lines.append("")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.lines[-1] += data if data.strip() else " "  # Markdown's newlines in tables

    def text(self) -> str:
        lines = [" ".join(line.split()) for line in "\n".join(self.lines).split("\n")]
        return "\n".join(line for line in lines if line) + "\n"


_READ_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d( UTC)?")


def record_text(html: str, home: Path) -> str:
    """The normalised text of an archived record: times, ids, digests, paths, durations and
    this machine's account replaced."""
    parsed = RecordText()
    parsed.feed(html)
    text = normalise(parsed.text(), home).replace(str(REPO), "<repo>")
    text = _READ_TIME.sub("<time>", text)
    text = re.sub(r"[0-9a-f]{64}", "<sha256>", text)
    return re.sub(r"\b\d+(\.\d+)? ?(ms|s)\b(?=[ ,;)]|$)", "<duration>", text, flags=re.M)


def ftkit_run(capsys: pytest.CaptureFixture[str], runbook: str, **params: str) -> int:
    argv = ["run", runbook]
    for name, value in params.items():
        argv += ["-p", name, value]
    code = main(argv)
    capsys.readouterr()
    return code


@pytest.mark.notebook
def test_the_upgrade_abort_and_readiness_records_read_as_their_golden_files(
        capsys: pytest.CaptureFixture[str], ftkit_dirs: SimpleNamespace,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What a change manager reads in the records of a readiness check, a committed
    upgrade, and an upgrade paused by bob and aborted by carol: a summary first (who,
    which change, packages before → after, digests, outcome, outage, lost transactions,
    who handed over to whom), the runbook's prose and outputs, the custom actions' output;
    no code (only the appendix's summary line), no cell number, no panel to click."""
    from ftkit.archive import read_ledger

    monkeypatch.setenv("JUPYTERHUB_USER", "golden")
    assert ftkit_run(capsys, "readiness-check", system="sim://golden-rec", change_id="CHG-G1",
                     operator="alice") == 0
    assert ftkit_run(capsys, "active-upgrade", system="sim://golden-rec", mode="auto",
                     change_id="CHG-G1", operator="alice", reason="quarterly patches",
                     decisions="{split: proceed, merge: proceed, commit: commit}") == 0
    assert ftkit_run(capsys, "active-upgrade", system="sim://golden-abort", mode="auto",
                     change_id="CHG-G2", operator="bob", reason="OrderDB 12.5",
                     decisions="{split: proceed, merge: later}") == 0
    assert ftkit_run(capsys, "abort", system="sim://golden-abort", operator="carol",
                     reason="the window closed") == 0
    entries = read_ledger(ftkit_dirs.reports)
    assert [(e.runbook, e.outcome) for e in entries] == [
        ("readiness-check", "checked"), ("active-upgrade", "committed"),
        ("active-upgrade", "paused"), ("abort", "aborted")]
    for entry, name in zip([entries[0], entries[1], entries[3]],
                           ["readiness-check", "active-upgrade", "abort"], strict=True):
        html = (ftkit_dirs.reports / str(entry.html)).read_text()
        text = record_text(html, ftkit_dirs.home)
        assert "cell [" not in text and "panel below" not in text, name
        assert "fw." not in text and "import ftkit" not in text, name  # no code input
        check(f"record-{name}.txt", text)


def test_every_runbook_numbers_its_sections_without_a_gap() -> None:
    """A record's section numbers run 1, 2, 3, … in every runbook (a reader who meets 13
    then 15 looks for the missing section); conditional sections are not numbered."""
    for runbook in sorted((REPO / "runbooks").glob("*.ipynb")):
        cells = json.loads(runbook.read_text(encoding="utf-8"))["cells"]
        numbers = [int(found[1]) for cell in cells if cell["cell_type"] == "markdown"
                   for found in re.finditer(r"^#+\s+(\d+)\.", "".join(cell["source"]),
                                            re.MULTILINE)]
        assert numbers == list(range(1, len(numbers) + 1)), runbook.name
        conditional = [cell for cell in cells if "if-output" in cell["metadata"].get("tags", [])
                       and cell["cell_type"] == "markdown"]
        assert not any(re.match(r"#+\s+\d+\.", "".join(c["source"])) for c in conditional)
