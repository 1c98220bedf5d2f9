"""The report archive: runs through papermill, results out of notebooks, the hash-chained
ledger and tamper detection, redaction; plus the runner's parameter handling."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from ftkit.archive import (
    LEDGER,
    RESULT_MIME,
    LedgerEntry,
    Outcome,
    RunResult,
    archive_run,
    ensure_verified,
    read_ledger,
    result_from_notebook,
    verify_reports,
)
from ftkit.errors import ArchiveError, FtkitError
from ftkit.redact import forget_secrets, register_secret
from ftkit.runner import parse_cli_value, resolve_runbook, run_runbook

REPO = Path(__file__).resolve().parents[1]
SECRET = "hunter2-secret-pw"
T0 = datetime(2025, 3, 1, 2, 0, 0, tzinfo=UTC)

PARAMETERS = """\
system = "sim://lab"
change_id = "CHG-T"
operator = "tester"
password = ""
outage = 0.0
"""

REPORT = """\
from ftkit.archive import RunResult
RunResult(outcome="checked", system=system, change_id=change_id, operator=operator,
          outage_s=outage, message="all checks passed")
"""


def write_runbook(folder: Path, name: str, *cells: str) -> Path:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        new_markdown_cell(f"# {name}"),
        new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
        *(new_code_cell(source) for source in cells),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.fixture(scope="module")
def kernel_env() -> Iterator[None]:
    """The kernel must import ftkit from this checkout."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        yield


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, kernel_env: None) -> tuple[Path, LedgerEntry]:
    """One real papermill run of a tiny runbook that echoes its password and reports."""
    root = tmp_path_factory.mktemp("run")
    write_runbook(root / "runbooks", "tiny-check", 'print("connecting with", password)', REPORT)
    entry = run_runbook(
        "tiny-check",
        {
            "change_id": "CHG-42",
            "operator": "alice",
            "password": SECRET,
            "outage": 12.5,
        },
        reports=root / "reports",
        runbooks_dir=root / "runbooks",
        kernel_name="python3",
    )
    return root / "reports", entry


@pytest.fixture
def reports(run: tuple[Path, LedgerEntry], tmp_path: Path) -> Path:
    """A private copy of the archive with three more runs of the same executed notebook."""
    source, entry = run
    copy = tmp_path / "reports"
    shutil.copytree(source, copy)
    for n in range(1, 4):
        # the executed notebook as papermill left it (no ledger facts), once per run
        nb = nbformat.read(str(copy / str(entry.notebook)), as_version=4)
        del nb.metadata["ftkit"]
        nb.metadata["papermill"]["start_time"] = (T0 + timedelta(hours=n)).isoformat()
        executed = tmp_path / f"executed-{n}.ipynb"
        nbformat.write(nb, str(executed))
        archive_run(
            executed,
            runbook="tiny-check",
            parameters={"change_id": f"CHG-{n}", "operator": "bob"},
            started=T0 + timedelta(hours=n),
            ended=T0 + timedelta(hours=n, minutes=5),
            reports=copy,
        )
    assert verify_reports(copy) == []
    return copy


def ledger_lines(reports: Path) -> list[str]:
    return (reports / LEDGER).read_text(encoding="utf-8").splitlines()


def write_lines(reports: Path, lines: list[str]) -> None:
    (reports / LEDGER).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- a real run --------------------------------------------------------------------------


