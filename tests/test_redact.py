"""Secrets never leave ftkit (docs/DOMAIN.md#7-secrets-stay-secret): redact() by key,
scrub() by literal."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from secret_forms import leaks, written_forms

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
    secret_in,
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


# --- every form a program prints a secret in: encoded, inside a stream, folded ------------

FORM_SECRETS = ["Hunter2 s3cr3t/Pa+ss=", "pässwörd-€uro", "abcdefgh", "x1y2z3w4v5~."]


@pytest.mark.parametrize("secret", FORM_SECRETS)
def test_scrub_masks_every_encoded_form(secret: str) -> None:
    register_secret(secret)
    for name, form in written_forms(secret).items():
        text = f"before {form} after"
        masked = scrub(text)
        assert masked == f"before {MASK} after", name
        assert leaks(masked, secret) == [], name


@pytest.mark.parametrize("secret", FORM_SECRETS)
def test_scrub_masks_every_form_folded_at_any_point(secret: str) -> None:
    register_secret(secret)
    for name, form in written_forms(secret).items():
        for cut in range(1, len(form)):
            for brk in ("\n", "\r\n"):
                masked = scrub(f"[{form[:cut]}{brk}{form[cut:]}]")
                assert masked == f"[{MASK}]", (name, cut, brk)
    wrapped = "\n".join(textwrap.wrap(base64.b64encode(secret.encode()).decode(), 3))
    assert leaks(scrub(wrapped), secret) == []  # base64 -w 3: folded many times


@pytest.mark.parametrize("secret", FORM_SECRETS)
@pytest.mark.parametrize("before", [b"", b"x", b"xy", b"xyz", b"header:1234\n"])
@pytest.mark.parametrize("after", [b"", b"!", b"!?", b"trailing bytes"])
def test_scrub_masks_a_secret_inside_a_longer_base64_stream(
        secret: str, before: bytes, after: bytes) -> None:
    register_secret(secret)
    data = before + secret.encode() + after
    for stream in (base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode()):
        assert leaks(stream, secret), "the check itself finds it"
        assert leaks(scrub(stream), secret) == [], stream
        folded = "\n".join(textwrap.wrap(stream, 7))  # base64 -w 7
        assert leaks(scrub(folded), secret) == [], folded


def test_mask_env_masks_the_encoded_forms_of_a_referenced_secret() -> None:
    environ = {"DB_PASSWORD": "Hunter2 s3cr3t/Pa+ss="}
    forms = written_forms(environ["DB_PASSWORD"])
    stdout = "\n".join(f"{name}: {form}" for name, form in forms.items())
    masked = mask_env(stdout, ["DB_PASSWORD"], environ=environ)
    assert masked == "\n".join(f"{name}: {MASK}" for name in forms)


def test_ordinary_text_is_left_alone_and_short_secrets_stay_literal() -> None:
    register_secret("Hunter2 s3cr3t/Pa+ss=")
    text = "PrepareSplit done\nexit 0 (0.1 s) base64 aGVsbG8= hex 68656c6c6f url a%20b\r\n"
    assert scrub(text) == text
    register_secret("pw")  # short: its encodings alone, never a base64 stream's part
    assert scrub("pw cHc= 7077 ok") == f"{MASK} {MASK} {MASK} ok"
    assert scrub("cHdk is not it") == "cHdk is not it"


def test_secret_in_names_the_secret_found_in_any_form() -> None:
    secrets = ["first-secret", "Hunter2 s3cr3t/Pa+ss="]
    assert secret_in("--auth=SHVudGVyMiBzM2NyM3QvUGErc3M9", secrets) == secrets[1]
    assert secret_in("--x=66697273742d736563726574", secrets) == secrets[0]
    assert secret_in("--quiet", secrets) is None


def test_a_secret_with_a_sigma_is_masked_whatever_follows_it() -> None:
    """lower() writes a final sigma differently: the quick pre-check must not miss it."""
    register_secret("ΟΔΟΣ")
    assert scrub("ΟΔΟΣ ΟΔΟΣx xΟΔΟΣ") == f"{MASK} {MASK}x x{MASK}"
