"""Secrets never leave ftkit (docs/DOMAIN.md#7-secrets-stay-secret): redact() by key,
scrub() by literal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftkit.redact import (
    MASK,
    env_secret_values,
    forget_secrets,
    is_secret_key,
    mask_env,
    redact,
    register_env_secrets,
    register_secret,
    scrub,
    secret_values,
)


@pytest.fixture(autouse=True)
def no_secrets() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "DB_PASSWD",
        "client_secret",
        "token",
        "API_KEY",
        "ssh-key",
        "Credentials",
        "private_key_file",
        "sessionToken",
    ],
)
def test_secret_looking_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["system", "operator", "change_id", "reason", "mode", 3, None])
def test_ordinary_keys(key: object) -> None:
    assert not is_secret_key(key)


def test_redact_masks_values_under_secret_keys_deeply_and_copies() -> None:
    original = {
        "system": "sim://lab",
        "password": "hunter22",
        "remote": {"user": "admin", "api_key": {"id": 1, "value": "abc"}},
        "hosts": [{"token": "t0k3n"}, ("x", {"Secret": 42})],
        "private": None,
        "passwd": "",
    }
    clean = redact(original)
    assert clean == {
        "system": "sim://lab",
        "password": MASK,
        "remote": {"user": "admin", "api_key": MASK},
        "hosts": [{"token": MASK}, ("x", {"Secret": MASK})],
        "private": None,  # nothing to hide
        "passwd": "",
    }
    assert original["password"] == "hunter22", "the input is not changed"
    assert clean["remote"] is not original["remote"]


def test_scrub_masks_registered_literals_in_free_text() -> None:
    assert scrub("login with hunter22") == "login with hunter22"
    register_secret("hunter22")
    register_secret("")  # ignored, or it would mask everything
    assert scrub("login with hunter22, again hunter22!") == "login with ***, again ***!"
    assert redact({"message": ["said hunter22"]}) == {"message": ["said ***"]}
    forget_secrets()
    assert scrub("hunter22") == "hunter22"


def test_scrub_prefers_the_longest_secret_and_escapes_regex() -> None:
    register_secret("abc")
    register_secret("abc.def*")
    assert scrub("x abc.def* y abc z") == "x *** y *** z"
    assert scrub("a1c", extra=["1"]) == "a***c"
    assert scrub("a1c") == "a1c", "extra is for one call only"


def test_secret_values_collects_strings_under_secret_keys() -> None:
    params = {"password": "hunter22", "db": {"token": ["t0k3n-1"]}, "api_key": "on", "x": "y"}
    assert secret_values(params) == {"hunter22", "t0k3n-1"}  # "on" is too short to scrub


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_redact_never_leaks_a_registered_secret(value: object) -> None:
    secret = "S3cr3t-Value"
    register_secret(secret)
    wrapped = {"data": value, "note": f"the secret is {secret}", "password": secret}
    assert secret not in repr(redact(wrapped))


# --- secret references (issue 8: the password of [remote] password_env in an action's stdout)


def test_mask_env_masks_the_values_of_the_named_variables() -> None:
    environ = {"DB_PASSWORD": "pw", "PW": "hunter22", "HOME": "/root"}
    stdout = "DB_PASSWORD=pw\nPW=hunter22\nHOME=/root\nlogin hunter22 ok\n"
    masked = mask_env(stdout, ["DB_PASSWORD", "PW", "UNSET"], environ=environ)
    assert masked == f"DB_PASSWORD={MASK}\nPW={MASK}\nHOME=/root\nlogin {MASK} ok\n"
    assert mask_env(stdout, [], environ=environ) == stdout, "only what is named is masked"
    assert env_secret_values(["PW", "UNSET", "HOME"], environ) == ["hunter22", "/root"]


def test_mask_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTKIT_TEST_TOKEN", "t0k3n-value")
    assert mask_env("got t0k3n-value", ["FTKIT_TEST_TOKEN"]) == f"got {MASK}"


def test_register_env_secrets_feeds_scrub_and_the_journal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FTKIT_TEST_PW", "s3cret-pw")
    register_env_secrets(["FTKIT_TEST_PW", "FTKIT_TEST_UNSET"])
    assert scrub("echo s3cret-pw") == f"echo {MASK}"
    assert redact({"stdout": "s3cret-pw"}) == {"stdout": MASK}