@pytest.mark.notebook
def test_run_leaves_notebook_html_and_a_ledger_line(run: tuple[Path, LedgerEntry]) -> None:
    reports, entry = run
    assert entry.seq == 1 and entry.prev == "0" * 64
    assert entry.outcome == Outcome.CHECKED == "checked"
    assert (entry.change_id, entry.operator, entry.system) == ("CHG-42", "alice", "sim://lab")
    assert entry.outage_s == 12.5 and entry.error is None
    assert entry.runbook == "tiny-check"
    assert entry.notebook and entry.notebook.endswith("-tiny-check-CHG-42.ipynb")
    assert entry.html == entry.notebook.replace(".ipynb", ".html")
    for name, digest in entry.files.items():
        assert hashlib.sha256((reports / name).read_bytes()).hexdigest() == digest
    assert read_ledger(reports) == [entry]
    assert verify_reports(reports) == []
    ensure_verified(reports)

    nb = nbformat.read(str(reports / entry.notebook), as_version=4)
    facts = nb.metadata["ftkit"]
    assert facts["outcome"] == "checked" and facts["change_id"] == "CHG-42"
    assert facts["seq"] == 1 and facts["started"] == entry.started
    assert {k: v for k, v in entry.to_dict().items() if k in facts} == facts
    assert "all checks passed" in (reports / entry.html).read_text(encoding="utf-8")


@pytest.mark.notebook
def test_secrets_never_reach_notebook_html_or_ledger(run: tuple[Path, LedgerEntry]) -> None:
    reports, entry = run
    assert entry.parameters["password"] == "***"
    for file in reports.iterdir():
        if file.is_file():
            assert SECRET not in file.read_text(encoding="utf-8"), file.name
    nb = nbformat.read(str(reports / str(entry.notebook)), as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "password = '***'" in injected.source
    assert "connecting with ***" in json.dumps(nb.cells[3].outputs)


@pytest.mark.notebook
def test_a_failing_run_is_archived_as_failed_then_raised(tmp_path: Path, kernel_env: None) -> None:
    write_runbook(tmp_path / "rb", "breaks", f'raise ValueError("boom " + password)  # {SECRET}')
    with pytest.raises(FtkitError) as info:
        run_runbook(
            "breaks.ipynb",
            {"password": SECRET, "change_id": "CHG-7"},
            reports=tmp_path / "reports",
            runbooks_dir=tmp_path / "rb",
            kernel_name="python3",
        )
    err = info.value
    assert "\n" not in str(err)
    assert "runbook breaks failed: ValueError: boom ***" in str(err)
    assert SECRET not in str(err)
    [entry] = read_ledger(tmp_path / "reports")
    assert entry.outcome == "failed" and entry.change_id == "CHG-7"
    assert entry.error == "ValueError: boom ***"
    assert entry.html and entry.html in err.remedy
    assert str(tmp_path / "reports" / entry.html) in err.remedy  # the file in its folder
    assert verify_reports(tmp_path / "reports") == []



def test_a_failed_record_holds_no_path_of_this_machine(tmp_path: Path, kernel_env: None
                                                      ) -> None:
    """A traceback through Python's own files is archived with them named, not located."""
    write_runbook(tmp_path / "rb", "deep", 'import json\njson.loads("{")')
    with pytest.raises(FtkitError):
        run_runbook("deep.ipynb", {}, reports=tmp_path / "reports",
                    runbooks_dir=tmp_path / "rb", kernel_name="python3")
    [entry] = read_ledger(tmp_path / "reports")
    notebook = (tmp_path / "reports" / str(entry.notebook)).read_text(encoding="utf-8")
    assert "<python>" in notebook and "JSONDecodeError" in notebook
    for name in entry.files:
        text = (tmp_path / "reports" / name).read_text(encoding="utf-8")
        for path in {sys.prefix, sys.base_prefix, str(REPO)}:
            assert path not in text, (name, path)
            assert path.replace(str(Path.home()), "~", 1) not in text, (name, path)


def test_unknown_parameter_is_refused_before_anything_runs(tmp_path: Path) -> None:
    write_runbook(tmp_path / "rb", "tiny")
    with pytest.raises(FtkitError) as info:
        run_runbook(
            "tiny", {"sytem": "sim://x"}, reports=tmp_path / "reports", runbooks_dir=tmp_path / "rb"
        )
    assert str(info.value) == (
        "runbook tiny has no parameter sytem — its parameters are: "
        "system, change_id, operator, password, outage"
    )
    assert not (tmp_path / "reports").exists()


def test_resolve_runbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_runbook(tmp_path / "rb", "status")
    assert resolve_runbook("status", runbooks_dir=tmp_path / "rb") == path
    assert resolve_runbook("status.ipynb", runbooks_dir=tmp_path / "rb") == path
    assert resolve_runbook(str(path)) == path
    monkeypatch.setenv("FTKIT_RUNBOOKS", str(tmp_path / "rb"))
    assert resolve_runbook("status") == path
    with pytest.raises(FtkitError, match=r"no runbook 'statsu' .* use one of: status"):
        resolve_runbook("statsu")
    with pytest.raises(FtkitError, match="no file"):
        resolve_runbook(str(tmp_path / "nowhere" / "x.ipynb"))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("True", True),
        ("False", False),
        ("None", None),
        ("42", 42),
        ("-3", -3),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("true", "true"),  # papermill's -p keeps this a string
        ("sim://lab", "sim://lab"),
        ("", ""),
        ("{split: proceed, merge: abort}", {"split": "proceed", "merge": "abort"}),
        ('{"commit": "commit"}', {"commit": "commit"}),
        ("[a, 2]", ["a", 2]),
    ],
)
def test_parse_cli_value(text: str, value: Any) -> None:
    parsed = parse_cli_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_parse_cli_value_refuses_a_broken_mapping() -> None:
    with pytest.raises(FtkitError, match="cannot read") as info:
        parse_cli_value("{split: proceed")
    assert "\n" not in str(info.value)


