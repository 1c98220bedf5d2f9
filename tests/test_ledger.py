"""The ledger under an adversary (issue 8 #12), incremental verification, refusals of
``reports add`` (issue 9), the shared canonical module (issue 7) and the HTML report
(issue 11). No kernel: notebooks are built with nbformat."""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from ftkit import canonical
from ftkit.archive import (
    CHECKPOINT,
    LEDGER,
    RunResult,
    archive_run,
    cross_check,
    read_ledger,
    verify_archive,
    verify_limits,
    verify_reports,
)
from ftkit.checkpoints import verify_checkpoints
from ftkit.errors import ArchiveError
from ftkit.journal import _entry_hash as journal_entry_hash
from ftkit.journal import _iso as journal_iso
from ftkit.report_html import notebook_html, strip_ansi

T0 = datetime(2025, 3, 1, 2, 0, 0, tzinfo=UTC)
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
       "RU5ErkJggg==")


def executed(path: Path, *outputs: Any, source: str = "x") -> Path:
    result = RunResult("checked", system="sim://lab", change_id="CHG-9", operator="o")
    nb = new_notebook(cells=[
        new_markdown_cell("# Check\n\nA *check*. <script>alert(1)</script>"),
        new_code_cell(f"{source}  # {path.name}", execution_count=1, outputs=[
            *outputs, new_output("display_data", data=result._repr_mimebundle_())]),
    ])
    nbformat.write(nb, str(path))
    return path


def archive(tmp_path: Path, n: int, **options: Any) -> Any:
    return archive_run(executed(tmp_path / f"run-{n}.ipynb"), runbook="check",
                       parameters={"n": n}, started=T0 + timedelta(minutes=n),
                       ended=T0 + timedelta(minutes=n, seconds=5),
                       reports=tmp_path / "reports", **options)


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    for n in range(1, 4):
        archive(tmp_path, n)
    assert verify_reports(tmp_path / "reports") == []
    return tmp_path / "reports"


def lines_of(reports: Path) -> list[str]:
    return (reports / LEDGER).read_text(encoding="utf-8").splitlines()


def write(reports: Path, lines: list[str]) -> None:
    (reports / LEDGER).write_text("\n".join(lines) + "\n", encoding="utf-8")


def rehash(entry: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in entry.items() if k not in ("hash", "signature")}
    entry["hash"] = hashlib.sha256(canonical.dumps(body).encode()).hexdigest()
    return entry


