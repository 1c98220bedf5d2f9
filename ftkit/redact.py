"""Keep secrets out of everything ftkit writes (docs/DOMAIN.md#7-secrets-stay-secret).

Two nets, used together by the journal and the report archive:

- :func:`redact` copies dicts, lists and strings, masking the value under any key that
  looks secret (``password``, ``token``, ``api_key``, … — case-insensitive substring);
- :func:`scrub` masks, in free text, every secret literal handed to
  :func:`register_secret` (for example a password read from the environment) in every
  form a program may print it: the literal, its base64 (standard or URL-safe, padded or
  not, alone or inside a longer base64 stream), hex (either case), URL-encoded, and each
  of these folded across lines (``fold``, ``base64 -w``). The forms are worked out once
  per secret; text that holds none of them costs a few substring searches::

      register_secret(os.environ["FTKIT_UPGRADE_PASSWORD"])
      journal.log(sid, "info", f"logged in with {password}")   # stored as "logged in with ***"

A configuration names its secrets by reference (``[remote] password_env``, a custom
action's ``secret_env``; :attr:`ftkit.config.UpgradeConfig.secret_env`). :func:`mask_env`
masks every value of those variables in captured text (an action's stdout and stderr)
before it is journaled; :func:`register_env_secrets` registers them for :func:`scrub`::

      stdout = mask_env(result.stdout, config.secret_env)
"""

from __future__ import annotations

import base64
import functools
import os
import re
import string
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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
    "masker",
    "redact",
    "register_env_secrets",
    "register_secret",
    "scrub",
    "secret_in",
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
_pattern: _Masker | None = None


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


def _compile(secrets: Iterable[str]) -> _Masker | None:
    return _compiled(frozenset(s for s in secrets if s))


class _Masker:
    """Every form (:func:`_forms`) of a set of secrets: one pattern (longest form first)
    and, to skip it on the usual text that holds none, the needles one of which any match
    holds once its line breaks are removed and it is lower-cased."""

    def __init__(self, forms: Iterable[_Form]) -> None:
        ordered = sorted(forms, key=lambda form: (-form.length, form.regex))
        self.pattern = re.compile("|".join(dict.fromkeys(form.regex for form in ordered)))
        self.needles = tuple(dict.fromkeys(form.needle for form in ordered))

    def sub(self, text: str) -> str:
        if not text:
            return text
        flat = text.replace("\r", "").replace("\n", "").lower()
        if not any(needle in flat for needle in self.needles):
            return text
        return self.pattern.sub(MASK, text)

    def search(self, text: str) -> bool:
        return self.pattern.search(text) is not None


@functools.lru_cache(maxsize=64)  # the registered set, and it with one action's secret_env
def _compiled(secrets: frozenset[str]) -> _Masker | None:
    forms = [form for secret in secrets for form in _forms(secret)]
    return _Masker(forms) if forms else None


# A line break that `fold`, `base64 -w` or a terminal may have put anywhere in a secret.
_FOLD = r"(?:\r?\n)?"
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
#: A secret's base64 inside a longer base64 stream is masked by the characters that depend
#: on the secret alone (:func:`_forms`), when there are at least this many: fewer could
#: be matched by chance in ordinary text.
MIN_BASE64_CORE = 6


@dataclass(frozen=True)
class _Form:
    """One written form of a secret: the regex that matches it (a line break allowed
    between any two characters), its shortest length, and its longest run of fixed
    characters, lower-cased (what :class:`_Masker` looks for first)."""

    length: int
    regex: str
    needle: str


# an atom is one character of a form: its regex, and the character itself when it is
# fixed (None: it may be written in more than one way)
_Atom = tuple[str, str | None]


# not part of a needle: line breaks (the text is searched without them) and sigma, whose
# lower case depends on what follows it (a final sigma), in a needle as in the text
_NOT_NEEDLE = "\r\n\u03a3\u03c3\u03c2"


def _form(atoms: list[_Atom], *, length: int) -> _Form:
    runs = "".join(fixed if fixed is not None and fixed not in _NOT_NEEDLE else "\0"
                   for _regex, fixed in atoms).lower().split("\0")
    return _Form(length, _FOLD.join(regex for regex, _fixed in atoms), max(runs, key=len))


def _chars(text: str) -> list[_Atom]:
    return [(re.escape(c), c) for c in text]


