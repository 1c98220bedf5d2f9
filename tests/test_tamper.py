"""The tamper suite: attacks on a copy of a real archive, and what must still pass.

One archive is built per module (time scale 0): three systems, a failed readiness check,
upgrades (one committed, one paused then aborted by another operator), a system removed
since (its journal kept aside by ``ftkit sim remove``), and a plain papermill run added
with ``ftkit reports add``; signed with the archive key (``ftkit keys init``) and
witnessed (``$FTKIT_WITNESS``). Each test restores that archive, its home and witness at
the same paths, does one attack as an insider would (files, lines and checkpoints
rewritten consistently, re-signed where the attacker has a key) and asserts ``ftkit
reports verify`` exits 1 naming the entry the attack is about (docs/VERIFY.md).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ftkit import canonical
from ftkit.checkpoints import CHECKPOINTS, ORIGIN_PREFIX, make_note
from ftkit.cli import main

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
COMMIT = "{split: proceed, merge: proceed, commit: commit}"
PAUSE = "{split: proceed, merge: later}"

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def _env(root: Path) -> dict[str, str]:
    return {"FTKIT_HOME": str(root / "home"), "FTKIT_REPORTS": str(root / "reports"),
            "FTKIT_WITNESS": str(root / "witness")}


def _upgrade(system: str, change: str, operator: str, decisions: str) -> list[str]:
    return ["run", "active-upgrade", "-p", "system", system, "-p", "mode", "auto",
            "-p", "decisions", decisions, "-p", "change_id", change, "-p", "operator",
            operator, "-p", "reason", f"tamper suite {change}",
            "-p", "config", str(EXAMPLES / "demo-config.toml")]


def _readiness(system: str, *packages: Path) -> list[str]:
    argv = ["run", "readiness-check", "-p", "system", system,
            "-p", "config", str(EXAMPLES / "demo-config.toml")]
    if packages:
        argv += ["-p", "packages", json.dumps([str(p) for p in packages])]
    return argv


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The archive, built once in ``work/``, kept as ``pristine/``."""
    import papermill

    base = tmp_path_factory.mktemp("tamper")
    work, pristine = base / "work", base / "pristine"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in _env(work).items():
            mp.setenv(name, value)
        mp.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        assert main(["keys", "init"]) == 0
        for name in ("a", "b", "c"):
            assert main(["sim", "create", name]) == 0
        unsupported = EXAMPLES / "packages" / "unsupported" / "bios-update.toml"
        assert main(_readiness("sim://a", unsupported)) == 1  # 1: failed readiness check
        assert main(_readiness("sim://c")) == 0  # 2
        assert main(_upgrade("sim://c", "CHG-C", "alice", COMMIT)) == 0  # 3
        assert main(_upgrade("sim://b", "CHG-B", "bob", PAUSE)) == 0  # 4: paused
        assert main(["run", "abort", "-p", "system", "sim://b", "-p", "operator", "carol",
                     "-p", "reason", "tamper suite", "-p", "config",
                     str(EXAMPLES / "demo-config.toml")]) == 0  # 5
        assert main(_upgrade("sim://a", "CHG-A", "alice", COMMIT)) == 0  # 6
        out = base / "status.ipynb"
        papermill.execute_notebook(str(REPO / "runbooks" / "status.ipynb"), str(out),
                                   parameters={"system": "sim://a"}, kernel_name="python3",
                                   cwd=str(REPO / "runbooks"), progress_bar=False)
        assert main(["reports", "add", str(out)]) == 0  # 7
        assert main(["sim", "remove", "c"]) == 0  # its journal is kept aside
    shutil.copytree(work, pristine)
    yield SimpleNamespace(work=work, pristine=pristine)


@pytest.fixture
def arc(built: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The pristine archive restored at the place it was built, its environment set."""
    shutil.rmtree(built.work)
    shutil.copytree(built.pristine, built.work)
    for name, value in _env(built.work).items():
        monkeypatch.setenv(name, value)
    reports = built.work / "reports"
    return SimpleNamespace(root=built.work, reports=reports, ledger=reports / "ledger.jsonl",
                           key=built.work / "home" / "keys" / "archive-ed25519.pem",
                           witness=built.work / "witness")


def verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["reports", "verify", *argv])
    out, err = capsys.readouterr()
    return code, out + err


def entries(arc: SimpleNamespace) -> list[dict[str, Any]]:
    return [json.loads(line) for line in arc.ledger.read_text().splitlines() if line.strip()]


def _private(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def rewrite(arc: SimpleNamespace, kept: list[dict[str, Any]], key: Any) -> None:
    """What an insider with KEY does: renumber KEPT, re-chain, re-sign every line, and
    write the archive's checkpoints again to match (the witness and journals are out of
    reach)."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    prev, lines, notes = "0" * 64, [], []
    for seq, entry in enumerate(kept, start=1):
        entry = {k: v for k, v in entry.items() if k not in ("hash", "signature")}
        entry.update(seq=seq, prev=prev)
        entry["hash"] = canonical.sha256_hex(canonical.dumps(entry))
        entry["signature"] = {"alg": "ed25519", "key": raw.hex(), "sig": base64.b64encode(
            key.sign(entry["hash"].encode("ascii"))).decode("ascii")}
        prev = entry["hash"]
        lines.append(canonical.dumps(entry))
    arc.ledger.write_text("".join(line + "\n" for line in lines))
    origin = ORIGIN_PREFIX + json.loads(lines[0])["hash"][:16] if lines else ""
    for seq, line in enumerate(lines, start=1):
        notes.append(canonical.dumps({"note": make_note(
            origin=origin, size=seq, head=json.loads(line)["hash"], signers=[key])}))
    (arc.reports / CHECKPOINTS).write_text("".join(n + "\n" for n in notes))


