"""Link tokens: the opaque part of an unsubscribe or preference URL (pure; the clock is passed),
sealed so that nobody can forge one or read what it carries.

Design: docs/developers/design/links.md
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV

from services.identity.secrets import KeyRing
from services.rules.languages import language_problem

VERSION: Final = 4
#: tokens without a language: the payload of VERSION without its last text field
NO_LANGUAGE_VERSION: Final = 3
#: tokens with a kind but no link id nor address, the issue time in whole seconds
KIND_VERSION: Final = 2
#: tokens sealed before links had a kind: they open as unsubscribe tokens only
LEGACY_VERSION: Final = 1
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
LINK_ID_BYTES: Final = 16
#: bytes of the blind index sealed as a link's address
ADDRESS_BYTES: Final = 8
MAX_TOKEN_CHARS: Final = 1024
#: the most UTF-8 bytes a text field of the token (the campaign id, say) can hold
MAX_FIELD_BYTES: Final = 255
_VERSIONS: Final = (VERSION, NO_LANGUAGE_VERSION, KIND_VERSION, LEGACY_VERSION)
#: the versions sealed with AES-GCM-SIV, whose payload starts with a link id and an address
_SIV_VERSIONS: Final = (VERSION, NO_LANGUAGE_VERSION)
_DOMAIN: Final = b"consent-ledger/link"
_TIMES: Final = struct.Struct(">II")
_TIMES_V3: Final = struct.Struct(">QI")
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]+")

LinkKind = Literal["unsubscribe", "preferences", "confirm"]
#: /u/: withdraw (and object to all direct marketing); never grants
UNSUBSCRIBE: Final[LinkKind] = "unsubscribe"
#: /p/: the preference page, which may grant
PREFERENCES: Final[LinkKind] = "preferences"
#: /c/: confirms one sign-up (double opt-in); its link id is the ConsentRequested event's id
CONFIRM: Final[LinkKind] = "confirm"
#: the byte each kind is sealed as; a new kind takes the next byte (never reuse one)
_KIND_BYTES: Final[dict[LinkKind, int]] = {UNSUBSCRIBE: 1, PREFERENCES: 2, CONFIRM: 3}
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
    (None: any), until when; its id, and the address it was issued for (None: issued by
    subject id, or sealed before links named one)."""

    kind: LinkKind
    subject_id: str
    purpose: str | None
    channel: str | None
    campaign_id: str | None
    issued_at: datetime
    expires_at: datetime
    kid: str = ""
    link_id: str = ""
    address: bytes | None = None
    version: int = VERSION
    #: the language the link's pages speak (None: sealed without one, or before links had one)
    language: str | None = None


def new_link_id() -> bytes:
    return os.urandom(LINK_ID_BYTES)


