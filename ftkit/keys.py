"""The archive's Ed25519 key: made, shown and rotated by ``ftkit keys init|show|rotate``.

The private key is a PKCS#8 PEM file written with mode 0600, by default
``$FTKIT_HOME/keys/archive-ed25519.pem`` (``$FTKIT_SIGNING_KEY`` names another), its
public key beside it (``archive-ed25519.pub.pem``). A key's **fingerprint** is the SHA-256
of its 32 raw public-key bytes, in hex: what every checkpoint records and what an auditor
computes with ``openssl pkey -pubin -in KEY.pub.pem -outform DER | tail -c 32 | sha256sum``
(docs/VERIFY.md). Rotating makes a new key and writes a checkpoint signed by the old key
and the new one naming the new one (:func:`ftkit.checkpoints.write_rotation`), so the
trust pinned in the archive's first checkpoint passes to the new key; the old private key
is kept as ``archive-ed25519.<fingerprint prefix>.retired.pem``.

A second, symmetric key, ``$FTKIT_HOME/keys/verify-state.key`` (32 random bytes, 0600),
authenticates what ``ftkit reports verify --incremental`` saves (``.verified.json``), so
that an edited ledger line and a rewritten state file do not pass.

cryptography is imported only here and only when a key is made or read.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftkit.errors import ArchiveError

__all__ = [
    "KeyInfo",
    "default_key_path",
    "fingerprint",
    "init_key",
    "raw_public",
    "rotate_key",
    "show_key",
    "signing_key_path",
    "state_mac",
]

SIGNING_KEY_ENV = "FTKIT_SIGNING_KEY"
KEY_NAME = "archive-ed25519.pem"
STATE_KEY_NAME = "verify-state.key"


@dataclass(frozen=True)
class KeyInfo:
    """Where a key pair is and its public key's fingerprint."""

    private: Path
    public: Path
    fingerprint: str
    public_pem: str


def _keys_dir() -> Path:
    from ftkit.home import ftkit_home

    return ftkit_home() / "keys"


def default_key_path() -> Path:
    """``$FTKIT_HOME/keys/archive-ed25519.pem`` (read-only: nothing is created)."""
    return _keys_dir() / KEY_NAME


def signing_key_path() -> Path | None:
    """The key the archive signs with: ``$FTKIT_SIGNING_KEY``, else the default key if
    ``ftkit keys init`` made it, else None (unsigned). Read-only."""
    env = os.environ.get(SIGNING_KEY_ENV)
    if env:
        return Path(env).expanduser()
    path = default_key_path()
    return path if path.is_file() else None


def public_path(private: Path) -> Path:
    """The public key file beside PRIVATE (``x.pem`` → ``x.pub.pem``)."""
    return private.with_name(private.name.removesuffix(".pem") + ".pub.pem")


def raw_public(public: Any) -> bytes:
    """The 32 raw bytes of an Ed25519 public key object."""
    from cryptography.hazmat.primitives import serialization

    return bytes(public.public_bytes(serialization.Encoding.Raw,
                                     serialization.PublicFormat.Raw))


def fingerprint(public: Any | bytes) -> str:
    """SHA-256 (hex) of the raw public key PUBLIC (a key object or its 32 bytes)."""
    raw = public if isinstance(public, bytes) else raw_public(public)
    return hashlib.sha256(raw).hexdigest()


def _public_pem(public: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(public.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo))


def _write_private(path: Path, key: Any) -> None:
    """Write KEY to PATH (PKCS#8 PEM, mode 0600 from its creation; PATH must not exist)."""
    from cryptography.hazmat.primitives import serialization

    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _write_public(private: Path, key: Any) -> Path:
    path = public_path(private)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(_public_pem(key.public_key()))
    os.replace(tmp, path)
    return path


def _info(private: Path, key: Any) -> KeyInfo:
    return KeyInfo(private=private, public=public_path(private),
                   fingerprint=fingerprint(key.public_key()),
                   public_pem=_public_pem(key.public_key()).decode("ascii"))


def _target(path: Path | str | None) -> Path:
    if path is not None:
        return Path(path).expanduser()
    return signing_key_path() or default_key_path()


def init_key(*, path: Path | str | None = None) -> KeyInfo:
    """Make a new Ed25519 key at PATH (default: :func:`signing_key_path`, else
    :func:`default_key_path`), mode 0600, and its public key beside it. Writes two files;
    refused (:class:`ArchiveError`, nothing written) when a key is there already."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    target = _target(path)
    if target.exists():
        raise ArchiveError(f"there is a key at {target} already",
                           "show it with `ftkit keys show`, or replace it with `ftkit keys "
                           "rotate` (which the archive's checkpoints record)")
    key = Ed25519PrivateKey.generate()
    _write_private(target, key)
    _write_public(target, key)
    return _info(target, key)


def load_private(path: Path | str | None = None) -> tuple[Path, Any]:
    """(path, private key) of PATH or the archive's key; :class:`ArchiveError` if none."""
    target = _target(path)
    if not target.is_file():
        raise ArchiveError(f"no archive key at {target}",
                           "make one with `ftkit keys init`")
    from ftkit.archive import _load_pem

    return target, _load_pem(target, private=True)


def show_key(*, path: Path | str | None = None) -> KeyInfo:
    """The archive's key: its files and fingerprint. Read-only; refused if the private
    key file is readable by others than its owner (it must be mode 0600)."""
    target, key = load_private(path)
    mode = target.stat().st_mode & 0o777
    if mode & 0o077:
        raise ArchiveError(f"the archive key {target} is readable by others (mode {mode:o})",
                           f"chmod 600 {target}")
    return _info(target, key)


def rotate_key(*, reports: Path, path: Path | str | None = None) -> tuple[KeyInfo, KeyInfo]:
    """Replace the archive's key with a new one: writes a rotation checkpoint into REPORTS
    (and to the witnesses) signed by the old key and by the new one, naming the new one;
    keeps the old private key as ``<name>.<fingerprint prefix>.retired.pem``; writes the new
    key where the old one was. Returns (old, new)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ftkit.checkpoints import write_rotation

    target, old = load_private(path)
    old_info = _info(target, old)
    new = Ed25519PrivateKey.generate()
    write_rotation(Path(reports), old=old, new=new)
    retired = target.with_name(
        f"{target.name.removesuffix('.pem')}.{old_info.fingerprint[:16]}.retired.pem")
    os.replace(target, retired)
    with contextlib.suppress(OSError):
        os.replace(public_path(target), public_path(retired))
    _write_private(target, new)
    _write_public(target, new)
    return old_info, _info(target, new)


def _state_key() -> bytes:
    """The 32-byte key that authenticates ``.verified.json`` (made 0600 on first use)."""
    path = _keys_dir() / STATE_KEY_NAME
    with contextlib.suppress(FileNotFoundError):
        data = path.read_bytes()
        if len(data) == 32:
            return data
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another verify made it meanwhile, or it is damaged
        data = path.read_bytes()
        if len(data) != 32:
            raise ArchiveError(f"{path} is not a verification-state key (32 bytes)",
                               f"remove {path}; the next verify --incremental starts over"
                               ) from None
        return data
    data = os.urandom(32)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return data


def state_mac(text: str) -> str:
    """HMAC-SHA256 (hex) of TEXT under the verification-state key (made if missing)."""
    return hmac.new(_state_key(), text.encode("utf-8"), hashlib.sha256).hexdigest()
