"""Custom actions (ftkit/actions.py) through a session: an action that prints bytes that are
not UTF-8 and a secret in every encoding, fails, and leaves the session Broken with a
readable reason, from where Retry (once it is fixed) commits and Abort aborts; any other
exception in a step does the same; a timeout kills what the action started; and a
configuration that writes a declared secret's value into an action's args is refused.
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFIG, PACKAGES
from secret_forms import leaks

from ftkit.config import load_config
from ftkit.decisions import ParameterDecisions
from ftkit.errors import ConfigError, FtkitError, StepFailedError
from ftkit.process import Session, open_session
from ftkit.redact import forget_secrets
from ftkit.sim.driver import SimDriver, create_system

COMMIT = {"split": "proceed", "merge": "proceed", "commit": "commit"}
SECRET = "Hunter2 s3cr3t/Pa+ss="
VAR = "FTKIT_TEST_ACTION_PW"

# What a careless action prints: bytes that are not UTF-8, then its secret as it is, in
# base64 (padded, unpadded, URL-safe, shifted inside a longer stream, folded by base64 -w),
# hex (both cases, by od), URL-encoded and folded by fold.
LEAKY = r"""#!/bin/sh
printf 'garbage: \377\376 end\n'
printf 'plain: %s\n' "$FTKIT_TEST_ACTION_PW"
printf '%s' "$FTKIT_TEST_ACTION_PW" | base64
printf '%s' "$FTKIT_TEST_ACTION_PW" | base64 | tr -d '=\n'; echo
printf '%s' "$FTKIT_TEST_ACTION_PW" | base64 | tr '+/' '-_'
printf 'x%s' "$FTKIT_TEST_ACTION_PW" | base64 -w 7
printf 'xy%s!' "$FTKIT_TEST_ACTION_PW" | base64 -w 0; echo
printf '%s' "$FTKIT_TEST_ACTION_PW" | od -An -tx1 | tr -d ' \n'; echo
printf '%s' "$FTKIT_TEST_ACTION_PW" | od -An -tx1 | tr -d ' \n' | tr a-f A-F; echo
printf 'url: %s and %s\n' '@QUOTE@' '@QUOTE_PLUS@' >&2
printf 'folded: %s\r\n' "$FTKIT_TEST_ACTION_PW" | fold -w 5 >&2
exit "$(cat '@STATUS@')"
"""


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(VAR, SECRET)
    yield
    forget_secrets()  # a session registers it; the next test starts clean


def leaky_config(tmp_path: Path, *, exit_code: int) -> tuple[Path, Path]:
    """A configuration whose action ``leaky`` runs before ExecuteSplit on the Production
    side; returns it and the file holding the action's exit code (write 0 to fix it)."""
    status = tmp_path / "status"
    status.write_text(str(exit_code))
    script = tmp_path / "leaky.sh"
    script.write_text(LEAKY.replace("@STATUS@", str(status))
                      .replace("@QUOTE@", urllib.parse.quote(SECRET, safe=""))
                      .replace("@QUOTE_PLUS@", urllib.parse.quote_plus(SECRET)))
    script.chmod(0o755)
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'description = "leaky action"\ninclude = ["{CONFIG}"]\n'
                   f'[[custom_actions]]\nname = "leaky"\npath = "{script}"\n'
                   'request = "ExecuteSplit"\nwhen = "before"\nside = "Production"\n'
                   f'secret_env = ["{VAR}"]\n')
    return cfg, status


def new_session(driver: Any, cfg: Path, operator: str = "tester") -> Session:
    return open_session(driver, str(cfg), PACKAGES, change_id="CHG-ACT", operator=operator,
                        reason="custom actions")


def stored(session: Session) -> str:
    """Everything the journal holds: its files' bytes (with the WAL), and every entry."""
    files = [session.journal.path, *session.journal.path.parent.glob("*-wal")]
    raw = b"".join(path.read_bytes() for path in files)
    entries = "\n".join(f"{e.message}\n{e.detail}" for e in session.entries())
    return raw.decode("utf-8", errors="replace") + "\n" + entries


def leaky_action(session: Session) -> list[dict[str, Any]]:
    return [e.detail for e in session.entries(kinds=["action"])
            if e.detail.get("action") == "leaky"]


def test_a_failing_action_printing_bytes_and_encoded_secrets_breaks_then_retry_commits(
        tmp_path: Path) -> None:
    cfg, status = leaky_config(tmp_path, exit_code=3)
    driver = create_system(f"sim://act-{uuid.uuid4().hex[:8]}")
    session = new_session(driver, cfg)
    with pytest.raises(StepFailedError) as info:
        session.run(ParameterDecisions(COMMIT))
    assert "custom action leaky exited 3" in info.value.message
    assert session.broken == ("ExecuteSplit", "leaky exit 3")
    assert session.operational_state.value == "Broken"
    [failed] = leaky_action(session)
    assert not failed["ok"] and failed["exit_code"] == 3
    assert "garbage: \ufffd\ufffd end" in failed["stdout"]  # text, whatever was printed
    assert "plain: ***" in failed["stdout"] and "url: *** and ***" in failed["stderr"]
    assert leaks(stored(session), SECRET) == []

    status.write_text("0")  # the action is fixed
    retry = ParameterDecisions({**COMMIT, "broken": "retry"}, operator="tester")
    assert session.run(retry) == "committed"
    assert [d["ok"] for d in leaky_action(session)] == [False, True]
    assert leaks(stored(session), SECRET) == []
    driver.close()


