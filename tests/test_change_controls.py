"""Change controls (issue 17): a second account at Commit (``ftkit approve``), the soak's
probes and ``commit: if-healthy``, and a pending decision that reaches people (apprise).

The upgrade runs as users run it: ``ftkit run active-upgrade`` (papermill, archived) or
the runbook through papermill; the approving account is another process whose
``$JUPYTERHUB_USER`` differs from the operator's. Probes and notifications meet real local
HTTP servers on 127.0.0.1. What is asserted is read back from the journal, the ledger,
``ftkit status`` and the twin, never from the notebook's claims alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import CONFIG, ORIGINAL, PACKAGES, UPGRADED
from conftest import DECISIONS as ALL

from ftkit.cli import main
from ftkit.config import load_config_text
from ftkit.decisions import ParameterDecisions
from ftkit.drivers import connect
from ftkit.errors import ConfigError, FtkitError
from ftkit.journal import Journal
from ftkit.process import open_session
from ftkit.sim.driver import create_system

REPO = Path(__file__).resolve().parents[1]


# --- helpers ---------------------------------------------------------------------------


def target() -> str:
    return f"sim://cc-{uuid.uuid4().hex[:8]}"


def config(tmp_path: Path, text: str) -> Path:
    """A configuration that includes the demo one and adds TEXT (top-level keys first)."""
    path = tmp_path / f"controls-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(f'include = ["{CONFIG}"]\n{text}', encoding="utf-8")
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_upgrade(capsys: pytest.CaptureFixture[str], system: str, cfg: Path, *,
                decisions: dict[str, str], soak: float = 1) -> tuple[int, str, str]:
    """``ftkit run active-upgrade`` in auto mode as alice, change CHG-CC (archived)."""
    return cli(capsys, "run", str(REPO / "runbooks" / "active-upgrade.ipynb"),
               "-p", "system", system, "-p", "mode", "auto", "-p", "config", str(cfg),
               "-p", "packages", json.dumps([str(p) for p in PACKAGES]),
               "-p", "decisions", json.dumps(decisions), "-p", "soak_minutes", str(soak),
               "-p", "change_id", "CHG-CC", "-p", "operator", "alice",
               "--kernel", "python3")


def approve(system: str, *, account: str | None, change: str = "CHG-CC", by: str = "Bob B",
            reason: str = "evidence read") -> subprocess.CompletedProcess[str]:
    """``ftkit approve`` in its own process, as ACCOUNT ($JUPYTERHUB_USER; None: unset,
    so the OS user, the operator's account here)."""
    env = dict(os.environ)
    env.pop("JUPYTERHUB_USER", None)
    if account is not None:
        env["JUPYTERHUB_USER"] = account
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "ftkit", "approve", system, "--change",
                           change, "--by", by, "--reason", reason],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def software(system: str) -> list[dict[str, str]]:
    driver = connect(system)
    try:
        boot = driver.status().boot_disk()
        return [{k: boot.members[e].software[k] for k in ORIGINAL} for e in (0, 1)]
    finally:
        driver.close()


def journal_entries(system: str) -> list[Any]:
    with Journal.open(system) as journal:
        return journal.entries()


@pytest.fixture(autouse=True)
def operator_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's runs (and their kernels) use the OS account."""
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO),
                                                      os.environ.get("PYTHONPATH", "")]))


