"""The forms a program may print a secret in, worked out here with the standard library
(not with ftkit.redact), and a check that a text holds none of them.

``leaks(text, secret)`` names every form of SECRET still readable in TEXT: its line breaks
removed (a form folded by ``fold`` or ``base64 -w``), it is searched for the literal, the
base64 (standard, URL-safe, padded or not), hex (either case) and URL-encoded forms; and
every run of base64 characters is decoded at each of its four offsets, so a secret
encoded inside a longer stream is found too.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse


def written_forms(secret: str) -> dict[str, str]:
    """Name → SECRET as that encoder writes it."""
    data = secret.encode()
    b64 = base64.b64encode(data).decode()
    url64 = base64.urlsafe_b64encode(data).decode()
    return {
        "literal": secret,
        "base64": b64,
        "base64 unpadded": b64.rstrip("="),
        "base64 url-safe": url64,
        "base64 url-safe unpadded": url64.rstrip("="),
        "hex": data.hex(),
        "HEX": data.hex().upper(),
        "quote": urllib.parse.quote(secret),
        "quote safe=''": urllib.parse.quote(secret, safe=""),
        "quote_plus": urllib.parse.quote_plus(secret),
        "quote, lower-case escapes": re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(),
                                            urllib.parse.quote(secret, safe="")),
    }


_B64_RUN = re.compile(r"[A-Za-z0-9+/=_-]{8,}")


def leaks(text: str, secret: str) -> list[str]:
    """The forms of SECRET readable in TEXT (empty: none)."""
    flat = text.replace("\r", "").replace("\n", "")
    found = [name for name, form in written_forms(secret).items() if form in flat]
    data = secret.encode()
    for run in _B64_RUN.findall(flat):
        for offset in range(4):
            chunk = run[offset:].rstrip("=")
            chunk = chunk[: len(chunk) - 1] if len(chunk) % 4 == 1 else chunk
            chunk += "=" * (-len(chunk) % 4)
            for alphabet in (None, b"-_"):
                try:
                    decoded = base64.b64decode(chunk, altchars=alphabet, validate=True)
                except (binascii.Error, ValueError):
                    continue
                if data in decoded:
                    found.append(f"base64 stream {run[:12]}…")
    return found