def ed25519_pem(path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    public = path.with_suffix(".pub")
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


# --- canonical: one definition, old hashes unchanged -------------------------------------


def test_canonical_json_hash_and_time() -> None:
    assert canonical.dumps({"b": 1, "a": "Müller", "c": T0}) == (
        '{"a":"Müller","b":1,"c":"2025-03-01 02:00:00+00:00"}')
    assert canonical.sha256_hex("é") == hashlib.sha256("é".encode()).hexdigest()
    assert canonical.iso(T0.replace(microsecond=123456)) == "2025-03-01T02:00:00.123456Z"
    assert canonical.iso(datetime(2025, 3, 1, 3, 0)) == "2025-03-01T03:00:00.000000Z"  # UTC
    for text in ("2025-03-01T02:00:00.123456Z", "2025-03-01T02:00:00.123Z",
                 "2025-03-01T03:00:00.123+01:00"):
        assert canonical.parse_iso(text).astimezone(UTC).replace(microsecond=0) == T0
    with pytest.raises(canonical.DuplicateKeyError, match="'a'"):
        canonical.loads_strict('{"a":1,"b":{"a":2,"a":3}}')
    assert canonical.is_canonical('{"a":1}\n', {"a": 1})
    assert not canonical.is_canonical('{"a": 1}', {"a": 1})


def test_journal_and_archive_share_one_time_format_and_old_hashes_hold() -> None:
    from ftkit import archive

    moment = T0.replace(microsecond=987654)
    assert journal_iso(moment) == archive._iso(moment) == "2025-03-01T02:00:00.987654Z"
    # an entry stored before: its hash input is byte-identical
    fields = {"id": 7, "session_id": 1, "ts": "2025-03-01T02:00:00.987654Z", "sim_time": 1.5,
              "log": "local", "kind": "info", "step": "", "message": "Schön", "detail": "{}",
              "intent_id": None, "prev_hash": "ab" * 32}
    old = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert journal_entry_hash(fields) == hashlib.sha256(old.encode("utf-8")).hexdigest()


def test_a_ledger_written_before_still_verifies(reports: Path) -> None:
    # lines as archive_run wrote them before: no source, timestamps to the millisecond
    entries = [json.loads(line) for line in lines_of(reports)]
    prev = "0" * 64
    for entry in entries:
        del entry["source"]
        entry["started"] = entry["ended"] = "2025-03-01T02:00:00.000Z"
        entry["prev"] = prev
        prev = rehash(entry)["hash"]
    write(reports, [canonical.dumps(e) for e in entries])
    assert verify_reports(reports) == []
    assert [e.source for e in read_ledger(reports)] == [None, None, None]


# --- the ledger's limits (issue 8 #12) --------------------------------------------------


def test_a_duplicated_key_fails_verification(reports: Path) -> None:
    lines = lines_of(reports)
    assert '"outcome":"checked"' in lines[1]
    lines[1] = lines[1].replace('"outcome":"checked"',
                                '"outcome":"aborted","outcome":"checked"')
    write(reports, lines)
    assert verify_reports(reports) == [
        f"{LEDGER} line 2 has a duplicated key 'outcome': it was edited"]
    with pytest.raises(ArchiveError, match="is not a ledger entry"):
        read_ledger(reports)


def test_a_line_not_in_canonical_form_fails_verification(reports: Path) -> None:
    lines = lines_of(reports)
    lines[0] = json.dumps(json.loads(lines[0]))  # same content, other spelling
    write(reports, lines)
    assert verify_reports(reports) == [
        f"{LEDGER} line 1 (seq 1) was edited: it is not written in canonical form"]


def test_entries_listing_no_files_or_another_entrys_files_fail(reports: Path) -> None:
    lines = lines_of(reports)
    first = json.loads(lines[0])
    entries = [json.loads(line) for line in lines]
    entries[1]["files"] = {}
    entries[2]["files"] = dict(first["files"])
    for index in (1, 2):
        if index:
            entries[index]["prev"] = entries[index - 1]["hash"]
        rehash(entries[index])
    write(reports, [canonical.dumps(e) for e in entries])
    problems = verify_reports(reports)
    assert f"{LEDGER} line 2 (seq 2) lists no report files" in problems
    for name in first["files"]:
        assert f"report {name} ({LEDGER} line 3 (seq 3)) is also listed by seq 1" in problems


def test_a_file_name_outside_the_folder_is_refused(reports: Path) -> None:
    entries = [json.loads(line) for line in lines_of(reports)]
    entries[2]["files"] = {"../../outside/report.html": "0" * 64}
    write(reports, [*lines_of(reports)[:2], canonical.dumps(rehash(entries[2]))])
    problems = verify_reports(reports)
    assert (f"{LEDGER} line 3 (seq 3) lists '../../outside/report.html', which is not a "
            "report file name") in problems


def test_verify_says_what_it_cannot_detect_without_a_key(reports: Path) -> None:
    # a tail dropped with its files, and a recomputed chain: invisible without a key
    entries = [json.loads(line) for line in lines_of(reports)]
    for name in entries[2]["files"]:
        (reports / name).unlink()
    entries[1]["outcome"] = "committed"
    rehash(entries[1])
    write(reports, [canonical.dumps(entries[0]), canonical.dumps(entries[1])])
    assert verify_reports(reports) == []
    [limit] = verify_limits(keyed=False)
    assert "dropped" in limit and "recomputed" in limit and "FTKIT_SIGNING_KEY" in limit
    assert verify_limits(keyed=True) == []
    # … but the systems' journals, which recorded (seq, hash), see both
    anchors = [(e["seq"], json.loads(line)["hash"])
               for e, line in zip(entries, lines_of(reports), strict=False)]
    assert cross_check(reports, [(1, anchors[0][1])]) == []
    original = [json.loads(line) for line in lines_of(reports)]
    assert cross_check(reports, [(2, "f" * 64), (3, "e" * 64)]) == [
        "seq 2 differs from the hash its system journaled: the entry was edited and the "
        "chain recomputed",
        f"seq 3 is journaled with its system but missing from the {LEDGER}: entries were "
        "dropped",
    ]
    assert original[1]["outcome"] == "committed"


def test_signed_entries_detect_a_recomputed_chain(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "keys").mkdir()
    key = ed25519_pem(tmp_path / "keys" / "ledger.pem")
    monkeypatch.setenv("FTKIT_SIGNING_KEY", str(key))
    for n in range(1, 4):
        entry = archive(tmp_path, n, journal_entry=40 + n, journal_hash=f"{n:064x}")
        assert entry.signature and entry.signature["alg"] == "ed25519"
        assert (entry.journal_entry, entry.journal_hash) == (40 + n, f"{n:064x}")
    reports = tmp_path / "reports"
    public = key.with_suffix(".pub")
    assert verify_reports(reports) == []
    assert verify_reports(reports, public_key=public) == []
    # the forger edits seq 2 and recomputes every later hash, but cannot sign
    entries = [json.loads(line) for line in lines_of(reports)]
    entries[1]["outcome"] = "committed"
    rehash(entries[1])
    entries[2]["prev"] = entries[1]["hash"]
    rehash(entries[2])
    write(reports, [canonical.dumps(e) for e in entries])
    message = "it was edited and its hash recomputed"
    assert [p for p in verify_reports(reports, public_key=public) if message in p] == [
        f"{LEDGER} line 2 (seq 2) has a signature that does not match its hash: {message}",
        f"{LEDGER} line 3 (seq 3) has a signature that does not match its hash: {message}",
    ]
    # … nor strip the signatures, nor re-sign with a key of their own
    for e in entries:
        e.pop("signature")
    write(reports, [canonical.dumps(e) for e in entries])
    assert verify_reports(reports, public_key=public) == [
        f"{LEDGER} line {n} (seq {n}) is not signed by the given key" for n in (1, 2, 3)]
    other = ed25519_pem(tmp_path / "keys" / "other.pem")
    monkeypatch.setenv("FTKIT_VERIFY_KEY", str(public))
    monkeypatch.setenv("FTKIT_SIGNING_KEY", str(other))
    archive(tmp_path, 9)
    assert verify_reports(reports)[-1] == \
        f"{LEDGER} line 4 (seq 4) is signed by another key than the given one"


def test_the_journal_anchor_comes_from_the_caller_or_the_result(tmp_path: Path) -> None:
    result = RunResult("committed", system="sim://lab", change_id="CHG-1",
                       extra={"journal_entry": 57, "journal_hash": "c" * 64})
    nb = new_notebook(cells=[new_code_cell("x", execution_count=1, outputs=[
        new_output("display_data", data=result._repr_mimebundle_())])])
    nbformat.write(nb, str(tmp_path / "a.ipynb"))
    entry = archive_run(tmp_path / "a.ipynb", runbook="active-upgrade", parameters={},
                        started=T0, ended=T0, reports=tmp_path / "reports")
    assert (entry.journal_entry, entry.journal_hash) == (57, "c" * 64)
    given = archive(tmp_path, 2, journal_entry=3, journal_hash="d" * 64)
    assert (given.journal_entry, given.journal_hash) == (3, "d" * 64)
    assert archive(tmp_path, 3).journal_entry is None  # none known: none written
    assert '"journal_hash":"' + "d" * 64 in lines_of(tmp_path / "reports")[1]
    assert verify_reports(tmp_path / "reports") == []


def test_a_signing_key_beside_the_reports_or_not_a_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    inside = ed25519_pem(tmp_path / "reports" / "key.pem")
    public = ed25519_pem(tmp_path / "key.pem").with_suffix(".pub")
    for key, message in ((inside, "inside the reports folder"),
                         (tmp_path / "nope.pem", "cannot read the signing key"),
                         (public, "a public key cannot sign")):
        with pytest.raises(ArchiveError, match=message) as info:
            archive(tmp_path, 1, signing_key=key)
        assert "\n" not in str(info.value)
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["key.pem", "key.pub"]


# --- incremental verification ------------------------------------------------------------


def test_incremental_verify_checks_what_was_added_since_the_checkpoint(
        tmp_path: Path, reports: Path) -> None:
    assert verify_reports(reports, since_checkpoint=True) == []  # no checkpoint: in full
    written = (reports / CHECKPOINT).read_text(encoding="utf-8")
    point = json.loads(written)
    assert point["seq"] == 3 and point["hash"] == read_ledger(reports)[-1].hash
    assert verify_reports(reports, since_checkpoint=True) == []  # nothing new: not rewritten
    assert (reports / CHECKPOINT).read_text(encoding="utf-8") == written
    archive(tmp_path, 4)
    # an old report edited after its verification is not hashed again (a stated limit) …
    old = reports / str(read_ledger(reports)[0].html)
    old.write_text(old.read_text(encoding="utf-8") + " ", encoding="utf-8")
    assert verify_reports(reports, since_checkpoint=True) == []
    assert "presence only" in verify_limits(keyed=True, since_checkpoint=True)[0]
    assert json.loads((reports / CHECKPOINT).read_text(encoding="utf-8"))["seq"] == 4
    # … the full verify finds it; new entries are checked in full
    assert verify_reports(reports) == [
        f"report {old.name} ({LEDGER} line 1 (seq 1)) was edited: SHA-256 mismatch"]
    new = archive(tmp_path, 5)
    (reports / str(new.notebook)).unlink()
    assert verify_reports(reports, since_checkpoint=True) == [
        f"report {new.notebook} ({LEDGER} line 5 (seq 5)) is missing"]
    assert json.loads((reports / CHECKPOINT).read_text(encoding="utf-8"))["seq"] == 4


def test_the_checkpoint_is_itself_verified(tmp_path: Path, reports: Path) -> None:
    assert verify_reports(reports, since_checkpoint=True) == []
    lines = lines_of(reports)
    entry = json.loads(lines[0])
    entry["outcome"] = "committed"
    write(reports, [canonical.dumps(rehash(entry)), *lines[1:]])
    assert verify_reports(reports, since_checkpoint=True) == [
        f"{LEDGER} changed at or before seq 3 since it was verified: an entry was edited, "
        "removed or reordered"]
    write(reports, lines[:2])
    assert "shorter" in verify_reports(reports, since_checkpoint=True)[0]
    write(reports, lines)
    point = json.loads((reports / CHECKPOINT).read_text(encoding="utf-8"))
    (reports / CHECKPOINT).write_text(json.dumps({**point, "hash": "0" * 64}), "utf-8")
    # the state is keyed (HMAC, key outside the reports): an edited one is not trusted, and
    # everything is verified instead (here nothing else is wrong)
    assert verify_reports(reports, since_checkpoint=True) == [
        f"checkpoint {CHECKPOINT} (seq 3) is not authenticated by this machine's "
        "verification key: it was written elsewhere or edited; everything was verified "
        "instead"]
    elsewhere = tmp_path / "nightly.json"
    assert verify_reports(reports, since_checkpoint=True, checkpoint=elsewhere) == []
    assert json.loads(elsewhere.read_text(encoding="utf-8"))["seq"] == 3


# --- one read for the chain, the files and the checkpoints (issue 18) --------------------


def _apart(reports: Path, **options: Any) -> list[str]:
    """What verify_checkpoints and verify_reports find, each reading the ledger itself."""
    verdict = verify_checkpoints(reports)
    return verify_reports(reports, signed_through=verdict.covered, **options) + \
        verdict.problems


def test_verify_archive_reads_once_and_finds_what_its_parts_find(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "keys").mkdir()
    monkeypatch.setenv("FTKIT_SIGNING_KEY", str(ed25519_pem(tmp_path / "keys" / "k.pem")))
    for n in range(1, 5):
        archive(tmp_path, n)
    reports = tmp_path / "reports"
    found = verify_archive(reports)
    assert (found.problems, found.entries, found.checkpoints.covered) == ([], 4, 4)
    pristine = {p.name: p.read_bytes() for p in reports.iterdir() if p.is_file()}
    ledger = pristine[LEDGER]
    first, second, *_rest = read_ledger(reports)
    html = reports / str(second.html)

    def bigger() -> None:  # a report read in more than one call
        html.write_bytes(pristine[html.name] + b"<!-- -->" * (1 << 18))

    def fifo() -> None:  # never waited on
        html.unlink()
        os.mkfifo(html)

    attacks = {
        "an edited line": lambda: (reports / LEDGER).write_bytes(
            ledger.replace(b'"outcome":"checked"', b'"outcome":"aborted"', 1)),
        "a line not in canonical form": lambda: (reports / LEDGER).write_bytes(
            ledger.replace(b'{"account"', b'{ "account"', 1)),
        "a duplicated key": lambda: (reports / LEDGER).write_bytes(
            ledger.replace(b'{"account"', b'{"seq":1,"account"', 1)),
        "bytes that are not UTF-8": lambda: (reports / LEDGER).write_bytes(
            ledger.replace(b'"outcome":"checked"', b'"outcome":"check\xffd"', 1)),
        "a byte-order mark": lambda: (reports / LEDGER).write_bytes(b"\xef\xbb\xbf" + ledger),
        "the last line dropped": lambda: (reports / LEDGER).write_bytes(
            ledger[:ledger.rstrip().rfind(b"\n") + 1]),
        "a report edited beyond 1 MiB": bigger,
        "a report that is a FIFO": fifo,
        "a report removed": lambda: (reports / str(first.notebook)).unlink(),
    }
    said = {"a report edited beyond 1 MiB": "was edited: SHA-256 mismatch",
            "a report that is a FIFO": "is a FIFO, not a regular file"}
    for what, attack in attacks.items():
        attack()
        problems = verify_archive(reports).problems
        assert problems and problems == _apart(reports), what
        if what in said:
            assert problems == [f"report {html.name} ({LEDGER} line 2 (seq 2)) {said[what]}"]
        for name in set(pristine) | {p.name for p in reports.iterdir()}:
            (reports / name).unlink(missing_ok=True)
            if name in pristine:
                (reports / name).write_bytes(pristine[name])
    assert verify_archive(reports).problems == []
    # incremental: the lines before the state are listed, not checked again
    assert verify_archive(reports, since_checkpoint=True).problems == []
    state = (reports / CHECKPOINT).read_bytes()
    archive(tmp_path, 5)
    (reports / str(first.notebook)).unlink()
    assert verify_archive(reports, since_checkpoint=True).problems == \
        _apart(reports, since_checkpoint=True) == [
            f"report {first.notebook} ({LEDGER} seq 1) is missing"]
    os.mkfifo(reports / str(first.notebook))  # something else in its place is named
    assert verify_archive(reports, since_checkpoint=True).problems == [
        f"report {first.notebook} ({LEDGER} seq 1) is a FIFO, not a regular file"]
    assert (reports / CHECKPOINT).read_bytes() == state


# --- reports add refusals (issue 9) -----------------------------------------------------


def test_a_notebook_archived_already_or_never_executed_is_refused(tmp_path: Path) -> None:
    first = archive(tmp_path, 1)
    reports = tmp_path / "reports"
    before = sorted(p.name for p in reports.iterdir())
    for notebook, message in (
            (tmp_path / "run-1.ipynb", "already archived as ledger entry seq 1 "
                                       f"\\({first.notebook}\\)"),
            (reports / str(first.notebook), "already archived: it is the report of ledger "
                                            "entry seq 1")):
        with pytest.raises(ArchiveError, match=message) as info:
            archive_run(notebook, runbook="check", parameters={}, started=T0, ended=T0,
                        reports=reports)
        assert "\n" not in str(info.value)
    blank = new_notebook(cells=[new_code_cell("print(1)")])
    nbformat.write(blank, str(tmp_path / "blank.ipynb"))
    with pytest.raises(ArchiveError, match="never executed"):
        archive_run(tmp_path / "blank.ipynb", runbook="check", parameters={}, started=T0,
                    ended=T0, reports=reports)
    assert sorted(p.name for p in reports.iterdir()) == before
    # a run that failed before any cell ran is still recorded when the runner says why
    entry = archive_run(tmp_path / "blank.ipynb", runbook="check", parameters={},
                        started=T0, ended=T0, reports=reports,
                        error="DeadKernelError: kernel died")
    assert entry.outcome == "failed" and verify_reports(reports) == []


def test_archiving_onto_a_damaged_last_line_writes_the_report_but_no_entry(
        tmp_path: Path, reports: Path) -> None:
    lines = lines_of(reports)
    write(reports, [*lines[:2], lines[2][:-9]])
    with pytest.raises(ArchiveError, match=r"ledger\.jsonl:3 is not a ledger entry .*"
                                           r"not entered in the ledger") as info:
        archive(tmp_path, 7)
    assert "\n" not in str(info.value)
    assert len(lines_of(reports)) == 3


# --- the HTML report (issue 11) ----------------------------------------------------------


class _Loads(HTMLParser):
    """Every attribute that would make a browser fetch or run something."""

    def __init__(self) -> None:
        super().__init__()
        self.fetches: list[str] = []
        self.tags: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_title = tag == "title"
        for name, value in attrs:
            if name in ("src", "href", "srcset", "xlink:href") and value and \
                    not value.startswith(("data:", "#")):
                self.fetches.append(f"{tag} {name}={value}")
            if name.startswith("on"):
                self.fetches.append(f"{tag} {name}")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


def test_the_html_report_is_complete_self_contained_and_named(tmp_path: Path) -> None:
    svg = ("<?xml version='1.0'?><!DOCTYPE svg><svg xmlns='http://www.w3.org/2000/svg'>"
           "<text>outage 45 s</text></svg>")
    outputs = [
        new_output("stream", name="stdout", text="\x1b[32minstall: 50%\rinstall: done\x1b[0m\n"),
        new_output("display_data", data={"text/html": "<table><tr><td>ok</td></tr></table>"
                                                      "<script src='https://cdn/x.js'></script>"
                                                      "<img src='http://x/y.png' onload='z()'>",
                                         "text/plain": "t"}),
        new_output("display_data", data={"image/png": PNG + "\n", "text/plain": "fig"}),
        new_output("display_data", data={"image/svg+xml": svg}),
        new_output("error", ename="StepFailedError", evalue="exited with code 1603",
                   traceback=["\x1b[31mTraceback\x1b[0m", "  File x/y.py"]),
    ]
    nb_path = executed(tmp_path / "nb.ipynb", *outputs)
    entry = archive_run(nb_path, runbook="check", parameters={"change_id": "CHG-9"},
                        started=T0, ended=T0, reports=tmp_path / "reports")
    page = (tmp_path / "reports" / str(entry.html)).read_text(encoding="utf-8")
    parsed = _Loads()
    parsed.feed(page)
    assert parsed.fetches == []
    assert "script" not in parsed.tags and "link" not in parsed.tags
    assert parsed.title == "CHG-9 · sim://lab · checked · check"
    assert "\x1b" not in page and "install: done" in page and "50%" not in page
    assert "<td>ok</td>" in page and f"data:image/png;base64,{PNG}'" in page
    assert "<text>outage 45 s</text>" in page and "<?xml" not in page
    assert re.search(r"<b>exited with code 1603</b><details>", page)  # no class name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # markdown's raw HTML, escaped
    assert "<em>check</em>" in page and "<th>Started</th>" in page and " UTC</td>" in page
    assert page == notebook_html(nbformat.read(str(tmp_path / "reports" / str(entry.notebook)),
                                               as_version=4))
    assert len(page.encode()) < 8_000
    banner = new_markdown_cell('<span style="color:red">An Exception was encountered at '
                               '\'<a href="#papermill-error-cell">In [2]</a>\'.</span>',
                               metadata={"tags": ["papermill-error-cell-tag"]})
    text = notebook_html(new_notebook(cells=[banner]))
    assert "<b>This run stopped with an error: what failed" in text and "cell [" not in text
    assert "&lt;span" not in text and "href" not in text
    assert strip_ansi("\x1b]8;;http://x\x07link\x1b]8;;\x07 \x1b[1;31mred\x1b[0m") == "link red"
