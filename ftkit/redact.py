"""Keep secrets out of everything ftkit writes (docs/DOMAIN.md#7-secrets-stay-secret).

Two nets, used together by the journal and the report archive:

- :func:`redact` copies dicts, lists and strings, masking the value under any key that
  looks secret (``password``, ``token``, ``api_key``, … — case-insensitive substring);
- :func:`scrub` masks, in free text, every secret literal handed to
  :func:`register_secret` (for example a password read from the environment)::

      register_secret(os.environ["FTKIT_UPGRADE_PASSWORD"])
      journal.log(sid, "info", f"logged in with {password}")   # stored as "logged in with ***"

A configuration names its secrets by reference (``[remote] password_env``, a custom
action's ``secret_env``; :attr:`ftkit.config.UpgradeConfig.secret_env`). :func:`mask_env`
masks every value of those variables in captured text (an action's stdout and stderr)
before it is journaled; :func:`register_env_secrets` registers them for :func:`scrub`::

      stdout = mask_env(result.stdout, config.secret_env)
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

__all__ = [
    "MASK",
    "SECRET_WORDS",
    "env_secret_values",
    "forget_secrets",
    "is_secret_key",
    "machine_paths",
    "mask_env",
    "mask_paths",
    "redact",
    "register_env_secrets",
    "register_secret",
    "scrub",
    "secret_values",
]

MASK = "***"
SECRET_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "key",
    "credential",
    "private",
)
# A value under a secret-looking key is masked whatever its length, but only values at
# least this long are scrubbed from free text by secret_values(): masking every "on" or
# "yes" in a report would make it unreadable.
MIN_INFERRED_SECRET = 4

T = TypeVar("T")

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def is_secret_key(name: object) -> bool:
    """True when NAME (a mapping key) looks like it names a secret."""
    return isinstance(name, str) and _names_a_secret(name)


@functools.lru_cache(maxsize=4096)  # the same few keys, over and over
def _names_a_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def register_secret(secret: str) -> None:
    """Remember SECRET so that :func:`scrub` masks it wherever it appears; "" is ignored."""
    global _pattern
    if not isinstance(secret, str) or not secret:
        return
    with _lock:
        if secret not in _secrets:
            _secrets.add(secret)
            _pattern = _compile(_secrets)


def forget_secrets() -> None:
    """Forget every registered secret (for tests and long-lived kernels)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def _compile(secrets: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)  # longest first
    if not ordered:
        return None
    return re.compile("|".join(re.escape(s) for s in ordered))


def _pattern_with(extra: Iterable[str]) -> re.Pattern[str] | None:
    extra = [s for s in extra if isinstance(s, str) and s]
    if not extra:
        return _pattern
    with _lock:
        return _compile([*_secrets, *extra])


def _sub(pattern: re.Pattern[str] | None, text: str) -> str:
    return pattern.sub(MASK, text) if pattern is not None and text else text


def scrub(text: str, *, extra: Iterable[str] = ()) -> str:
    """TEXT with every registered secret (and every string in EXTRA) replaced by ``***``."""
    if not isinstance(text, str):
        return text
    return _sub(_pattern_with(extra), text)


def redact(value: T, *, extra: Iterable[str] = ()) -> T:
    """A deep copy of VALUE with secrets masked.

    Mappings become dicts and their secret-looking keys' values become ``***`` (``None``
    and ``""`` stay: they hide nothing); lists and tuples are copied; every string is
    passed through :func:`scrub` (with EXTRA). Other values are returned as they are.
    """
    return _redact(value, _pattern_with(extra))


def _redact(value: Any, pattern: re.Pattern[str] | None) -> Any:
    if isinstance(value, str):
        return _sub(pattern, value)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            new_key = _sub(pattern, key) if isinstance(key, str) else key
            if is_secret_key(key) and item is not None and item != "":
                out[new_key] = MASK
            else:
                out[new_key] = _redact(item, pattern)
        return out
    if isinstance(value, list):
        return [_redact(item, pattern) for item in value]
    if isinstance(value, tuple):
        return tuple(_redact(item, pattern) for item in value)
    return value


def secret_values(value: Any) -> set[str]:
    """The strings found under secret-looking keys anywhere in VALUE (read-only).

    Used to scrub a notebook whose parameters carried a secret: the literal must vanish
    from the injected-parameters cell and any output that echoed it. Strings shorter than
    :data:`MIN_INFERRED_SECRET` are left out (see there).
    """
    found: set[str] = set()

    def walk(item: Any, secret: bool) -> None:
        if isinstance(item, str):
            if secret and len(item) >= MIN_INFERRED_SECRET:
                found.add(item)
        elif isinstance(item, Mapping):
            for key, sub in item.items():
                walk(sub, secret or is_secret_key(key))
        elif isinstance(item, list | tuple | set | frozenset):
            for sub in item:
                walk(sub, secret)

    walk(value, False)
    return found


def env_secret_values(
    names: Iterable[str], environ: Mapping[str, str] | None = None
) -> list[str]:
    """The non-empty values of the environment variables ``names`` (default environment
    ``os.environ``); unset ones are skipped. Read-only."""
    env = os.environ if environ is None else environ
    return [env[name] for name in names if env.get(name)]


def mask_env(
    text: str, names: Iterable[str], *, environ: Mapping[str, str] | None = None
) -> str:
    """``text`` with every value of the secret references ``names`` (environment variable
    names, e.g. :attr:`~ftkit.config.UpgradeConfig.secret_env`) and every registered
    secret replaced by ``***``, whatever its length. Read-only; call it on an action's
    stdout and stderr before anything is written."""
    return scrub(text, extra=env_secret_values(names, environ))


def register_env_secrets(
    names: Iterable[str], environ: Mapping[str, str] | None = None
) -> None:
    """Register the value of each environment variable in ``names`` with
    :func:`register_secret`, so that the journal and reports mask it wherever it shows."""
    for value in env_secret_values(names, environ):
        register_secret(value)


def machine_paths() -> list[tuple[str, str]]:
    """This machine's paths a record must not hold, each with the name that stands for it,
    longest first: $FTKIT_HOME, ftkit's source tree, Python's own folders, the home folder
    (read now: $FTKIT_HOME may change)."""
    import sys
    from pathlib import Path

    from ftkit.home import ftkit_home

    tree = str(Path(__file__).resolve().parents[1])
    names = [(str(ftkit_home()), "$FTKIT_HOME"), (tree, "<ftkit>")]
    names += [(p, "<python>") for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}]
    home = os.path.expanduser("~")
    if len(home) > 1:  # IPython's tracebacks write the home folder as ~
        names += [("~" + p[len(home):], n) for p, n in names if p.startswith(home + os.sep)]
    names.append((home, "~"))
    return sorted((pair for pair in names if len(pair[0]) > 1), key=lambda pair: -len(pair[0]))


def mask_paths(text: str, names: list[tuple[str, str]] | None = None) -> str:
    """TEXT without this machine's paths (:func:`machine_paths`, or NAMES): what a record
    opened elsewhere, years later, reads."""
    for path, name in machine_paths() if names is None else names:
        text = text.replace(path, name)
    return text
