"""Golden files: what an operator reads, compared whole after normalising what changes
from run to run (ids, temporary paths, wall-clock times). Regenerate after an intended
change with ``FTKIT_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and review the
diff like code."""

from __future__ import annotations

import json
import os
import re
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
