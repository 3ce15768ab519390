"""Link tokens: the opaque part of an unsubscribe or preference URL (pure; the clock is passed).

A token is AES-256-GCM sealed, so it is unforgeable and shows nothing of what it carries. Its
clear prefix is a version byte and the id of the key that sealed it, both bound as associated
data; a key ring of several keys therefore opens old links while the first key seals new ones,
and a key is retired once the links it sealed have expired.

Each token has a kind, sealed in the payload and bound in the associated data: an unsubscribe
token opens only /u/ (it can withdraw and object, never grant), a preference token only /p/
(it may grant). The List-Unsubscribe URL is seen by mailbox providers and by anyone a message
is forwarded to, so it must never open the page that grants consent. The kind is not in the
clear: both kinds look alike, and one presented as the other fails like a tampered token.

    token = base64url(version | len(kid) | kid | nonce[12] | AES-GCM(payload) + tag[16])
    payload = kind u8 | issued_at u32 | expires_at u32 | subject_id | purpose | channel
              | campaign_id   (each text 1 length byte + UTF-8; length 0 is "none")
    associated data = "consent-ledger/link/" kind-name | version | len(kid) | kid

Version 1 tokens (before kinds) had no kind byte and the associated data "consent-ledger/link"
| header; they still open as unsubscribe tokens, never as preference tokens.

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
from typing import Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.secrets import KeyRing

VERSION: Final = 2
#: tokens sealed before links had a kind: they open as unsubscribe tokens only
LEGACY_VERSION: Final = 1
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
MAX_TOKEN_CHARS: Final = 1024
#: the most UTF-8 bytes a text field of the token (the campaign id, say) can hold
MAX_FIELD_BYTES: Final = 255
_DOMAIN: Final = b"consent-ledger/link"
_TIMES: Final = struct.Struct(">II")
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]+")

LinkKind = Literal["unsubscribe", "preferences"]
#: /u/: withdraw (and object to all direct marketing); never grants
UNSUBSCRIBE: Final[LinkKind] = "unsubscribe"
#: /p/: the preference page, which may grant
PREFERENCES: Final[LinkKind] = "preferences"
_KIND_BYTES: Final[dict[LinkKind, int]] = {UNSUBSCRIBE: 1, PREFERENCES: 2}
_KINDS: Final[dict[int, LinkKind]] = {byte: kind for kind, byte in _KIND_BYTES.items()}
#: what any unusable link answers: never which check failed
GENERIC: Final = "this link is not valid"


class LinkError(ValueError):
    """The token cannot be used. `str()` is the same for every cause; `why` is for logs only."""

    def __init__(self, why: str) -> None:
        super().__init__(GENERIC)
        self.why = why


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a token says: which page it opens, whose link, for which purpose and channel
    (None: any), until when."""

    kind: LinkKind
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
    kind: LinkKind,
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
    kind_byte = _KIND_BYTES[kind]
    payload = (
        bytes((kind_byte,))
        + _TIMES.pack(issued, expires)
        + b"".join(
            _text(name, value)
            for name, value in (
                ("subject_id", subject_id),
                ("purpose", purpose),
                ("channel", channel),
                ("campaign_id", campaign_id),
            )
        )
    )
    header = _header(keys.current_id)
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    sealed = AESGCM(keys.current).encrypt(nonce, payload, _associated(kind, header))
    return _b64(header + nonce + sealed)


def open_token(keys: KeyRing, token: str, now: datetime, *, kind: LinkKind) -> LinkClaims:
    """The claims of a token of `kind` this ledger sealed and that has not expired, else
    LinkError (`why` is "wrong_kind" for a token of the other kind)."""
    raw = _unb64(token)
    if len(raw) < 2 or raw[0] not in (VERSION, LEGACY_VERSION):
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
    header = raw[:body]
    if raw[0] == LEGACY_VERSION:
        payload = _decrypt(key, nonce, sealed, _DOMAIN + header)
        claims = _claims(bytes((_KIND_BYTES[UNSUBSCRIBE],)) + payload, kid)
    else:
        try:
            payload = _decrypt(key, nonce, sealed, _associated(kind, header))
        except LinkError:
            other = PREFERENCES if kind == UNSUBSCRIBE else UNSUBSCRIBE
            _decrypt(key, nonce, sealed, _associated(other, header))  # "tampered" if not
            raise LinkError("wrong_kind") from None
        claims = _claims(payload, kid)
    if claims.kind != kind:
        raise LinkError("wrong_kind")
    if now >= claims.expires_at:
        raise LinkError("expired")
    return claims


def _decrypt(key: bytes, nonce: bytes, sealed: bytes, associated: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(nonce, sealed, associated)
    except InvalidTag:
        raise LinkError("tampered") from None


def _associated(kind: LinkKind, header: bytes) -> bytes:
    return _DOMAIN + b"/" + kind.encode("ascii") + header


def _header(kid: str) -> bytes:
    encoded = kid.encode("ascii")
    if not 1 <= len(encoded) <= MAX_FIELD_BYTES:
        raise ValueError(f"key id must be 1-{MAX_FIELD_BYTES} ASCII characters")
    return bytes((VERSION, len(encoded))) + encoded


def _seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("times must carry a UTC offset")
    value = int(moment.timestamp())
    if not 0 <= value < 2**32:
        raise ValueError("time out of the token's range (1970-2106)")
    return value


def field_problem(value: str) -> str | None:
    """Why a text cannot be sealed into a token field (None: it can)."""
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    if not 1 <= len(encoded) <= MAX_FIELD_BYTES:
        return f"must be 1-{MAX_FIELD_BYTES} bytes of UTF-8"
    return None


def _text(name: str, value: str | None) -> bytes:
    if value is None:
        return b"\x00"
    problem = field_problem(value)
    if problem:
        raise ValueError(f"{name} {problem}")
    encoded = value.encode("utf-8")
    return bytes((len(encoded),)) + encoded


def _claims(payload: bytes, kid: str) -> LinkClaims:
    """Parse a payload that passed authentication; a bad shape means a bug or a retired format."""
    try:
        kind = _KINDS[payload[0]]
        issued, expires = _TIMES.unpack_from(payload, 1)
        at = 1 + _TIMES.size
        texts: list[str | None] = []
        for _ in range(4):
            size = payload[at]
            texts.append(payload[at + 1 : at + 1 + size].decode("utf-8") if size else None)
            at += 1 + size
    except (struct.error, IndexError, KeyError, UnicodeDecodeError):
        raise LinkError("malformed") from None
    subject_id, purpose, channel, campaign_id = texts
    if at != len(payload) or subject_id is None:
        raise LinkError("malformed")
    return LinkClaims(
        kind=kind,
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
