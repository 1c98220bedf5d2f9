"""docs/VERIFY.md walked through: its commands, run in order by bash on a fresh signed
archive, in a Python that cannot import ftkit (a stand-in package that refuses to load
comes first on its path), check the key, the files, the chain, the checkpoints and the
attestations; and the same commands fail on a copy with one byte of a report changed.
Also the keys command and the attestation's checks through ftkit's own interfaces."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from ftkit.archive import RunResult, archive_run, read_ledger
from ftkit.cli import main

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def commands() -> str:
    """The ``sh`` blocks of docs/VERIFY.md, in order, as one script."""
    text = (REPO / "docs" / "VERIFY.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh\n(.*?)^```$", text, flags=re.S | re.M)
    assert len(blocks) >= 6
    return "set -euo pipefail\n" + "\n".join(blocks)


def fresh_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> SimpleNamespace:
    assert main(["keys", "init"]) == 0
    out = capsys.readouterr().out
    fingerprint = out.split("fingerprint (SHA-256 of the raw public key): ")[1].split()[0]
    reports = tmp_path / "reports"
    for n, outcome in enumerate(("checked", "committed", "failed"), start=1):
        result = RunResult(outcome, system="sim://lab", change_id=f"CHG-{n}", operator="o")
        nb = new_notebook(cells=[new_code_cell("x", execution_count=1, outputs=[
            new_output("display_data", data=result._repr_mimebundle_())])])
        nbformat.write(nb, str(tmp_path / f"run-{n}.ipynb"))
        archive_run(tmp_path / f"run-{n}.ipynb", runbook="check", parameters={"n": n},
                    started=T0 + timedelta(minutes=n), ended=T0 + timedelta(minutes=n + 1),
                    reports=reports)
    key = Path(os.environ["FTKIT_HOME"]) / "keys" / "archive-ed25519.pem"
    return SimpleNamespace(reports=reports, key=key, fingerprint=fingerprint,
                           public=key.with_name("archive-ed25519.pub.pem"))


def walk(tmp_path: Path, reports: Path, public: Path) -> subprocess.CompletedProcess[str]:
    """Run docs/VERIFY.md's commands on REPORTS with PUBLIC as the trusted key."""
    shadow = tmp_path / "no-ftkit" / "ftkit"
    shadow.mkdir(parents=True, exist_ok=True)
    (shadow / "__init__.py").write_text("raise ImportError('the auditor has no ftkit')\n")
    env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
           "PYTHONPATH": str(shadow.parent), "R": str(reports), "PUB": str(public),
           "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"}
    return subprocess.run(["bash", "-c", commands()], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_verify_md_checks_a_fresh_archive_without_ftkit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arc = fresh_archive(tmp_path, capsys)
    done = walk(tmp_path, arc.reports, arc.public)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"{arc.fingerprint}  -" in out  # step 1: openssl + sha256sum give the same print
    assert "3 ledger lines chained, each signed by the key" in out
    assert "Signature Verified Successfully" in out
    assert "every checkpoint is signed by the key and matches the ledger" in out
    assert out.count("verified by securesystemslib") == 3
    assert "check failed sim://lab" in out  # the attestation's predicate: the run's facts


def test_verify_md_fails_on_a_changed_report_or_another_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arc = fresh_archive(tmp_path, capsys)
    copy = tmp_path / "copy"
    shutil.copytree(arc.reports, copy)
    page = copy / str(read_ledger(copy)[1].html)
    page.write_bytes(page.read_bytes().replace(b"<", b"(", 1))
    done = walk(tmp_path, copy, arc.public)
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr
    other = tmp_path / "other.pub.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    done = walk(tmp_path, arc.reports, other)
    assert done.returncode != 0 and "InvalidSignature" in done.stderr


def test_keys_init_show_rotate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arc = fresh_archive(tmp_path, capsys)
    assert stat.S_IMODE(arc.key.stat().st_mode) == 0o600
    assert main(["keys", "init"]) == 2  # there is one already: refused, nothing changed
    assert "there is a key at" in capsys.readouterr().err
    assert main(["keys", "show"]) == 0
    assert arc.fingerprint in capsys.readouterr().out
    assert main(["keys", "rotate"]) == 0
    out = capsys.readouterr().out
    assert f"rotated the archive key: {arc.fingerprint} → " in out
    new = out.split(" → ")[1].split(";")[0]
    assert list(arc.key.parent.glob(f"archive-ed25519.{arc.fingerprint[:16]}.retired.pem"))
    last = json.loads((arc.reports / "checkpoints.jsonl").read_text().splitlines()[-1])
    assert "\nnext-key ed25519 " in last["note"] and last["note"].count("\n— ") == 2
    # runs archived after the rotation are signed by the new key, which the rotation vouched
    # for: verify trusts it without being told
    result = RunResult("checked", system="sim://lab", change_id="CHG-4", operator="o")
    nb = new_notebook(cells=[new_code_cell("x", execution_count=1, outputs=[
        new_output("display_data", data=result._repr_mimebundle_())])])
    nbformat.write(nb, str(tmp_path / "run-4.ipynb"))
    archive_run(tmp_path / "run-4.ipynb", runbook="check", parameters={}, started=T0,
                ended=T0, reports=arc.reports)
    assert main(["reports", "verify", "--reports", str(arc.reports)]) == 0, \
        capsys.readouterr().out
    assert new[:16] in capsys.readouterr().out
    arc.key.chmod(0o644)
    assert main(["keys", "show"]) == 2
    assert "readable by others" in capsys.readouterr().err


def test_the_attestation_is_a_dsse_envelope_of_an_in_toto_statement(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from ftkit.attest import PAYLOAD_TYPE, STATEMENT_TYPE, verify_envelope

    arc = fresh_archive(tmp_path, capsys)
    entry = read_ledger(arc.reports)[0]
    [name] = [n for n in entry.files if n.endswith(".intoto.jsonl")]
    data = json.loads((arc.reports / name).read_text())
    assert data["payloadType"] == PAYLOAD_TYPE
    assert data["signatures"][0]["keyid"] == arc.fingerprint
    statement = verify_envelope(data, load_pem_public_key(arc.public.read_bytes()))
    assert statement["_type"] == STATEMENT_TYPE
    assert {s["name"]: s["digest"]["sha256"] for s in statement["subject"]} == {
        n: d for n, d in entry.files.items() if n != name}
    assert statement["predicate"]["seq"] == 1
    assert statement["predicate"]["outcome"] == "checked"
    with pytest.raises(ValueError, match="no signature"):
        verify_envelope({**data, "payload": data["payload"][:-4] + "AAA="},
                        load_pem_public_key(arc.public.read_bytes()))