def _hex(data: bytes) -> list[_Atom]:
    """DATA's hex digits, in either case."""
    return [(f"[{c}{c.upper()}]" if c.isalpha() else c, c) for c in data.hex()]


def _percent(char: str) -> _Atom:
    """CHAR as it may be written in a URL: itself, percent-encoded (either case, folded
    anywhere), or ``+`` for a space (``quote_plus``)."""
    if char in _UNRESERVED:
        return re.escape(char), char
    encoded = _FOLD.join(f"%{_FOLD}" + _FOLD.join(regex for regex, _c in _hex(bytes([byte])))
                         for byte in char.encode("utf-8", errors="surrogatepass"))
    plus = ["\\+"] if char == " " else []
    return "(?:" + "|".join([re.escape(char), encoded, *plus]) + ")", None


def _utf8(secret: str) -> bytes:
    """SECRET's bytes as a program prints them (an environment value that is not UTF-8
    comes back as the bytes it was)."""
    try:
        return secret.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        return secret.encode("utf-8", errors="surrogatepass")


def _b64(data: bytes, *, urlsafe: bool) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(data).decode("ascii")


@functools.lru_cache(maxsize=1024)  # computed once per secret, not per scrub()
def _forms(secret: str) -> tuple[_Form, ...]:
    """Every written form of SECRET: the literal; its UTF-8 in base64 (standard and
    URL-safe, padded or not) and, when long enough, the characters that stand for it
    alone inside a longer base64 stream at each of the three alignments; hex (either
    case); URL-encoded (``quote``, ``quote_plus``, either case). Each may be folded: a
    line break (LF or CRLF) is allowed between any two characters."""
    data = _utf8(secret)
    forms = {_form(_chars(secret), length=len(secret)), _form(_hex(data), length=2 * len(data))}
    if any(c not in _UNRESERVED for c in secret):
        forms.add(_form([_percent(c) for c in secret], length=len(secret)))
    for urlsafe in (False, True):
        alone = _b64(data, urlsafe=urlsafe)
        bare = alone.rstrip("=")
        padding: list[_Atom] = [("=?", None)] * (len(alone) - len(bare))
        forms.add(_form(_chars(bare) + padding, length=len(alone)))
        for shift in (0, 1, 2):  # the secret starts 0, 1 or 2 bytes into a 3-byte group
            # the characters whose 6 bits all come from the secret: from bit 8*shift up
            # to bit 8*(shift + len(data)); the others depend on the bytes around it
            start, end = -(-8 * shift // 6), 8 * (shift + len(data)) // 6
            core = _b64(bytes(shift) + data, urlsafe=urlsafe)[start:end]
            if len(core) >= MIN_BASE64_CORE:
                forms.add(_form(_chars(core), length=len(core)))
    return tuple(forms)


def _pattern_with(extra: Iterable[str]) -> _Masker | None:
    if not extra:  # the usual call: the registered secrets alone
        return _pattern
    extra = [s for s in extra if isinstance(s, str) and s]
    if not extra:
        return _pattern
    with _lock:
        return _compile([*_secrets, *extra])


def secret_in(text: str, secrets: Iterable[str]) -> str | None:
    """The first of SECRETS that TEXT holds in any form :func:`scrub` masks (literal,
    base64, hex, URL-encoded, folded), else ``None``. Read-only."""
    for secret in secrets:
        masker = _compiled(frozenset([secret])) if secret else None
        if masker is not None and masker.search(text):
            return secret
    return None


def _sub(masker: _Masker | None, text: str) -> str:
    return masker.sub(text) if masker is not None else text


def masker() -> Callable[[str], str] | None:
    """What :func:`scrub` does to a text now, as one function (read-only: the registered
    secrets when called), or None while no secret is registered (a text stays as it
    is): for a writer that scrubs many strings at once."""
    pattern = _pattern
    return pattern.sub if pattern is not None else None


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


_ATOMS = frozenset({int, float, bool, type(None)})  # what redact returns as it is, at once


def _redact(value: Any, pattern: _Masker | None) -> Any:
    kind = type(value)  # the usual types first: isinstance of an ABC costs more
    if kind is str:
        return _sub(pattern, value)
    if kind in _ATOMS:
        return value
    if isinstance(value, str):
        return _sub(pattern, value)
    if kind is dict or isinstance(value, Mapping):
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