def test_a_broken_action_is_aborted_from_a_new_process(tmp_path: Path) -> None:
    cfg, _status = leaky_config(tmp_path, exit_code=1)
    driver = create_system(f"sim://act-{uuid.uuid4().hex[:8]}")
    session = new_session(driver, cfg)
    with pytest.raises(StepFailedError):
        session.run(ParameterDecisions(COMMIT))
    session.close()
    other = open_session(driver, str(cfg), PACKAGES, operator="b", reason="abort it",
                         handover=True)  # as the abort runbook opens it
    assert other.abort_and_finish(who="b", why="abort it") == "aborted"
    st = driver.status()
    assert st.duplex and not st.split and driver.lost_transactions() == 0
    assert leaks(stored(other), SECRET) == []
    driver.close()


class _Raising:
    """A driver whose custom action runner raises what a careless one would (the
    UnicodeDecodeError of a text-mode subprocess) until it is disarmed."""

    def __init__(self, inner: SimDriver) -> None:
        self.inner = inner
        self.armed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def run_custom_action(self, path: str, **kwargs: Any) -> Any:
        if self.armed:
            raise UnicodeDecodeError("utf-8", b"\xff\xfe", 0, 1, "invalid start byte")
        return self.inner.run_custom_action(path, **kwargs)


@pytest.mark.parametrize("way_on", ["retry", "abort"])
def test_any_exception_in_a_step_leaves_the_session_broken_never_busy(
        tmp_path: Path, way_on: str) -> None:
    cfg, _status = leaky_config(tmp_path, exit_code=0)
    driver = _Raising(create_system(f"sim://act-{uuid.uuid4().hex[:8]}"))
    session = new_session(driver, cfg)
    with pytest.raises(StepFailedError) as info:
        session.run(ParameterDecisions(COMMIT))
    reason = "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: " \
             "invalid start byte"
    assert session.broken == ("ExecuteSplit", reason)
    assert session.operational_state.value == "Broken"
    assert info.value.message == f"ExecuteSplit failed: {reason}"
    assert isinstance(info.value.__cause__, UnicodeDecodeError)
    [outcome] = [e for e in session.entries(kinds=["outcome"]) if e.ok is False]
    assert outcome.detail["error"] == "UnicodeDecodeError"

    driver.armed = False
    answers = ParameterDecisions({**COMMIT, "broken": way_on}, operator="tester")
    assert session.run(answers) == {"retry": "committed", "abort": "aborted"}[way_on]
    driver.inner.close()


def test_an_action_that_times_out_is_killed_with_what_it_started(tmp_path: Path) -> None:
    """The action's shell waits on a child that would outlive it: both are killed, and
    the run goes on (a pipe held by the child would otherwise block until it ends)."""
    script = tmp_path / "hangs.sh"
    script.write_text("#!/bin/sh\necho started\nsleep 600 &\nwait\n")
    script.chmod(0o755)
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'description = "hangs"\ninclude = ["{CONFIG}"]\n'
                   f'[[custom_actions]]\nname = "hangs"\npath = "{script}"\n'
                   'request = "PrepareSplit"\nwhen = "after"\ntimeout_s = 0.5\n')
    driver = create_system(f"sim://act-{uuid.uuid4().hex[:8]}")
    session = new_session(driver, cfg)
    with pytest.raises(FtkitError, match=r"custom action hangs timed out after 0\.5 s"):
        session.run(ParameterDecisions(COMMIT))
    assert session.broken == ("PrepareSplit", "hangs timed out")
    [action] = [e.detail for e in session.entries(kinds=["action"])]
    assert action["stdout"] == "started\n" and action["exit_code"] == -9
    driver.close()


# --- the configuration refuses a declared secret's value in args or env ------------------


def _action_config(tmp_path: Path, extra: str) -> Path:
    cfg = tmp_path / "upgrade.toml"
    cfg.write_text('description = "t"\n[disks]\nsystem = ["system0"]\n'
                   '[remote]\npassword_env = "FTKIT_TEST_REMOTE_PW"\n'
                   '[[custom_actions]]\nname = "quiesce"\npath = "q.sh"\nwhen = "before"\n'
                   f'request = "ExecuteMerge"\nsecret_env = ["{VAR}"]\n{extra}')
    return cfg