# --- results out of a notebook -----------------------------------------------------------


def test_run_result_mimebundle() -> None:
    result = RunResult(
        Outcome.COMMITTED,
        system="sim://lab",
        change_id="CHG-1",
        operator="al<i>ce",
        outage_s=31.2,
        extra={"session": 3, "token": "abcdef"},
    )
    bundle = result._repr_mimebundle_()
    data = bundle[RESULT_MIME]
    assert data["outcome"] == "committed" and data["outage_s"] == 31.2
    assert data["session"] == 3 and data["token"] == "***"
    assert json.loads(json.dumps(data)) == data
    assert bundle["text/plain"] == "committed: sim://lab CHG-1 (outage 31.2 s)"
    assert "al&lt;i&gt;ce" in bundle["text/html"] and "<table" in bundle["text/html"]
    shown = RunResult("committed", outage_s=44.99999999999932,
                      extra={"outages": [44.99999999999932, 2.04]})._repr_mimebundle_()
    assert "<td style='text-align:left'>45</td>" in shown["text/html"]
    assert "45, 2</td>" in shown["text/html"] and "4.99999" not in shown["text/html"]
    assert shown[RESULT_MIME]["outage_s"] == 44.99999999999932  # the data keeps its figures


def result_output(outcome: str, **extra: Any) -> Any:
    bundle = RunResult(outcome, system="sim://lab", change_id="C", operator="o", **extra)
    data = bundle._repr_mimebundle_()
    return new_output("display_data", data=data)


def test_the_last_result_in_a_notebook_wins() -> None:
    nb = new_notebook(
        cells=[
            new_code_cell("a", outputs=[result_output("planned")]),
            new_code_cell("b", outputs=[new_output("stream", text="hello")]),
            new_code_cell(
                "c",
                outputs=[
                    result_output("stopped"),
                    new_output("execute_result", data={"text/plain": "1"}, execution_count=1),
                ],
            ),
            new_markdown_cell("done"),
        ]
    )
    assert result_from_notebook(nb)["outcome"] == "stopped"
    as_text = new_output("display_data", data={RESULT_MIME: json.dumps({"outcome": "aborted"})})
    nb.cells.append(new_code_cell("d", outputs=[as_text]))
    assert result_from_notebook(nb) == {"outcome": "aborted"}
    assert result_from_notebook(new_notebook()) is None


