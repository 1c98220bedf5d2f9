"""Bounded, typed reading of TOML files: the one reader of configurations and manifests.

Everything an operator writes in TOML goes through here, and every failure is one
:class:`~ftkit.errors.FtkitError` (of the class the caller names) saying the file, the key
and what to write instead::

    data = read_file(path, label=str(path), error=ConfigError)   # regular file, <= 1 MiB
    raw = parse_toml(decode(data, label, ConfigError), label, ConfigError)
    r = Reader(label, ConfigError, top_keys=("name", "disks"))
    r.known(raw, ("name", "disks"))
    name = r.text(raw, "name", "", 'name = "x"', required=True)
    timeout = r.number(raw, "timeout_s", "", "timeout_s = 300", low=0, high=86400)

Input is bounded: only regular files are read (a FIFO, a device or ``/dev/zero`` is refused
from ``os.stat`` before anything is opened for reading), at most :data:`MAX_BYTES` of them,
tables and arrays nested at most :data:`MAX_DEPTH` deep, and numbers within the bounds the
caller states. Read-only.

The reader is written by hand on :mod:`tomllib` rather than on pydantic or msgspec: the
messages name the file, the key, a close match and the fix, which a schema library's
errors would have to be translated into anyway, and importing pydantic costs 55-100 ms
that ``ftkit check`` would pay at every cold start.
"""

from __future__ import annotations

import difflib
import math
import os
import stat
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from ftkit.errors import FtkitError

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "Reader",
    "decode",
    "join",
    "parse_toml",
    "read_file",
    "shown",
    "type_name",
]

#: The largest TOML file read (1 MiB): a configuration or a manifest is a few KiB.
MAX_BYTES = 1 << 20
#: How deep tables and arrays may nest inside one TOML document.
MAX_DEPTH = 16


def read_file(
    file: str | os.PathLike[str],
    label: str,
    error: type[FtkitError],
    *,
    max_bytes: int = MAX_BYTES,
    missing: str = "check the path (relative paths are relative to the current directory)",
    kind: str = "TOML",
) -> bytes:
    """The bytes of the regular file ``file``, at most ``max_bytes`` of them. Read-only.

    ``os.stat`` comes first, so a FIFO (whose ``open`` would block), a device such as
    ``/dev/zero`` (which never ends) or a directory is refused before it is opened; the
    open itself is non-blocking and checked again, in case the path was swapped meanwhile.
    ``missing`` is the remedy when the file does not exist; ``kind`` names what the file
    holds in a refusal ("TOML", "PEM", "JSON").
    """
    label = shown(label)
    try:
        info = os.stat(file)
    except FileNotFoundError:
        raise error(f"{label}: file not found", missing) from None
    except ValueError:  # an embedded NUL
        raise error(f"{label}: is not a valid path", f"name the {kind} file") from None
    except OSError as exc:
        raise error(f"{label}: cannot be read: {exc.strerror}", "check its permissions") from None
    _check_regular(info, label, error, max_bytes, kind)
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise error(f"{label}: cannot be read: {exc.strerror}", "check its permissions") from None
    with os.fdopen(fd, "rb") as handle:
        _check_regular(os.fstat(handle.fileno()), label, error, max_bytes, kind)
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        _too_big(label, error, max_bytes, kind)
    return data


def _check_regular(
    info: os.stat_result, label: str, error: type[FtkitError], max_bytes: int, kind: str
) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{label}: is a directory, not a {kind} file", f"name the {kind} file")
    if not stat.S_ISREG(info.st_mode):
        raise error(
            f"{label}: is not a regular file (a pipe, socket or device)",
            f"name a {kind} file on disk; ftkit reads only regular files",
        )
    if info.st_size > max_bytes:
        _too_big(label, error, max_bytes, kind)


def _too_big(label: str, error: type[FtkitError], max_bytes: int,
             kind: str = "TOML") -> NoReturn:
    raise error(
        f"{label}: is larger than {max_bytes // 1024} KiB",
        "name the right file; a configuration or manifest is a few KiB of TOML"
        if kind == "TOML" else "name the right file",
    )


def decode(data: bytes, label: str, error: type[FtkitError]) -> str:
    """``data`` as UTF-8 text (a BOM is dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"{label}: is not UTF-8 text", "save the file as UTF-8") from None


def parse_toml(text: str, label: str, error: type[FtkitError]) -> dict[str, Any]:
    """The TOML document ``text``, nested at most :data:`MAX_DEPTH` deep."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = " ".join(str(exc).split())  # one line; tomllib names line and column
        raise error(
            f"{label}: TOML syntax error: {problem}",
            'fix the TOML at that line (strings need "quotes", lists [brackets], '
            "tables [name] on their own line)",
        ) from None
    except RecursionError:
        _too_deep(label, error)
    if _depth(raw) > MAX_DEPTH:
        _too_deep(label, error)
    return raw


def _too_deep(label: str, error: type[FtkitError]) -> NoReturn:
    raise error(
        f"{label}: tables or arrays are nested more than {MAX_DEPTH} deep",
        "flatten the TOML; a configuration or manifest nests two or three levels",
    )


def _depth(value: Any) -> int:
    """How deep tables and arrays nest in ``value`` (iterative: no recursion limit)."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            children: Sequence[Any] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            return deepest
        todo.extend((child, level + 1) for child in children)
    return deepest


def type_name(value: object) -> str:
    """How an operator calls the TOML type of ``value``."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def shown(text: str) -> str:
    """``text`` as it may appear in a one-line message: itself if printable, else its
    ``repr`` (a key or file name holding a newline must not break the line)."""
    return text if text.isprintable() else repr(text)


