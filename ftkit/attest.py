"""In-toto attestations of archived runs: a DSSE envelope around an in-toto Statement v1.

Each archived run gets ``<report>.intoto.jsonl`` beside its notebook and HTML (listed in
its ledger line like them): one line, a DSSE envelope (https://github.com/secure-systems-lab/dsse)
of ``payloadType`` ``application/vnd.in-toto+json`` whose payload is an in-toto Statement
v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md): the subjects
are the notebook and the HTML with their SHA-256, the predicate the run's facts as the
ledger records them. It is signed with the archive's Ed25519 key (:mod:`ftkit.keys`) over
the DSSE pre-authentication encoding (:func:`pae`), the signature's ``keyid`` the key's
fingerprint; with no key the envelope has no signature (the digests still stand, proving
nothing about who wrote them).

The PAE is written out here (a dozen lines, exactly as the DSSE v1 protocol states it)
rather than taken from securesystemslib, so that archiving needs nothing beyond
cryptography; the tests check the envelope with securesystemslib's ``dsse.Envelope``, and
docs/VERIFY.md shows both ways.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from ftkit import canonical

__all__ = ["PAYLOAD_TYPE", "PREDICATE_TYPE", "STATEMENT_TYPE", "envelope", "pae", "statement",
           "verify_envelope"]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "urn:ftkit:archived-run:v1"
SUFFIX = ".intoto.jsonl"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``"DSSEv1" SP LEN(type) SP type SP LEN(body)
    SP body``, lengths in ASCII decimal of the UTF-8 byte counts."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def statement(subjects: Mapping[str, str], predicate: Mapping[str, Any]) -> dict[str, Any]:
    """An in-toto Statement v1 about SUBJECTS ({file name: SHA-256 hex}) with PREDICATE."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}}
                    for name, digest in sorted(subjects.items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": dict(predicate),
    }


def envelope(body: Mapping[str, Any], signer: Any | None) -> dict[str, Any]:
    """The DSSE envelope of statement BODY, signed by SIGNER (an Ed25519 private key) or
    unsigned (no signatures) when None."""
    payload = canonical.dumps(dict(body)).encode("utf-8")
    signatures = []
    if signer is not None:
        from ftkit.keys import fingerprint

        signatures.append({
            "keyid": fingerprint(signer.public_key()),
            "sig": base64.b64encode(signer.sign(pae(PAYLOAD_TYPE, payload))).decode("ascii"),
        })
    return {"payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE, "signatures": signatures}


def verify_envelope(data: Mapping[str, Any], public: Any) -> dict[str, Any]:
    """The statement in envelope DATA if one of its signatures holds under PUBLIC (an
    Ed25519 public key); ValueError otherwise. Read-only."""
    from cryptography.exceptions import InvalidSignature

    from ftkit.keys import fingerprint

    if data.get("payloadType") != PAYLOAD_TYPE:
        raise ValueError(f"payloadType is {data.get('payloadType')!r}")
    payload = base64.b64decode(str(data["payload"]), validate=True)
    want = fingerprint(public)
    for signature in data.get("signatures") or []:
        if signature.get("keyid") not in (None, "", want):
            continue
        try:
            public.verify(base64.b64decode(str(signature["sig"]), validate=True),
                          pae(str(data["payloadType"]), payload))
        except InvalidSignature:
            continue
        parsed = json.loads(payload)
        if not isinstance(parsed, dict) or parsed.get("_type") != STATEMENT_TYPE:
            raise ValueError("the payload is not an in-toto Statement v1")
        return parsed
    raise ValueError("no signature by the given key holds")


def attestation_bytes(files: Mapping[str, str], facts: Mapping[str, Any],
                      signer: Any | None) -> bytes:
    """The ``.intoto.jsonl`` file of a run: one envelope, one line."""
    return (canonical.dumps(envelope(statement(files, facts), signer)) + "\n").encode("utf-8")