@pytest.mark.parametrize(("arg", "secret_var"), [
    (f"--db-auth={SECRET}", VAR),
    (SECRET, VAR),
    ("--login=SHVudGVyMiBzM2NyM3QvUGErc3M9", VAR),  # base64
    ("--auth=48756e74657232207333637233742f50612b73733d", VAR),  # hex
    (f"postgres://u:{urllib.parse.quote(SECRET, safe='')}@db/orders", VAR),  # URL-encoded
    ("remote-Pa55-word", "FTKIT_TEST_REMOTE_PW"),  # [remote] password_env's value
])
def test_a_declared_secret_in_args_is_refused_naming_the_action_and_the_fix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arg: str, secret_var: str) -> None:
    monkeypatch.setenv("FTKIT_TEST_REMOTE_PW", "remote-Pa55-word")
    cfg = _action_config(tmp_path, f'args = ["--quiet", {arg!r}]\n'.replace("'", '"'))
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    err = info.value
    assert err.message == (f"{cfg}: custom action quiesce: args[1] holds the value of "
                           f"{secret_var}, a declared secret")
    assert err.remedy.startswith(f'pass it through secret_env = ["{secret_var}"]')
    assert "\n" not in str(err) and leaks(str(err), SECRET) == []
    assert "remote-Pa55-word" not in str(err)


def test_the_word_list_still_refuses_a_secret_nobody_declared(tmp_path: Path) -> None:
    """The second net: --db-pass=VALUE is a secret even when it is no declared one's."""
    with pytest.raises(ConfigError, match=r"custom_actions\[0\]\.args\[0\]: a secret must not"):
        load_config(_action_config(tmp_path, 'args = ["--db-pass=n0t-declared"]\n'))


def test_a_variable_passed_in_env_that_holds_a_declared_secret_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _action_config(tmp_path, 'env = ["DB_URL"]\n')
    assert load_config(cfg).custom_actions[0].name == "quiesce"  # not its last env name
    monkeypatch.setenv("DB_URL", f"postgres://u:{urllib.parse.quote(SECRET)}@db/orders")
    cfg = _action_config(tmp_path, 'env = ["DB_URL"]\n')
    with pytest.raises(ConfigError, match=r"custom action quiesce: env\[0\] \(DB_URL's value\) "
                                          f"holds the value of {VAR}"):
        load_config(cfg)


@pytest.mark.parametrize("args", [
    '["--tokenizer", "bert"]', '["--secretary", "Bob"]', '["--no-password", "db1"]',
    '["--password", "--quiet"]', '["--bypass=1"]', '["--password-file", "/etc/pw"]',
])
def test_legitimate_args_pass_both_nets(tmp_path: Path, args: str) -> None:
    config = load_config(_action_config(tmp_path, f"args = {args}\n"))
    assert config.custom_actions[0].args


def test_a_short_secret_refuses_only_an_arg_that_is_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "v")
    assert load_config(_action_config(tmp_path, 'args = ["-v", "--level=v2"]\n'))
    with pytest.raises(ConfigError, match=r"args\[0\] holds the value of"):
        load_config(_action_config(tmp_path, 'args = ["--level=v"]\n'))


@pytest.mark.notebook
def test_the_archived_report_of_a_run_broken_by_the_action_holds_no_form_of_the_secret(
        tmp_path: Path, ftkit_dirs: Any) -> None:
    """The runbook through papermill and ftkit run's archive: the executed notebook, its
    HTML and the ledger keep the failing step and its reason, and no form of the secret,
    which also came in base64 and URL-encoded in a parameter (the notebook shows the
    action's messages, not its output: the parameter is what reaches every cell, the
    injected parameters and the ledger)."""
    import base64

    from ftkit.archive import read_ledger
    from ftkit.runner import run_runbook

    cfg, _status = leaky_config(tmp_path, exit_code=3)
    system = f"sim://act-{uuid.uuid4().hex[:8]}"
    create_system(system).close()
    encoded = (f"{base64.b64encode(SECRET.encode()).decode()} "
               f"{urllib.parse.quote_plus(SECRET)}")
    with pytest.raises(FtkitError, match="Broken at ExecuteSplit"):
        run_runbook("active-upgrade", {
            "system": system, "mode": "auto", "decisions": COMMIT, "change_id": "CHG-ACT",
            "operator": "nb-test", "config": str(cfg), "reason": f"ticket {encoded}",
            "packages": [str(path) for path in PACKAGES]}, reports=ftkit_dirs.reports)
    [entry] = read_ledger(ftkit_dirs.reports)
    assert entry.outcome == "failed"
    files = sorted(ftkit_dirs.reports.iterdir())
    assert {path.suffix for path in files} >= {".ipynb", ".html", ".jsonl"}
    page = (ftkit_dirs.reports / str(entry.html)).read_text()
    assert "leaky exit 3" in page
    assert "Evidence: the custom actions' output" in page  # its output, masked, as text
    assert "ticket *** ***" in page
    for path in files:
        assert leaks(path.read_text(encoding="utf-8", errors="replace"), SECRET) == [], path
