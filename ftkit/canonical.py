"""Canonical JSON, SHA-256 and timestamps: the one definition the journal and the archive share.

Everything ftkit hashes goes through :func:`dumps`, and every time it records goes through
:func:`iso`, so a journal entry and a ledger line written in the same second say the same
thing the same way::

    dumps({"b": 1, "a": "é"})        # '{"a":"é","b":1}'
    sha256_hex(dumps(entry))         # the hash of a journal entry or a ledger line
    iso(utc_now())                   # '2025-03-01T02:00:00.123456Z'

- **JSON**: keys sorted, separators ``","`` and ``":"`` (no spaces), non-ASCII kept as
  UTF-8 (``ensure_ascii=False``: a name like "Müller" reads as written in the journal and
  the ledger, and the hashes of every entry written so far were computed this way), and a
  value JSON does not know becomes its ``str()``. The hash of a text is SHA-256 of its
  UTF-8 bytes, as 64 lowercase hex digits.
- **Time**: UTC, ISO 8601 with the zero offset written ``Z`` (RFC 3339), to the
  **microsecond** (what the journal has always written; a journal's entries can be
  microseconds apart). A naive datetime is taken as UTC. Stored timestamps are hashed as
  the text they were stored with, so ledger lines written with milliseconds before still
  verify; :func:`parse_iso` reads any precision.
- **Reading**: :func:`loads_strict` refuses a duplicated key (``{"a":1,"a":2}`` would
  otherwise silently mean 2), and :func:`is_canonical` says whether a stored line is
  exactly the canonical form of what it parses to.

Read-only helpers; nothing here touches a file. Imports only the standard library.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DuplicateKeyError",
    "dumps",
    "is_canonical",
    "iso",
    "loads_strict",
    "parse_iso",
    "sha256_hex",
    "utc_now",
]

# the one precision of every timestamp ftkit writes (datetime.isoformat's timespec)
TIMESPEC = "microseconds"


# what json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
# default=str) builds on each call, built once (a ledger's verify dumps every line)
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                            default=str)


def dumps(value: Any) -> str:
    """VALUE as canonical JSON: sorted keys, no spaces, UTF-8 kept, unknown types str()."""
    return _ENCODER.encode(value)


def sha256_hex(data: bytes | str) -> str:
    """SHA-256 of DATA (a text is hashed as its UTF-8 bytes), 64 lowercase hex digits."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def utc_now() -> datetime:
    """The wall-clock time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """MOMENT as ISO 8601 UTC to the microsecond with ``Z``; a naive datetime is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec=TIMESPEC).replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """An ISO 8601 timestamp (``Z`` or an offset; any precision) as an aware datetime.

    Raises ValueError for text that is not one; a timestamp without an offset is UTC.
    """
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKeyError(f"duplicated key {key!r}")
        result[key] = value
    return result


def loads_strict(text: str | bytes) -> Any:
    """Parse JSON TEXT, refusing a duplicated key in any object (DuplicateKeyError).

    Raises ValueError (json.JSONDecodeError, DuplicateKeyError) for text that is not JSON.
    """
    return json.loads(text, object_pairs_hook=_no_duplicates)


def is_canonical(raw: str, value: Any) -> bool:
    """Whether RAW (one stored line, its line ending ignored) is exactly ``dumps(VALUE)``."""
    return raw.rstrip("\r\n") == dumps(value)