def fingerprint(token: str) -> str:
    """The id of a link sealed before links had one: the first 16 hex digits of the SHA-256 of
    its token (what the events of the preference page named it by before)."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()[:16]


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
    link_id: bytes | None = None,
    address: bytes | None = None,
    language: str | None = None,
    nonce: bytes | None = None,
) -> str:
    """Seal a token with the ring's current key. `link_id` defaults to a random one (pass
    `new_link_id()` to know it); `address` is the blind index of the address it goes to (its
    first ADDRESS_BYTES are sealed); `language` is the one its pages speak (one of the pages'
    LANGUAGES); `nonce` is for tests only."""
    problem = language_problem(language) if language is not None else None
    if problem:
        raise ValueError(f"language {problem}")
    issued = _microseconds(now)
    expires = _seconds(now + ttl)
    if expires <= issued // 1_000_000:
        raise ValueError("ttl must be at least one second")
    link_id = new_link_id() if link_id is None else link_id
    if len(link_id) != LINK_ID_BYTES:
        raise ValueError(f"link_id must be {LINK_ID_BYTES} bytes")
    tag = b"" if address is None else address[:ADDRESS_BYTES]
    if address is not None and len(tag) != ADDRESS_BYTES:
        raise ValueError(f"address must be a blind index of at least {ADDRESS_BYTES} bytes")
    payload = (
        bytes((_KIND_BYTES[kind],))
        + _TIMES_V3.pack(issued, expires)
        + link_id
        + bytes((len(tag),))
        + tag
        + b"".join(
            _text(name, value)
            for name, value in (
                ("subject_id", subject_id),
                ("purpose", purpose),
                ("channel", channel),
                ("campaign_id", campaign_id),
                ("language", language),
            )
        )
    )
    header = _header(keys.current_id)
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    sealed = AESGCMSIV(keys.current).encrypt(nonce, payload, _associated(kind, header))
    return _b64(header + nonce + sealed)


def open_token(
    keys: KeyRing,
    token: str,
    now: datetime,
    *,
    kind: LinkKind,
    max_age: timedelta | None = None,
) -> LinkClaims:
    """The claims of a token of `kind` this ledger sealed, that has not expired and (with
    `max_age`) was issued less than `max_age` ago, else LinkError (`why` is "wrong_kind" for a
    token of the other kind, "expired" for either time)."""
    raw = _unb64(token)
    if len(raw) < 2 or raw[0] not in _VERSIONS:
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
    cipher = AESGCMSIV(key) if raw[0] in _SIV_VERSIONS else AESGCM(key)
    if raw[0] == LEGACY_VERSION:
        payload = _decrypt(cipher, nonce, sealed, _DOMAIN + header)
        claims = _claims(bytes((_KIND_BYTES[UNSUBSCRIBE],)) + payload, kid, token, LEGACY_VERSION)
    else:
        try:
            payload = _decrypt(cipher, nonce, sealed, _associated(kind, header))
        except LinkError:
            _decrypt_as_another_kind(cipher, nonce, sealed, kind, header)
            raise LinkError("wrong_kind") from None
        claims = _claims(payload, kid, token, raw[0])
    if claims.kind != kind:
        raise LinkError("wrong_kind")
    if now >= claims.expires_at or (max_age is not None and now >= claims.issued_at + max_age):
        raise LinkError("expired")
    return claims


def _decrypt(cipher: AESGCM | AESGCMSIV, nonce: bytes, sealed: bytes, associated: bytes) -> bytes:
    try:
        return cipher.decrypt(nonce, sealed, associated)
    except InvalidTag:
        raise LinkError("tampered") from None


def _decrypt_as_another_kind(
    cipher: AESGCM | AESGCMSIV, nonce: bytes, sealed: bytes, kind: LinkKind, header: bytes
) -> None:
    """Return if the token is one of another kind, else raise LinkError("tampered")."""
    for other in _KIND_BYTES:
        if other != kind:
            try:
                _decrypt(cipher, nonce, sealed, _associated(other, header))
            except LinkError:
                continue
            return
    raise LinkError("tampered")


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


def _microseconds(moment: datetime) -> int:
    """`moment` in whole microseconds since the epoch, computed without float rounding."""
    _seconds(moment)  # the same range as the expiry
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


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


def _claims(payload: bytes, kid: str, token: str, version: int) -> LinkClaims:
    """Parse a payload that passed authentication; a bad shape means a bug or a retired format."""
    try:
        kind = _KINDS[payload[0]]
        link_id, address = fingerprint(token), None
        if version in _SIV_VERSIONS:
            issued_us, expires = _TIMES_V3.unpack_from(payload, 1)
            at = 1 + _TIMES_V3.size
            link_id = payload[at : at + LINK_ID_BYTES].hex()
            at += LINK_ID_BYTES
            size = payload[at]
            if size not in (0, ADDRESS_BYTES):
                raise LinkError("malformed")
            address = payload[at + 1 : at + 1 + size] or None
            at += 1 + size
            issued_at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=issued_us)
        else:
            issued, expires = _TIMES.unpack_from(payload, 1)
            at = 1 + _TIMES.size
            issued_at = datetime.fromtimestamp(issued, UTC)
        texts: list[str | None] = []
        for _ in range(5 if version == VERSION else 4):
            size = payload[at]
            texts.append(payload[at + 1 : at + 1 + size].decode("utf-8") if size else None)
            at += 1 + size
    except (struct.error, IndexError, KeyError, UnicodeDecodeError, OverflowError):
        raise LinkError("malformed") from None
    subject_id, purpose, channel, campaign_id = texts[:4]
    if at != len(payload) or subject_id is None:
        raise LinkError("malformed")
    return LinkClaims(
        kind=kind,
        subject_id=subject_id,
        purpose=purpose,
        channel=channel,
        campaign_id=campaign_id,
        issued_at=issued_at,
        expires_at=datetime.fromtimestamp(expires, UTC),
        kid=kid,
        link_id=link_id,
        address=address,
        version=version,
        language=texts[4] if len(texts) > 4 else None,
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
