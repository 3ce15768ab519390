"""Signing webhook deliveries as the Standard Webhooks specification says
(https://www.standardwebhooks.com/), so receivers can verify them with its libraries.

A secret is `whsec_` + base64 of 32 random bytes; a signature is `v1,` + base64 of the
HMAC-SHA256 of `{msg_id}.{timestamp}.{body}` under the decoded secret. While a secret rotates,
every secret that still signs gives one signature, space separated, and a receiver accepts the
delivery when any of them verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as random_bytes
from collections.abc import Sequence
from typing import Final

PREFIX: Final = "whsec_"
SECRET_BYTES: Final = 32
#: refused in a webhook-id: the signed content is `{id}.{timestamp}.{body}`, so a dot in the id
#: would blur its boundaries (id `a.1` at 2 with body B, and id `a` at 1 with body `2.` + B,
#: sign the same bytes); the specification's libraries do not check it for us
_DOT: Final = "."


def new_secret() -> str:
    """A fresh signing secret, in the form receivers' libraries take."""
    return PREFIX + base64.b64encode(random_bytes.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a `whsec_` secret stands for; ValueError for anything else."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        raise ValueError("a signing secret is whsec_ followed by base64")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except binascii.Error:
        raise ValueError("a signing secret is whsec_ followed by base64") from None
    if len(key) < 24:
        raise ValueError("a signing secret holds at least 24 bytes")
    return key


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    if _DOT in msg_id or not msg_id:
        raise ValueError("a webhook-id is not empty and has no '.'")
    if timestamp < 0:
        raise ValueError("a webhook-timestamp is seconds since the epoch")
    return f"{msg_id}.{timestamp}.".encode() + body


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: one `v1,<base64>` per secret, space separated."""
    if not secrets:
        raise ValueError("a delivery is signed by at least one secret")
    content = _signed_content(msg_id, timestamp, body)
    return " ".join(
        "v1," + base64.b64encode(hmac.digest(secret_key(s), content, hashlib.sha256)).decode()
        for s in secrets
    )


def webhook_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Every header a delivery carries besides the HTTP client's own."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
        "content-type": "application/json",
    }
