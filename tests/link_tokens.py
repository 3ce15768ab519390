"""Link tokens as releases before link ids sealed them (version 2), for the tests that check
how such links open now."""

from __future__ import annotations

import base64
import os
import struct
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.links import UNSUBSCRIBE, LinkKind
from services.secrets import KeyRing


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
