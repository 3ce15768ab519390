"""Link tokens: the opaque part of an unsubscribe or preference URL (pure; the clock is passed).

A token is AES-256-GCM sealed, so it is unforgeable and shows nothing of what it carries. Its
clear prefix is a version byte and the id of the key that sealed it, both bound as associated
data; a key ring of several keys therefore opens old links while the first key seals new ones,
and a key is retired once the links it sealed have expired.

    token = base64url(version | len(kid) | kid | nonce[12] | AES-GCM(payload) + tag[16])
    payload = issued_at u32 | expires_at u32 | subject_id | purpose | channel | campaign_id
              (each text 1 length byte + UTF-8; length 0 is "none")

Nonces are random (96 bits): with one key, far fewer than 2**32 links are sealed before it rotates.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.secrets import KeyRing

VERSION: Final = 1
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
MAX_TOKEN_CHARS: Final = 1024
_DOMAIN: Final = b"consent-ledger/link"
_TIMES: Final = struct.Struct(">II")
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
_MAX_FIELD_BYTES: Final = 255
#: what any unusable link answers: never which check failed
GENERIC: Final = "this link is not valid"


class LinkError(ValueError):
    """The token cannot be used. `str()` is the same for every cause; `why` is for logs only."""

    def __init__(self, why: str) -> None:
        super().__init__(GENERIC)
        self.why = why


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a token says: whose link, for which purpose and channel (None: any), until when."""

    subject_id: str
    purpose: str | None
    channel: str | None
    campaign_id: str | None
    issued_at: datetime
    expires_at: datetime
    kid: str = ""


def issue(
    keys: KeyRing,
    *,
    subject_id: str,
    purpose: str | None,
    channel: str | None,
    campaign_id: str | None,
    now: datetime,
    ttl: timedelta,
    nonce: bytes | None = None,
) -> str:
    """Seal a token with the ring's current key; `nonce` is for tests only."""
    issued = _seconds(now)
    expires = _seconds(now + ttl)
    if expires <= issued:
        raise ValueError("ttl must be at least one second")
    payload = _TIMES.pack(issued, expires) + b"".join(
        _text(name, value)
        for name, value in (
            ("subject_id", subject_id),
            ("purpose", purpose),
            ("channel", channel),
            ("campaign_id", campaign_id),
        )
    )
    header = _header(keys.current_id)
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    sealed = AESGCM(keys.current).encrypt(nonce, payload, _DOMAIN + header)
    return _b64(header + nonce + sealed)


def open_token(keys: KeyRing, token: str, now: datetime) -> LinkClaims:
    """The claims of a token this ledger sealed and that has not expired, else LinkError."""
    raw = _unb64(token)
    if len(raw) < 2 or raw[0] != VERSION:
        raise LinkError("malformed")
    kid_len = raw[1]
    body = 2 + kid_len
    if len(raw) < body + NONCE_BYTES + TAG_BYTES:
        raise LinkError("malformed")
    try:
        kid = raw[2:body].decode("ascii")
    except UnicodeDecodeError:
        raise LinkError("malformed") from None
    key = keys.keys.get(kid)
    if key is None:
        raise LinkError("unknown_key")
    nonce, sealed = raw[body : body + NONCE_BYTES], raw[body + NONCE_BYTES :]
    try:
        payload = AESGCM(key).decrypt(nonce, sealed, _DOMAIN + raw[:body])
    except InvalidTag:
        raise LinkError("tampered") from None
    claims = _claims(payload, kid)
    if now >= claims.expires_at:
        raise LinkError("expired")
    return claims


def _header(kid: str) -> bytes:
    encoded = kid.encode("ascii")
    if not 1 <= len(encoded) <= _MAX_FIELD_BYTES:
        raise ValueError("key id must be 1-255 ASCII characters")
    return bytes((VERSION, len(encoded))) + encoded


def _seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("times must carry a UTC offset")
    value = int(moment.timestamp())
    if not 0 <= value < 2**32:
        raise ValueError("time out of the token's range (1970-2106)")
    return value


def _text(name: str, value: str | None) -> bytes:
    if value is None:
        return b"\x00"
    encoded = value.encode("utf-8")
    if not 1 <= len(encoded) <= _MAX_FIELD_BYTES:
        raise ValueError(f"{name} must be 1-{_MAX_FIELD_BYTES} bytes of UTF-8")
    return bytes((len(encoded),)) + encoded


def _claims(payload: bytes, kid: str) -> LinkClaims:
    """Parse a payload that passed authentication; a bad shape means a bug or a retired format."""
    try:
        issued, expires = _TIMES.unpack_from(payload)
        at = _TIMES.size
        texts: list[str | None] = []
        for _ in range(4):
            size = payload[at]
            texts.append(payload[at + 1 : at + 1 + size].decode("utf-8") if size else None)
            at += 1 + size
    except (struct.error, IndexError, UnicodeDecodeError):
        raise LinkError("malformed") from None
    subject_id, purpose, channel, campaign_id = texts
    if at != len(payload) or subject_id is None:
        raise LinkError("malformed")
    return LinkClaims(
        subject_id=subject_id,
        purpose=purpose,
        channel=channel,
        campaign_id=campaign_id,
        issued_at=datetime.fromtimestamp(issued, UTC),
        expires_at=datetime.fromtimestamp(expires, UTC),
        kid=kid,
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(token: str) -> bytes:
    """Strict base64url: only the alphabet, no padding, and only the canonical spelling."""
    if len(token) > MAX_TOKEN_CHARS or not _TOKEN_RE.fullmatch(token):
        raise LinkError("malformed")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise LinkError("malformed") from None
    if _b64(raw) != token:
        raise LinkError("malformed")  # spare low bits set: another spelling of the same bytes
    return raw