def executed_notebook(path: Path, *outputs: Any) -> Path:
    """A notebook as papermill leaves it: one cell that ran (its own, by PATH's name)."""
    nb = new_notebook(cells=[new_code_cell(f"x  # {path.name}", outputs=list(outputs),
                                           execution_count=1)])
    nbformat.write(nb, str(path))
    return path


def test_no_result_or_an_error_means_failed(tmp_path: Path) -> None:
    plain = executed_notebook(tmp_path / "plain.ipynb")
    entry = archive_run(
        plain,
        runbook="status.ipynb",
        parameters={"system": "sim://lab", "change_id": "C-1"},
        started=T0,
        ended=T0 + timedelta(seconds=3),
        reports=tmp_path / "reports",
    )
    assert entry.outcome == Outcome.FAILED
    assert entry.error == "the runbook reported no result"
    assert entry.system == "sim://lab", "facts fall back to the parameters"
    assert entry.notebook == "20250301T020000Z-status-C-1.ipynb"
    assert (entry.started, entry.ended) == ("2025-03-01T02:00:00.000000Z",
                                            "2025-03-01T02:00:03.000000Z")

    good = executed_notebook(tmp_path / "good.ipynb", result_output("committed", outage_s=20))
    entry = archive_run(
        good,
        runbook="active-upgrade",
        parameters={},
        started=T0,
        ended=T0,
        reports=tmp_path / "reports",
        error="DeadKernelError: kernel died",
    )
    assert (entry.outcome, entry.error, entry.outage_s) == (
        "failed",
        "DeadKernelError: kernel died",
        20.0,
    )
    assert entry.change_id == "C", "facts still come from the result"
    assert verify_reports(tmp_path / "reports") == []


def test_same_second_same_change_gets_a_distinct_name(tmp_path: Path) -> None:
    names = [
        archive_run(
            executed_notebook(tmp_path / f"x{n}.ipynb", result_output("planned")),
            runbook="plan", parameters={}, started=T0, ended=T0, reports=tmp_path / "r"
        ).notebook
        for n in range(2)
    ]
    assert names == ["20250301T020000Z-plan-C.ipynb", "20250301T020000Z-plan-C-2.ipynb"]


def test_concurrent_archiving_keeps_the_chain(tmp_path: Path) -> None:
    notebooks = [executed_notebook(tmp_path / f"x{n}.ipynb", result_output("checked"))
                 for n in range(4)]
    errors: list[BaseException] = []

    def one(n: int) -> None:
        try:
            archive_run(
                notebooks[n],
                runbook="check",
                parameters={"n": n},
                started=T0 + timedelta(seconds=n),
                ended=T0,
                reports=tmp_path / "r",
            )
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    entries = read_ledger(tmp_path / "r")
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert verify_reports(tmp_path / "r") == []


def test_parameters_are_redacted_in_ledger_and_metadata(tmp_path: Path) -> None:
    register_secret("s3cr3t-operator-pin")
    try:
        nb = executed_notebook(
            tmp_path / "x.ipynb",
            new_output("stream", text="pin is s3cr3t-operator-pin, key abcd-1234\n"),
            result_output("checked"),
        )
        entry = archive_run(
            nb,
            runbook="check",
            parameters={"remote": {"api_key": "abcd-1234"}, "reason": "pin s3cr3t-operator-pin"},
            started=T0,
            ended=T0,
            reports=tmp_path / "r",
        )
    finally:
        forget_secrets()
    assert entry.parameters == {"remote": {"api_key": "***"}, "reason": "pin ***"}
    for file in (tmp_path / "r").iterdir():
        text = file.read_text(encoding="utf-8")
        assert "s3cr3t-operator-pin" not in text and "abcd-1234" not in text, file.name


# --- tamper detection --------------------------------------------------------------------