def join(where: str, key: str) -> str:
    """The dotted key path of ``key`` inside the table at ``where`` (printable)."""
    return f"{where}.{shown(key)}" if where else shown(key)


class Reader:
    """Typed access to one parsed TOML document; every failure names the file and key.

    ``error`` is the :class:`FtkitError` subclass raised; ``top_keys`` the document's
    top-level keys, used to explain a top-level key written below a ``[table]`` header.
    """

    def __init__(self, label: str, error: type[FtkitError], top_keys: Sequence[str]) -> None:
        self.label = shown(label)
        self.error = error
        self.top_keys = tuple(top_keys)

    def fail(self, key: str, problem: str, remedy: str) -> NoReturn:
        """Raise ``error("<file>: <key>: <problem>", remedy)``."""
        raise self.error(f"{self.label}: {shown(key)}: {problem}", remedy)

    def known(self, table: Mapping[str, Any], keys: Sequence[str], where: str = "") -> None:
        """Refuse a key of ``table`` that is not in ``keys``, with the closest known one."""
        for key in table:
            if key in keys:
                continue
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            top = difflib.get_close_matches(key, self.top_keys, n=1) if where else []
            if top and not close:
                hint += (
                    f"{top[0]!r} is a top-level key: a key written below a [table] header "
                    "belongs to that table, so move it above the first table; "
                )
            place = f"in [{where}]" if where else "at the top level"
            self.fail(
                join(where, key), "unknown key", f"{hint}known keys {place}: " + ", ".join(keys)
            )

    def present(self, table: Mapping[str, Any], key: str, where: str, example: str) -> Any:
        """``table[key]``; refused when missing."""
        if key not in table:
            self.fail(join(where, key), "missing", f"write {example}")
        return table[key]

    def text(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        example: str,
        *,
        required: bool = False,
    ) -> str | None:
        """A non-empty string, or ``None`` when absent and not ``required``."""
        if key not in table:
            if required:
                self.present(table, key, where, example)
            return None
        value = table[key]
        if not isinstance(value, str):
            self.fail(
                join(where, key), f"expected a string, got {type_name(value)}", f"write {example}"
            )
        if not value.strip():
            self.fail(join(where, key), "is empty", f"write {example}")
        return value

    def names(
        self, table: Mapping[str, Any], key: str, where: str, example: str
    ) -> tuple[str, ...] | None:
        """A list of non-empty strings, duplicates dropped (first one kept)."""
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, list):
            self.fail(
                join(where, key),
                f"expected a list of strings, got {type_name(value)}",
                f"write {example}",
            )
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.fail(
                    f"{join(where, key)}[{index}]",
                    f"expected a string, got {type_name(item)}",
                    f"write {example}",
                )
            if not item.strip():
                self.fail(f"{join(where, key)}[{index}]", "is empty", f"write {example}")
        return tuple(dict.fromkeys(value))

    def flag(
        self, table: Mapping[str, Any], key: str, where: str, *, required: bool = False
    ) -> bool | None:
        """``true`` or ``false`` (not a string), or ``None`` when absent and not required."""
        if key not in table:
            if required:
                self.present(table, key, where, f"{key} = true (or false)")
            return None
        value = table[key]
        if not isinstance(value, bool):
            self.fail(
                join(where, key),
                f"expected true or false, got {type_name(value)}",
                f"write {key} = true or {key} = false (no quotes)",
            )
        return value

    def number(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        example: str,
        *,
        low: float,
        high: float,
        unit: str,
        required: bool = False,
    ) -> float | None:
        """A finite number in ``(low, high]`` (``unit`` names what it counts), or ``None``
        when absent and not ``required``; nan, inf and anything out of bounds are refused
        with the bounds."""
        if key not in table:
            if required:
                self.present(table, key, where, example)
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(
                join(where, key),
                f"expected a number, got {type_name(value)}",
                f"write {example} (no quotes)",
            )
        bounds = f"greater than {low:g} and at most {high:g} {unit}"
        if not (isinstance(value, int) or math.isfinite(value)):
            self.fail(join(where, key), f"must be a finite number, got {value}",
                      f"write {example} ({bounds})")
        if not low < value <= high:
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            self.fail(join(where, key), f"must be {bounds}, got {shown}", f"write {example}")
        return float(value)

    def choice(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        choices: Sequence[str],
        *,
        required: bool = False,
    ) -> str | None:
        """One of ``choices`` (a close match is suggested), or ``None`` when absent."""
        example = f'{key} = "{choices[0]}"'
        value = self.text(table, key, where, example, required=required)
        if value is not None and value not in choices:
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self.fail(
                join(where, key),
                f"unknown value {value!r}",
                f"{hint}write one of: " + ", ".join(choices),
            )
        return value

    def table(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        keys: Sequence[str],
        example: str,
        *,
        required: bool = False,
    ) -> dict[str, Any] | None:
        """A sub-table holding only ``keys``, or ``None`` when absent and not required."""
        if key not in table:
            if required:
                self.present(table, key, where, example)
            return None
        value = table[key]
        if not isinstance(value, dict):
            self.fail(
                join(where, key),
                f"expected a table, got {type_name(value)}",
                f"write it as a table: {example}",
            )
        self.known(value, keys, join(where, key))
        return value

