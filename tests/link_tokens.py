"""Link tokens for the tests: as this release seals them (`token`, with fixed keys and clock),
and as releases before link ids sealed them (version 2), to check how such links open now."""

from __future__ import annotations

import base64
import os
import struct
from datetime import UTC, datetime, timedelta
from typing import get_args

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV
from hypothesis import strategies as st

from services.identity.links import UNSUBSCRIBE, LinkKind, issue
from services.identity.secrets import KeyRing

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TTL = timedelta(days=730)
K1 = KeyRing({"l1": bytes(range(32))}, "l1")
K2 = KeyRing({"l2": bytes(range(1, 33))}, "l2")
ROTATED = KeyRing({"l2": K2.keys["l2"], "l1": K1.keys["l1"]}, "l2")

subject_ids = st.from_regex(r"[A-Za-z0-9._:-]{1,128}", fullmatch=True)
optional_text = st.none() | st.text(st.characters(codec="utf-8"), min_size=1, max_size=60)
kinds = st.sampled_from(get_args(LinkKind))
#: every other kind than the key's
OTHERS: dict[LinkKind, tuple[LinkKind, ...]] = {
    kind: tuple(k for k in get_args(LinkKind) if k != kind) for kind in get_args(LinkKind)
}


def token(**overrides: object) -> str:
    fields: dict[str, object] = {
        "kind": UNSUBSCRIBE,
        "subject_id": "sub-123",
        "purpose": "newsletter",
        "channel": "email",
        "campaign_id": "spring-2026",
        "now": NOW,
        "ttl": TTL,
    }
    fields.update(overrides)
    return issue(K1, **fields)  # type: ignore[arg-type]


def raw(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def version2_token(
    keys: KeyRing,
    kind: LinkKind,
    *,
    subject_id: str,
    issued: datetime,
    ttl: timedelta,
    purpose: str = "newsletter",
    channel: str = "email",
    campaign_id: str = "old-campaign",
) -> str:
    """A token as version 2 sealed it: the kind, the issue and expiry time in whole seconds,
    the four texts; no link id, no address."""
    kid = keys.current_id.encode()
    header = bytes((2, len(kid))) + kid
    payload = bytes((1 if kind == UNSUBSCRIBE else 2,))
    payload += struct.pack(">II", int(issued.timestamp()), int((issued + ttl).timestamp()))
    for text in (subject_id, purpose, channel, campaign_id):
        payload += bytes((len(text.encode()),)) + text.encode()
    nonce = os.urandom(12)
    associated = b"consent-ledger/link/" + kind.encode() + header
    sealed = AESGCM(keys.current).encrypt(nonce, payload, associated)
    return base64.urlsafe_b64encode(header + nonce + sealed).decode().rstrip("=")


def version3_token(keys: KeyRing, kind: LinkKind, *, subject_id: str, issued: datetime) -> str:
    """A token as version 3 sealed it: AES-GCM-SIV, a link id and no address, the four texts
    and no language."""
    kid = keys.current_id.encode()
    header = bytes((3, len(kid))) + kid
    micros = int(issued.timestamp()) * 1_000_000
    payload = bytes((1 if kind == UNSUBSCRIBE else 2,))
    payload += struct.pack(">QI", micros, int((issued + TTL).timestamp())) + bytes(16) + b"\x00"
    for text in (subject_id, "newsletter", "email", "old-campaign"):
        payload += bytes((len(text.encode()),)) + text.encode()
    nonce = os.urandom(12)
    associated = b"consent-ledger/link/" + kind.encode() + header
    sealed = AESGCMSIV(keys.current).encrypt(nonce, payload, associated)
    return base64.urlsafe_b64encode(header + nonce + sealed).decode().rstrip("=")
