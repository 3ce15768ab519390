"""Signing consent receipts: compact JWS (RFC 7515) with EdDSA over Ed25519 (RFC 8037).

The receipt keys are a key ring of 32-byte Ed25519 private seeds (LEDGER_RECEIPT_KEYS): the
first signs, and every key's public half stays in the JWK set (GET /.well-known/jwks.json) so
receipts signed before a rotation still verify. The payload is the receipt as canonical JSON
(keys sorted, no spaces, UTF-8): asking twice for one receipt gives the same bytes, and Ed25519
signatures are deterministic, so the same JWS too.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.identity.secrets import KeyRing

ALGORITHM: Final = "EdDSA"
#: media type of the JWK set (RFC 7517 section 8.5)
JWKS_MEDIA_TYPE: Final = "application/jwk-set+json"


class SignatureError(ValueError):
    """A JWS that does not parse, names an unknown key or fails verification."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SignatureError("a JWS part is not base64url") from None


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def public_key(seed: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key of a private seed."""
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_jwk(kid: str, seed: bytes) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(public_key(seed)),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    }


def jwks(ring: KeyRing) -> dict[str, list[dict[str, str]]]:
    """Every key of the ring, current first: old receipts keep verifying after a rotation."""
    return {"keys": [public_jwk(kid, seed) for kid, seed in ring.keys.items()]}


def sign(payload: Mapping[str, Any], ring: KeyRing) -> str:
    """The compact JWS of `payload` under the ring's current key (its kid in the header)."""
    header = {"alg": ALGORITHM, "kid": ring.current_id, "typ": "JOSE"}
    signing_input = f"{b64url(canonical_json(header))}.{b64url(canonical_json(payload))}"
    signature = Ed25519PrivateKey.from_private_bytes(ring.current).sign(signing_input.encode())
    return f"{signing_input}.{b64url(signature)}"


def verify(jws: str, key_set: Mapping[str, Any]) -> dict[str, Any]:
    """The payload of a compact JWS, after checking it against the JWK set it names a key of."""
    parts = jws.split(".")
    if len(parts) != 3:
        raise SignatureError("a compact JWS has three parts separated by dots")
    try:
        header = json.loads(_unb64url(parts[0]))
        payload = json.loads(_unb64url(parts[1]))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SignatureError("the JWS header or payload is not JSON") from None
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        raise SignatureError(f"the JWS header must name alg {ALGORITHM}")
    keys = [k for k in key_set.get("keys", ()) if k.get("kid") == header.get("kid")]
    if not keys or keys[0].get("kty") != "OKP" or keys[0].get("crv") != "Ed25519":
        raise SignatureError(f"no Ed25519 key {header.get('kid')!r} in the key set")
    try:
        key = Ed25519PublicKey.from_public_bytes(_unb64url(str(keys[0].get("x", ""))))
        key.verify(_unb64url(parts[2]), f"{parts[0]}.{parts[1]}".encode("ascii"))
    except (InvalidSignature, ValueError):
        raise SignatureError("the signature does not verify") from None
    if not isinstance(payload, dict):
        raise SignatureError("the JWS payload is not a JSON object")
    return payload