def test_an_edited_ledger_line_is_detected(reports: Path) -> None:
    lines = ledger_lines(reports)
    entry = json.loads(lines[1])
    entry["outcome"] = "committed"
    lines[1] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    write_lines(reports, lines)
    problems = verify_reports(reports)
    assert problems == [f"{LEDGER} line 2 (seq 2) was edited: its hash does not match its content"]
    with pytest.raises(ArchiveError) as info:
        ensure_verified(reports)
    assert "line 2 (seq 2) was edited" in str(info.value) and "\n" not in str(info.value)
    assert pickle.loads(pickle.dumps(info.value)).remedy == info.value.remedy


def test_an_edited_line_with_a_recomputed_hash_breaks_the_chain(reports: Path) -> None:
    lines = ledger_lines(reports)
    entry = json.loads(lines[1])
    entry["outage_s"] = 0.0
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    entry["hash"] = hashlib.sha256(canonical.encode()).hexdigest()
    # written canonically, as a careful forger would (a non-canonical line is caught alone)
    lines[1] = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    write_lines(reports, lines)
    assert verify_reports(reports) == [
        f"{LEDGER} line 3 (seq 3) does not chain to the line before it: an entry was removed, "
        "reordered or edited"
    ]


def test_a_removed_line_is_detected(reports: Path) -> None:
    lines = ledger_lines(reports)
    removed = json.loads(lines.pop(1))
    write_lines(reports, lines)
    problems = verify_reports(reports)
    assert f"{LEDGER} line 2 (seq 3) follows seq 1: an entry was removed or reordered" in problems
    assert any(
        name in p and "not in the ledger" in p for p in problems for name in removed["files"]
    )


def test_a_removed_last_line_is_detected_by_its_orphaned_reports(reports: Path) -> None:
    lines = ledger_lines(reports)
    last = json.loads(lines.pop())
    write_lines(reports, lines)
    problems = verify_reports(reports)
    assert sorted(problems) == sorted(
        f"report {name} is not in the ledger: its entry was removed" for name in last["files"]
    )


def test_reordered_lines_are_detected(reports: Path) -> None:
    lines = ledger_lines(reports)
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(reports, lines)
    problems = verify_reports(reports)
    assert (
        problems[0] == f"{LEDGER} line 2 (seq 3) follows seq 1: an entry was removed or reordered"
    )
    assert len(problems) == 3 and all("removed or reordered" in p for p in problems)


def test_an_edited_or_missing_report_file_is_detected(reports: Path) -> None:
    entries = read_ledger(reports)
    html = reports / str(entries[0].html)
    html.write_text(html.read_text(encoding="utf-8").replace("checked", "committed"), "utf-8")
    (reports / str(entries[2].notebook)).unlink()
    assert verify_reports(reports) == [
        f"report {entries[0].html} ({LEDGER} line 1 (seq 1)) was edited: SHA-256 mismatch",
        f"report {entries[2].notebook} ({LEDGER} line 3 (seq 3)) is missing",
    ]


def test_a_garbled_line_is_a_problem_and_read_ledger_refuses_it(reports: Path) -> None:
    lines = ledger_lines(reports)
    lines[0] = lines[0][:-5]
    write_lines(reports, lines)
    assert (
        verify_reports(reports)[0] == f"{LEDGER} line 1 is not a ledger entry (edited or damaged)"
    )
    with pytest.raises(ArchiveError, match=r"ledger\.jsonl:1 is not a ledger entry"):
        read_ledger(reports)


def test_an_empty_archive_verifies(tmp_path: Path) -> None:
    assert read_ledger(tmp_path) == []
    assert verify_reports(tmp_path / "none") == []


def test_a_missing_or_broken_executed_notebook_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.ipynb").write_text("{not json", encoding="utf-8")
    for path in (tmp_path / "missing.ipynb", tmp_path / "broken.ipynb"):
        with pytest.raises(ArchiveError, match="cannot read executed notebook") as info:
            archive_run(
                path, runbook="x", parameters={}, started=T0, ended=T0, reports=tmp_path / "r"
            )
        assert "\n" not in str(info.value)