class Receiver:
    """A local HTTP server on 127.0.0.1: records each request; answers STATUS."""

    def __init__(self, status: int = 200,
                 on_post: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.hits += 1
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"unhealthy")

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.received.append(body)
                self._answer()
                if on_post is not None:
                    on_post(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once it is closed


# --- two people at the point of no return ------------------------------------------------


@pytest.mark.notebook
def test_commit_without_approval_is_refused_and_stays_abortable(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    system = target()
    cfg = config(tmp_path, "[window]\ndecision_timeout_min = 0\n[approvals]\ncommit = 1\n")
    code, _, err = run_upgrade(capsys, system, cfg, decisions=ALL)
    assert code == 1
    assert "Commit needs 1 approval" in err and f"ftkit approve {system} --change CHG-CC" in err
    with Journal.open(system) as journal:
        record = journal.current_session()
    assert record is not None and record.upgrade_state == "Merge" and not record.broken
    assert software(system)[0] != software(system)[1]  # merged onto the upgraded side

    own = approve(system, account=None)  # the operator's own account
    assert own.returncode == 2 and "own account cannot approve" in own.stderr
    assert len(own.stderr.strip().splitlines()) == 1
    other_change = approve(system, account="bob", change="CHG-OTHER")
    assert other_change.returncode == 2 and "not CHG-OTHER" in other_change.stderr
    assert not [e for e in journal_entries(system)
                if isinstance(e.detail, dict) and "approval" in e.detail]  # nothing written

    code, out, err = cli(capsys, "run", str(REPO / "runbooks" / "abort.ipynb"),
                         "-p", "system", system, "-p", "operator", "alice",
                         "-p", "reason", "no approval", "-p", "change_id", "CHG-CC",
                         "--kernel", "python3")
    assert code == 0, err
    assert "aborted" in out.splitlines()[0]
    assert software(system) == [ORIGINAL, ORIGINAL]


@pytest.mark.notebook
def test_commit_approved_by_another_account(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path,
                                            ftkit_dirs: SimpleNamespace) -> None:
    system = target()
    cfg = config(tmp_path, "[window]\ndecision_timeout_min = 0\n[approvals]\ncommit = 1\n")
    # tonight: split and install, pause before the merge
    code, _, err = run_upgrade(capsys, system, cfg, decisions={**ALL, "merge": "later"})
    assert code == 0, err
    given = approve(system, account="bob")  # given beforehand, by another account
    assert given.returncode == 0, given.stderr
    assert "by Bob B (account bob)" in given.stdout
    again = approve(system, account="bob", reason="once more")  # one approval an account
    assert again.returncode == 0 and "by Bob B (account bob)" in again.stdout

    code, out, err = run_upgrade(capsys, system, cfg, decisions=ALL)
    assert code == 0, err
    assert software(system) == [UPGRADED, UPGRADED]
    (approval,) = [e.detail["approval"] for e in journal_entries(system)
                   if isinstance(e.detail, dict) and "approval" in e.detail]
    assert approval["account"] == "bob" and approval["by"] == "Bob B"
    assert approval["reason"] == "evidence read" and approval["change_id"] == "CHG-CC"
    assert {"probes_passed", "outage_s", "lost_transactions"} <= set(approval["evidence"])

    entries = json.loads(cli(capsys, "reports", "list", "--json")[1])
    assert entries[-1]["outcome"] == "committed"
    assert entries[-1]["approved_by"] == ["Bob B (bob)"]
    assert cli(capsys, "reports", "verify")[0] == 0

    code, out, _ = cli(capsys, "status", system, "--json")
    session = json.loads(out)["session"]
    assert session["approvals"]["required"] == 1
    assert [a["account"] for a in session["approvals"]["given"]] == ["bob"]
    code, out, _ = cli(capsys, "status", system)
    assert "approvals of Commit: 1 of 1 required: Bob B (bob" in out
    late = approve(system, account="carol")  # the session ended: nothing to approve
    assert late.returncode == 2 and "no unfinished session" in late.stderr


def test_an_auto_run_waits_for_the_approval_and_is_told(tmp_path: Path) -> None:
    """The run waits (polling the journal); the notification of the pending approval is
    what makes bob approve, in his own process."""
    system = target()
    create_system(system, scenario="demo").close()
    approvals: list[subprocess.CompletedProcess[str]] = []
    with Receiver(on_post=lambda _body: approvals.append(approve(system, account="bob"))
                  ) as hook:
        cfg = config(tmp_path, f'notify = ["json://127.0.0.1:{hook.port}/hook"]\n'
                               "[window]\ndecision_timeout_min = 2\n[approvals]\ncommit = 1\n")
        session = open_session(system, cfg, PACKAGES, change_id="CHG-CC", operator="alice")
        try:
            outcome = session.run(ParameterDecisions(ALL, operator="alice"), soak_minutes=1)
        finally:
            session.close()
    assert outcome == "committed"
    assert [a.returncode for a in approvals] == [0]
    (sent,) = hook.received
    assert system in sent["title"] and "approval" in sent["title"]
    assert "Change: CHG-CC" in sent["message"]
    assert f"ftkit approve {system} --change CHG-CC --by" in sent["message"]
    assert "any account but" in sent["message"]
    messages = [e.message for e in journal_entries(system)]
    assert any(m.startswith("notified 1 target(s)") for m in messages)
    assert any(m.startswith("Commit approved by Bob B (bob)") for m in messages)


def test_the_simulator_needs_no_approval_by_default(tmp_path: Path) -> None:
    system = target()
    create_system(system, scenario="demo").close()
    session = open_session(system, CONFIG, PACKAGES, change_id="CHG-CC", operator="alice")
    try:
        assert session.run(ParameterDecisions(ALL, operator="alice")) == "committed"
    finally:
        session.close()


# --- the soak's evidence and commit: if-healthy ------------------------------------------


@pytest.fixture
def probe_script(tmp_path: Path) -> Callable[[int], Path]:
    def make(code: int) -> Path:
        path = tmp_path / f"probe-{code}.sh"
        path.write_text(f"#!/bin/sh\necho probe says {code}\nexit {code}\n", encoding="utf-8")
        path.chmod(0o755)
        return path

    return make


def probes_config(tmp_path: Path, url: str, script: Path) -> Path:
    return config(tmp_path, f'probe_url = "{url}"\nprobe_every_s = 20\n'
                            f'[[custom_actions]]\nname = "health"\nkind = "probe"\n'
                            f'path = "{script}"\ntimeout_s = 30\n')


@pytest.mark.notebook
def test_if_healthy_commits_when_every_probe_passes(tmp_path: Path,
                                                    probe_script: Callable[[int], Path]
                                                    ) -> None:
    import papermill

    system = target()
    with Receiver(status=200) as health:
        cfg = probes_config(tmp_path, f"http://127.0.0.1:{health.port}/health",
                            probe_script(0))
        papermill.execute_notebook(
            str(REPO / "runbooks" / "active-upgrade.ipynb"), str(tmp_path / "out.ipynb"),
            parameters={"system": system, "mode": "auto", "config": str(cfg),
                        "packages": [str(p) for p in PACKAGES], "soak_minutes": 1,
                        "decisions": {**ALL, "commit": "if-healthy"}, "change_id": "CHG-CC",
                        "operator": "alice", "reason": "probe test"},
            kernel_name="python3", cwd=str(REPO / "runbooks"), progress_bar=False)
    assert health.hits == 3  # every 20 s of a 1 min soak
    entries = journal_entries(system)
    probes = [e.detail["probe"] for e in entries
              if isinstance(e.detail, dict) and "probe" in e.detail]
    assert len(probes) == 6 and all(p["ok"] for p in probes)
    assert any("probe says 0" in p["output"] for p in probes)
    (commit,) = [e.detail for e in entries if e.kind == "decision"
                 and e.detail.get("name") == "commit"]
    assert commit["answer"] == "commit"
    assert "if-healthy" in commit["why"] and "6 probe(s) passed, 0 failed" in commit["why"]
    assert software(system) == [UPGRADED, UPGRADED]


@pytest.mark.parametrize("failing", ["url", "action"])
def test_if_healthy_aborts_when_a_probe_fails(tmp_path: Path, failing: str,
                                              probe_script: Callable[[int], Path]) -> None:
    system = target()
    create_system(system, scenario="demo").close()
    with Receiver(status=500 if failing == "url" else 200) as health:
        cfg = probes_config(tmp_path, f"http://127.0.0.1:{health.port}/health",
                            probe_script(1 if failing == "action" else 0))
        session = open_session(system, cfg, PACKAGES, change_id="CHG-CC", operator="alice")
        try:
            outcome = session.run(ParameterDecisions({**ALL, "commit": "if-healthy"},
                                                     operator="alice"), soak_minutes=1)
            facts = session.facts()
        finally:
            session.close()
    assert outcome == "aborted"
    assert software(system) == [ORIGINAL, ORIGINAL]
    entries = journal_entries(system)
    (commit,) = [e.detail for e in entries if e.kind == "decision"
                 and e.detail.get("name") == "commit"]
    assert commit["answer"] == "abort"
    said = "HTTP 500" if failing == "url" else "exit 1"
    assert "3 of 6 probe(s) failed" in commit["why"] and said in commit["why"]
    failed = [e for e in entries if e.kind == "warning" and isinstance(e.detail, dict)
              and "probe" in e.detail]
    assert len(failed) == 3 and all("FAILED" in e.message for e in failed)
    assert facts["evidence"]["probes_failed"] == 3


# --- a pending decision reaches people ---------------------------------------------------


def test_a_pending_decision_is_notified_once(tmp_path: Path) -> None:
    system = target()
    create_system(system, scenario="demo").close()
    with Receiver() as hook:
        cfg = config(tmp_path, f'notify = ["json://127.0.0.1:{hook.port}/hook"]\n')
        session = open_session(system, cfg, PACKAGES, change_id="CHG-CC", operator="alice")
        try:
            while session.advance().did.value != "decide":  # up to the split decision
                pass
            assert session.advance().did.value == "decide"  # asked again: not sent again
        finally:
            session.close()
    (sent,) = hook.received
    assert "decision split" in sent["title"] and "Who may answer: the operator alice" \
        in sent["message"]
    assert '-p decisions "{split: proceed | stop}"' in sent["message"]


def test_an_unreachable_receiver_is_only_logged(tmp_path: Path) -> None:
    system = target()
    create_system(system, scenario="demo").close()
    cfg = config(tmp_path, f'notify = ["json://127.0.0.1:{closed_port()}/hook"]\n')
    session = open_session(system, cfg, PACKAGES, change_id="CHG-CC", operator="alice")
    try:
        while session.advance().did.value != "decide":  # the split decision waits
            pass
        assert session.run(ParameterDecisions(ALL, operator="alice")) == "committed"
    finally:
        session.close()
    (warning,) = [e for e in journal_entries(system) if isinstance(e.detail, dict)
                  and "notify" in e.detail]
    assert warning.kind == "warning" and warning.detail["notify"]["ok"] is False
    assert "could not notify that decision split waits" in warning.message


def test_a_failure_to_notify_is_logged_never_fatal(tmp_path: Path) -> None:
    system = target()
    create_system(system, scenario="demo").close()
    cfg = config(tmp_path, f'notify = ["json://127.0.0.1:{closed_port()}/hook"]\n'
                           "[window]\ndecision_timeout_min = 0\n[approvals]\ncommit = 1\n")
    session = open_session(system, cfg, PACKAGES, change_id="CHG-CC", operator="alice")
    try:
        with pytest.raises(FtkitError, match="Commit needs 1 approval"):
            session.run(ParameterDecisions(ALL, operator="alice"))
        assert session.upgrade_state.value == "Merge" and not session.broken
    finally:
        session.close()
    (warning,) = [e for e in journal_entries(system) if isinstance(e.detail, dict)
                  and "notify" in e.detail]
    assert warning.kind == "warning" and warning.detail["notify"]["ok"] is False
    assert "could not notify that approval" in warning.message


# --- the configuration --------------------------------------------------------------------


@pytest.mark.parametrize(("text", "said"), [
    ('notify = ["mailto://ops:hunter22@mail.example"]', "password must not be written"),
    ('notify = ["not a url"]', "not an apprise URL"),
    ('probe_url = "ftp://x"', r"not an http\(s\) URL"),
    ("[approvals]\ncommit = 1.5", "not a whole number"),
    ("[approvals]\ncommit = -1", "approvals.commit"),
    ("probe_every_s = 0", "probe_every_s"),
])
def test_bad_controls_are_refused_in_one_line(tmp_path: Path, text: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said) as info:
        load_config_text(f"{text}\n[disks]\nsystem = ['system0']\n", base_dir=tmp_path)
    assert "\n" not in str(info.value)


def test_controls_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret-value")
    cfg = load_config_text(
        'notify = ["json://127.0.0.1:9/h", "mailto://ops:${SMTP_PASSWORD}@mail.example"]\n'
        'probe_url = "http://127.0.0.1:9/health"\nprobe_every_s = 15\n'
        "[window]\ndecision_timeout_min = 0\n[approvals]\ncommit = 2\n"
        "[disks]\nsystem = ['system0']\n"
        '[[custom_actions]]\nname = "p"\nkind = "probe"\npath = "p.sh"\n', base_dir=tmp_path)
    assert cfg.approvals_commit == 2 and cfg.controls.timeout_min("commit") == 0
    assert cfg.probe_every_s == 15 and [p.name for p in cfg.probes] == ["p"]
    assert "SMTP_PASSWORD" in cfg.secret_env
    assert cfg.actions_for("ExecuteMerge", "before", "Production") == ()
    assert "s3cret-value" not in json.dumps(cfg.to_dict())


def test_an_approval_expires_with_the_window_and_counts_once_per_other_account() -> None:
    from datetime import UTC, datetime

    from ftkit.approvals import given
    from ftkit.journal import SessionRecord

    record = SessionRecord(
        id=1, target="host:///site.toml", change_id="CHG-CC", operator="alice", reason="",
        started="", ended=None, outcome=None, upgrade_state="Merge",
        operational_state="Ready", broken_step=None, broken_reason=None,
        data={"account": "alice", "config": {"window_end": "2026-12-03T06:00:00+00:00"}})

    def entry(account: str, *, expires: str | None = "2026-12-03T06:00:00+00:00",
              change: str = "CHG-CC") -> SimpleNamespace:
        return SimpleNamespace(detail={"approval": {"account": account, "by": account,
                                                    "change_id": change,
                                                    "expires": expires}})

    entries = [entry("alice"), entry("bob"), entry("bob"), entry("carol", change="CHG-X"),
               entry("dave", expires=None)]
    inside = datetime(2026, 12, 3, 5, 59, tzinfo=UTC)
    after = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    assert [a["account"] for a in given(entries, record, now=inside)] == ["bob", "dave"]
    assert [a["account"] for a in given(entries, record, now=after)] == ["dave"]


def test_a_plan_walks_if_healthy_as_a_commit(tmp_path: Path) -> None:
    from ftkit import flow
    from ftkit.decisions import PlanDecisions
    from ftkit.process import plan

    path = flow.check_path({**ALL, "commit": "if-healthy"})
    assert path.endswith("ExecuteMerge → Commit → Finish")
    system = target()
    create_system(system, scenario="demo").close()
    shown = plan(system, CONFIG, PACKAGES,
                 provider=PlanDecisions({**ALL, "commit": "if-healthy"}))
    assert "Commit" in [step["request"] for step in shown.steps]


def test_the_commit_panel_is_refused_until_another_account_approves(tmp_path: Path) -> None:
    import html
    import re

    import ftkit_widgets as fw
    from ftkit.errors import DecisionError

    def text(markup: str) -> str:
        return html.unescape(re.sub(r"<[^>]+>", "", markup))

    system = target()
    create_system(system, scenario="demo").close()
    cfg = config(tmp_path, "[approvals]\ncommit = 1\n")
    session = open_session(system, cfg, PACKAGES, change_id="CHG-CC", operator="alice")
    try:
        with pytest.raises(DecisionError):  # up to the commit question, unanswered
            session.run(ParameterDecisions({"split": "proceed", "merge": "proceed"},
                                           operator="alice"))
        panel = fw.DecisionPanel(session, "commit")
        panel.operator.value, panel.reason.value = "alice", "soak was clean"
        panel.buttons["commit"].click()
        assert "Commit needs 1 approval" in text(panel.message.value)
        assert f"ftkit approve {system} --change CHG-CC" in text(panel.message.value)
        assert session.upgrade_state.value == "Merge" and "commit" not in session.answers()

        assert approve(system, account="bob").returncode == 0
        again = fw.DecisionPanel(session, "commit")
        again.operator.value, again.reason.value = "alice", "approved by bob"
        again.buttons["commit"].click()
        assert session.upgrade_state.value == "Commit" and session.answers()["commit"] == \
            "commit"
    finally:
        session.close()
    refused = [e.detail["refused"] for e in journal_entries(system)
               if isinstance(e.detail, dict) and "refused" in e.detail]
    assert refused == [{"decision": "commit", "answer": "commit", "who": "alice",
                        "account": refused[0]["account"], "why": "soak was clean",
                        "guard": "approvals"}]


def test_check_says_how_many_approvals_commit_needs_and_which_probes_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ftkit check` rows `commit-approvals` and `soak-probes` (the plan's readiness table
    shows the same rows); a probe_url's credentials are never printed."""
    system = target()
    create_system(system, scenario="demo").close()
    package = ["--package", str(PACKAGES[0])]
    code, out, _err = cli(capsys, "check", system, "--config", str(CONFIG), *package)
    assert code == 0
    assert "commit-approvals: Commit needs no approval (the simulator's default)" in out
    assert "soak-probes: no probe declared" in out
    health = REPO / "examples" / "actions" / "health.sh"
    cfg = config(tmp_path, 'probe_url = "http://ops:s3cret-pw@127.0.0.1:9/health?token=t0k"\n'
                           'probe_every_s = 15\nnotify = ["json://127.0.0.1:9/hook"]\n'
                           "[approvals]\ncommit = 2\n[[custom_actions]]\n"
                           f'name = "health"\nkind = "probe"\npath = "{health}"\n')
    code, out, _err = cli(capsys, "check", system, "--config", str(cfg), *package)
    assert code == 0
    assert ("commit-approvals: Commit needs 2 approval(s) from account(s) other than the "
            f"operator's (ftkit approve {system} --change CHG --by YOUR-NAME") in out
    assert "1 notify URL(s) tell people when it waits" in out
    assert ("soak-probes: probe action(s) health and probe_url http://127.0.0.1:9/health "
            "(expects 2xx) every 15 s of the soak") in out
    assert "s3cret-pw" not in out and "t0k" not in out


def test_if_healthy_aborts_when_the_outage_exceeded_the_budget(
        tmp_path: Path, probe_script: Callable[[int], Path]) -> None:
    """Every probe passed, but the merge's outage (45 s on the demo twin) exceeded
    ``[window] max_outage_s``: if-healthy aborts, even where a breach is only recorded."""
    system = target()
    create_system(system, scenario="demo").close()
    cfg = config(tmp_path, "probe_every_s = 20\n[window]\nmax_outage_s = 10\n"
                           'on_outage_breach = "record"\n[[custom_actions]]\nname = "health"\n'
                           f'kind = "probe"\npath = "{probe_script(0)}"\n')
    session = open_session(system, cfg, PACKAGES, change_id="CHG-CC", operator="alice")
    try:
        outcome = session.run(ParameterDecisions({**ALL, "commit": "if-healthy"},
                                                 operator="alice"), soak_minutes=1)
    finally:
        session.close()
    assert outcome == "aborted"
    (commit,) = [e.detail for e in journal_entries(system) if e.kind == "decision"
                 and e.detail.get("name") == "commit"]
    assert commit["answer"] == "abort" and "exceeded the budget of 10 s" in commit["why"]
