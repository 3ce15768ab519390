"""Staff sessions of the auditor's pages: the session id, its stored hash, its CSRF token and
when a session has ended. Pure (no I/O): services/identity/session_store.py keeps the rows,
services/http/staff_auth.py asks here on every request that carries the cookie.

A session id is 256 random bits; only its SHA-256 is stored, so the table cannot be replayed
as cookies. The CSRF token of a session is an HMAC of a fixed label under the session id: it
needs no storage, changes with every session and cannot be made without the cookie.

Design: docs/security/staff-sessions.md
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from services.identity.api_keys import AUDIT, permits

#: the cookie that carries the session id (Path=/ so the pages' download links carry it too)
SESSION_COOKIE: Final = "ledger_staff_session"
#: the cookie the sign-in form's own CSRF token is doubled in, before any session exists
SIGN_IN_COOKIE: Final = "ledger_staff_sign_in"
#: the form field every form posted inside the audit pages carries
CSRF_FIELD: Final = "csrf_token"
#: bytes of randomness of a session id and a sign-in token
TOKEN_BYTES: Final = 32
#: the longest cookie or form token accepted (a token is 43 characters); checked before use
MAX_TOKEN: Final = 64
#: the prefix of a Secure cookie's name: the browser then refuses it without Secure, with a
#: Domain, or with a Path other than / (so a sibling host cannot plant or shadow it)
SECURE_PREFIX: Final = "__Host-"
#: a session's CSRF token: an HMAC-SHA-256 in lowercase hex
CSRF_LENGTH: Final = 64
_HEX: Final = frozenset("0123456789abcdef")

#: why a session ended (staff_sessions.end_reason)
SIGNED_OUT: Final = "signed_out"
IDLE: Final = "idle"
ABSOLUTE: Final = "absolute"
KEY_REVOKED: Final = "key_revoked"
END_REASONS: Final = (SIGNED_OUT, IDLE, ABSOLUTE, KEY_REVOKED)

_CSRF_LABEL: Final = b"consent-ledger staff csrf v1"


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A stored session: never the id itself, only its hash."""

    session_hash: bytes
    key_id: str
    created_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None
    end_reason: str | None


@dataclass(frozen=True, slots=True)
class SessionKey:
    """The key behind a session as its row in `api_keys` says now (read with the session)."""

    name: str
    scopes: frozenset[str]
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long a session lives: `idle` since its last request, `absolute` since sign-in."""

    idle: timedelta
    absolute: timedelta


def new_token() -> str:
    """A fresh session id or sign-in token: 256 random bits, base64url."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def well_formed(token: str | None) -> bool:
    """Whether a cookie or form value can be a token at all (length first, then characters)."""
    if token is None or not 0 < len(token) <= MAX_TOKEN:
        return False
    return all(c.isascii() and (c.isalnum() or c in "-_") for c in token)


def session_hash(session_id: str) -> bytes:
    """What the table stores of a session id. The id carries 256 random bits, so a fast hash
    without a key cannot be searched back to it."""
    return hashlib.sha256(session_id.encode("ascii")).digest()


def csrf_token(session_id: str) -> str:
    """The CSRF token of a session: put in every form the session's pages render."""
    digest = hmac.new(session_id.encode("ascii"), _CSRF_LABEL, hashlib.sha256).digest()
    return digest.hex()


def cookie_name(name: str, secure: bool) -> str:
    """The name a cookie is set and read under: `__Host-` prefixed when it is Secure."""
    return SECURE_PREFIX + name if secure else name


def csrf_matches(session_id: str, presented: str | None) -> bool:
    """Whether a posted form carries the session's CSRF token: exactly the token's format
    (64 lowercase hex, length first) and then compared in constant time."""
    if presented is None or len(presented) != CSRF_LENGTH or not _HEX.issuperset(presented):
        return False
    return hmac.compare_digest(csrf_token(session_id), presented)


def ended_because(row: SessionRow, now: datetime, timeouts: Timeouts) -> str | None:
    """Why the session cannot be used at `now`, or None while it is live: ended already, idle
    for the idle timeout since its last request, or older than the absolute timeout."""
    if row.ended_at is not None:
        return row.end_reason or SIGNED_OUT
    if now - row.created_at >= timeouts.absolute:
        return ABSOLUTE
    if now - row.last_seen_at >= timeouts.idle:
        return IDLE
    return None


def session_end(row: SessionRow, key: SessionKey, now: datetime, timeouts: Timeouts) -> str | None:
    """Why the session cannot be used at `now`, or None while it is live: a timeout or an end
    (`ended_because`), else its key revoked or no longer of scope audit (or admin)."""
    ended = ended_because(row, now, timeouts)
    if ended is None and (key.revoked_at is not None or not permits(key.scopes, AUDIT)):
        return KEY_REVOKED
    return ended