def drop_files(arc: SimpleNamespace, entry: dict[str, Any]) -> None:
    for name in entry["files"]:
        (arc.reports / name).unlink()


# --- what must pass ----------------------------------------------------------------------


def test_the_archive_as_built_verifies(arc: SimpleNamespace,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    listed = entries(arc)
    assert [(e["runbook"], e["system"], e["outcome"]) for e in listed] == [
        ("readiness-check", "sim://a", "failed"), ("readiness-check", "sim://c", "checked"),
        ("active-upgrade", "sim://c", "committed"), ("active-upgrade", "sim://b", "paused"),
        ("abort", "sim://b", "aborted"), ("active-upgrade", "sim://a", "committed"),
        ("status", "sim://a", listed[6]["outcome"])]
    code, out = verify(capsys, "--witness", str(arc.witness))
    assert code == 0, out
    assert "7 ledger entries and their reports verified" in out
    public = arc.key.with_name("archive-ed25519.pub.pem")
    code, out = verify(capsys, "--public-key", str(public), "--incremental")
    assert code == 0, out
    code, out = verify(capsys, "--public-key", str(public), "--incremental")
    assert code == 0, out


def test_a_new_legitimate_run_still_verifies(arc: SimpleNamespace,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO),
                                                      os.environ.get("PYTHONPATH", "")]))
    assert main(_readiness("sim://a")) == 0
    code, out = verify(capsys, "--witness", str(arc.witness))
    assert code == 0, out
    assert "8 ledger entries" in out


# --- the attacks -------------------------------------------------------------------------


def test_a_dropped_tail_fails_naming_the_entry(arc: SimpleNamespace,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    listed = entries(arc)
    drop_files(arc, listed[-1])
    rewrite(arc, listed[:-1], _private(arc.key))
    code, out = verify(capsys)
    assert code == 1
    assert "ledger entry seq 7 (status, " in out and "entry 7 dropped" in out


def test_a_dropped_middle_of_a_vanished_system_fails_naming_it(
        arc: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    listed = entries(arc)
    for entry in listed[1:3]:
        drop_files(arc, entry)
    rewrite(arc, [listed[0], *listed[3:]], _private(arc.key))
    code, out = verify(capsys)
    assert code == 1
    first = out.strip().splitlines()[0]
    assert "ledger entry seq 2 (readiness-check, checked, on sim://c)" in first, out
    assert "the journal of sim://c" in first


def test_an_emptied_or_deleted_archive_fails(arc: SimpleNamespace,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    for path in arc.reports.iterdir():
        path.unlink()
    code, out = verify(capsys)
    assert code == 1 and "the ledger ends at seq 0" in out
    assert "ledger entry seq 7 (status, " in out
    shutil.rmtree(arc.reports)
    code, out = verify(capsys, "--witness", str(arc.witness))
    assert code == 1 and "entries 1–7 dropped" in out


def test_an_archive_resigned_with_another_key_fails(arc: SimpleNamespace,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    rewrite(arc, entries(arc), Ed25519PrivateKey.generate())
    code, out = verify(capsys)
    assert code == 1
    assert "seq 1 in the journal of sim://a" in out and "re-signed with another key" in out
    code, out = verify(capsys, "--public-key", str(arc.key.with_name(
        "archive-ed25519.pub.pem")))
    assert code == 1 and "line 1 (seq 1) is signed by another key than the given one" in out


def test_an_edited_readiness_entry_fails_naming_it(arc: SimpleNamespace,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    listed = entries(arc)
    listed[0].update(outcome="checked", error=None)
    rewrite(arc, listed, _private(arc.key))
    code, out = verify(capsys)
    assert code == 1
    assert ("ledger entry seq 1 (readiness-check, failed, on sim://a) differs from the "
            "checkpoint in the journal of sim://a") in out
    assert "the ledger says checked" in out


def test_a_rewritten_incremental_state_fails(arc: SimpleNamespace,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    public = str(arc.key.with_name("archive-ed25519.pub.pem"))
    assert verify(capsys, "--public-key", public, "--incremental")[0] == 0
    state = arc.reports / ".verified.json"
    point = json.loads(state.read_text())
    data = arc.ledger.read_bytes()
    lines = data.split(b"\n")
    lines[3] = lines[3].replace(b'"operator":"bob"', b'"operator":"eve"')
    forged = b"\n".join(lines)
    arc.ledger.write_bytes(forged)
    point.pop("mac")
    point["prefix_sha256"] = canonical.sha256_hex(forged[:point["offset"]])
    state.write_text(canonical.dumps(point) + "\n")
    code, out = verify(capsys, "--public-key", public, "--incremental")
    assert code == 1
    assert "is not authenticated" in out
    assert "line 4 (seq 4) was edited" in out
