"""Signed checkpoints (ftkit.checkpoints), fast: the note's format and signatures, the
journal anchor of a run whose system had no journal yet, what verify finds against the
journal and a witness, and what it says it cannot prove. No kernel runs here; the same
attacks on an archive of real runs are tests/test_tamper.py."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from ftkit.archive import LEDGER, RunResult, archive_run
from ftkit.checkpoints import (
    CHECKPOINTS,
    key_id,
    make_note,
    parse_note,
    signers_of,
    verify_checkpoints,
)
from ftkit.journal import Journal
from ftkit.runner import anchor
from ftkit.sim.driver import SimDriver

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def test_a_note_is_a_c2sp_signed_note_and_its_signature_is_checked() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    note = make_note(origin="ftkit-archive/0123456789abcdef", size=7, head="ab" * 32,
                     signers=[key], time="2026-12-03T05:30:00.000000Z")
    body, _, signature = note.partition("\n\n")
    assert body.split("\n") == [
        "ftkit-archive/0123456789abcdef", "7", base64.b64encode(bytes([0xAB] * 32)).decode(),
        "time 2026-12-03T05:30:00.000000Z", f"key ed25519 {base64.b64encode(raw).decode()}"]
    dash, name, blob = signature.strip().split(" ")
    assert (dash, name) == ("\u2014", "ftkit-archive")
    assert base64.b64decode(blob)[:4] == key_id(raw) == hashlib.sha256(
        b"ftkit-archive\n\x01" + raw).digest()[:4]
    point = parse_note(note)
    assert (point.size, point.head, point.fingerprint) == (7, "ab" * 32,
                                                           hashlib.sha256(raw).hexdigest())
    assert signers_of(point) == [point.fingerprint]
    assert signers_of(parse_note(note.replace("\n7\n", "\n8\n"))) is None  # edited
    with pytest.raises(ValueError):
        parse_note("not a checkpoint\n1\n")


def executed(path: Path, system: str, outcome: str = "checked") -> Path:
    result = RunResult(outcome, system=system, change_id="CHG-1", operator="o")
    nb = new_notebook(cells=[new_code_cell("x", execution_count=1, outputs=[
        new_output("display_data", data=result._repr_mimebundle_())])])
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def archived(tmp_path: Path, make_sim: Callable[..., SimDriver],
             ftkit_dirs: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Three runs on a new system, archived and anchored as `ftkit run` does, witnessed."""
    monkeypatch.setenv("FTKIT_WITNESS", str(tmp_path / "witness"))
    system = make_sim().target
    for n, outcome in enumerate(("failed", "checked", "committed"), start=1):
        entry = archive_run(executed(tmp_path / f"run-{n}.ipynb", system, outcome),
                            runbook="readiness-check", parameters={},
                            started=T0 + timedelta(minutes=n), ended=T0 + timedelta(minutes=n),
                            reports=ftkit_dirs.reports)
        anchor(entry, reports=ftkit_dirs.reports)
    return SimpleNamespace(system=system, reports=ftkit_dirs.reports,
                           witness=tmp_path / "witness")


def test_a_run_on_a_system_without_a_journal_is_anchored_in_a_new_one(
        archived: SimpleNamespace) -> None:
    with Journal.open(archived.system) as journal:
        anchors = journal.anchors()
        notes = [e.detail["checkpoint"] for e in journal.entries(kinds=["info"])
                 if e.step == "checkpoint"]
    assert [seq for seq, _hash in anchors] == [1, 2, 3]
    assert [parse_note(n).size for n in notes] == [1, 2, 3]
    verdict = verify_checkpoints(archived.reports)
    assert verdict.problems == [] and (verdict.own, verdict.outside) == (3, 6)


def test_a_dropped_tail_or_an_emptied_archive_is_found_and_named(
        archived: SimpleNamespace) -> None:
    ledger = archived.reports / LEDGER
    lines = ledger.read_text().splitlines()
    ledger.write_text("\n".join(lines[:2]) + "\n")
    notes = (archived.reports / CHECKPOINTS).read_text().splitlines()
    (archived.reports / CHECKPOINTS).write_text("\n".join(notes[:2]) + "\n")
    problems = verify_checkpoints(archived.reports).problems
    assert problems[0].startswith(
        f"ledger entry seq 3 (readiness-check CHG-1, committed, on {archived.system}) is "
        f"missing: the journal of {archived.system}")
    assert any("witness" in p for p in problems)
    ledger.unlink()
    (archived.reports / CHECKPOINTS).unlink()
    problems = verify_checkpoints(archived.reports).problems
    assert "the ledger ends at seq 0 (entries 1–3 dropped)" in problems[-1]


def test_an_edited_entry_is_named_with_what_its_journal_recorded(
        archived: SimpleNamespace) -> None:
    from ftkit import canonical

    ledger = archived.reports / LEDGER
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    prev = "0" * 64
    for entry in entries:  # outcome of seq 1 edited, the chain recomputed
        entry.pop("signature", None)
        entry.update(prev=prev, outcome="checked" if entry["seq"] == 1 else entry["outcome"])
        entry["hash"] = canonical.sha256_hex(canonical.dumps(
            {k: v for k, v in entry.items() if k != "hash"}))
        prev = entry["hash"]
    ledger.write_text("".join(canonical.dumps(e) + "\n" for e in entries))
    problems = verify_checkpoints(archived.reports).problems
    assert problems[0].startswith(
        f"ledger entry seq 1 (readiness-check CHG-1, failed, on {archived.system}) differs "
        f"from the checkpoint in the journal of {archived.system}")
    assert "(the ledger says checked, the journal" in problems[0]


def test_verify_says_what_it_cannot_prove(archived: SimpleNamespace,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FTKIT_WITNESS")
    limits = verify_checkpoints(archived.reports).limits
    assert any("no witness was given" in limit for limit in limits)
    assert any("nothing is signed" in limit for limit in limits)
    limits = verify_checkpoints(archived.reports, witnesses=[archived.witness]).limits
    assert not any("no witness" in limit for limit in limits)
    assert not any("no checkpoint outside" in limit for limit in limits)


def test_reports_add_publishes_to_a_witness_that_verify_reads(
        tmp_path: Path, ftkit_dirs: SimpleNamespace,
        capsys: pytest.CaptureFixture[str]) -> None:
    from ftkit.cli import main

    witness = tmp_path / "elsewhere"
    for n in (1, 2):
        assert main(["reports", "add", str(executed(tmp_path / f"nb-{n}.ipynb", "sim://gone")),
                     "--witness", str(witness)]) == 0
    [published] = witness.glob("*.jsonl")
    assert [parse_note(json.loads(line)["note"]).size
            for line in published.read_text().splitlines()] == [1, 2]
    capsys.readouterr()
    assert main(["reports", "verify", "--witness", str(witness)]) == 0
    assert "against 2 checkpoint(s) in the archive and 2 in" in capsys.readouterr().out
    # the system is gone (no journal at all): the witness alone names the dropped tail
    ledger = ftkit_dirs.reports / LEDGER
    ledger.write_text(ledger.read_text().splitlines()[0] + "\n")
    (ftkit_dirs.reports / CHECKPOINTS).unlink()
    for name in ftkit_dirs.reports.glob("*-2.*"):
        name.unlink()
    assert main(["reports", "verify", "--witness", str(witness)]) == 1
    assert "line 2 recorded a checkpoint at seq 2, the ledger ends at seq 1" in \
        capsys.readouterr().out
