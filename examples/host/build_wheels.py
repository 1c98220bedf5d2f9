"""Build the example's update packages, orderdesk 1.0.0 and 2.0.0, as wheels, offline.

A wheel is a zip file with a ``.dist-info`` folder (PEP 427, PEP 376); the standard
library writes one, so the example needs neither the network nor ``setuptools``/``wheel``
(``pip wheel`` would fetch a build backend)::

    python examples/host/build_wheels.py OUT_DIR        # orderdesk-{1.0.0,2.0.0}-py3-none-any.whl
"""

from __future__ import annotations

import base64
import hashlib
import sys
import zipfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "orderdesk"
NAME = "orderdesk"
VERSIONS = ("1.0.0", "2.0.0")
_STAMP = (2026, 1, 1, 0, 0, 0)  # fixed: the same source gives the same wheel


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def build_wheel(version: str, out: Path) -> Path:
    """Write ``orderdesk-VERSION-py3-none-any.whl`` into OUT; returns its path."""
    dist = f"{NAME}-{version}.dist-info"
    files = {f"{NAME}/{p.name}": p.read_bytes()
             for p in sorted((SOURCE / NAME).glob("*.py"))}
    files[f"{dist}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {version}\n"
        "Summary: Example order service upgraded by ftkit's host driver\n"
        "Requires-Python: >=3.11\n").encode()
    files[f"{dist}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: ftkit-example\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{NAME}-{version}-py3-none-any.whl"
    partial = wheel.with_suffix(".part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(zipfile.ZipInfo(path, _STAMP), data)
    partial.replace(wheel)
    return wheel


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: build_wheels.py OUT_DIR", file=sys.stderr)
        return 2
    for version in VERSIONS:
        print(build_wheel(version, Path(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
