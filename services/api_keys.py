"""API keys: their format, their stored hash, their scopes and the check of a presented key.

Pure (no I/O): services/api_key_store.py keeps the rows, services/api/guard.py asks here. A
key is `cl_<key id>_<secret>`: the id finds the stored row without a search and names the key
in `keys list` and the access log; the secret is 256 random bits. A key of another form (a
LEDGER_ADMIN_KEY chosen by hand) gets its id from a hash of the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

DECIDE: Final = "decide"
RECORD: Final = "record"
AUDIT: Final = "audit"
ADMIN: Final = "admin"
#: every scope; admin implies the others
SCOPES: Final = (DECIDE, RECORD, AUDIT, ADMIN)

PREFIX: Final = "cl_"
SECRET_BYTES: Final = 32
MIN_ADMIN_KEY: Final = 32
MAX_KEY: Final = 512
_FORMAT_RE: Final = re.compile(r"cl_([A-Za-z0-9]{1,40})_([A-Za-z0-9_-]+)")
#: RFC 6750 b64token: what a client can send after `Bearer `
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:-]{0,63}")
#: the id of a key not of the `cl_` form: never one a `cl_` key can have (those have no "-")
HASHED_ID_PREFIX: Final = "h-"


class KeyRefused(Exception):
    """The presented key does not authenticate; `reason` says why, never echoing the key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class KeyRow:
    """A stored key: never the key itself, only its hash."""

    key_id: str
    name: str
    scopes: frozenset[str]
    key_hash: bytes
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request: the key's id and name go into the access log."""

    key_id: str
    name: str
    scopes: frozenset[str]


def key_hash(key: str) -> bytes:
    """SHA-256 of the key. A key carries 256 random bits, so no salt or slow hash is needed:
    salts and stretching protect guessable passwords, and nobody can guess 2^256 keys from a
    stolen table. A fast hash keeps the check off the decision endpoint's latency."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def key_id(key: str) -> str:
    """The id a key names (`cl_<id>_...`), or for a key of another form one derived from a
    hash of it (domain-separated, so the id never reveals the stored hash)."""
    found = _FORMAT_RE.fullmatch(key)
    if found:
        return found.group(1)
    digest = hashlib.sha256(b"consent-ledger key id\x00" + key.encode("utf-8")).hexdigest()
    return HASHED_ID_PREFIX + digest[:16]


def format_key(kid: str, secret: str) -> str:
    return f"{PREFIX}{kid}_{secret}"


def new_key() -> tuple[str, str]:
    """A fresh (key id, key): a 64-bit random id and a 256-bit random secret."""
    kid = secrets.token_hex(8)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()
    return kid, format_key(kid, secret)


def admin_key_problem(key: str) -> str | None:
    """What makes a hand-set LEDGER_ADMIN_KEY unusable, or None: it must be sendable as a
    bearer token and long enough to be a random secret, not a password."""
    if not _TOKEN_RE.fullmatch(key) or len(key) > MAX_KEY:
        return "must be a bearer token: letters, digits and - . _ ~ + / (then = padding)"
    if len(key) < MIN_ADMIN_KEY:
        return f"must be at least {MIN_ADMIN_KEY} random characters"
    return None


def name_problem(name: str) -> str | None:
    if not _NAME_RE.fullmatch(name):
        return "must be 1-64 letters, digits, spaces and . _ : - (starting with a letter or digit)"
    return None


def parse_scopes(names: Iterable[str]) -> frozenset[str]:
    """The scopes named; ValueError naming an unknown one (or none at all)."""
    chosen = frozenset(names)
    unknown = sorted(chosen - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; accepted: {', '.join(SCOPES)}")
    if not chosen:
        raise ValueError(f"name at least one scope: {', '.join(SCOPES)}")
    return chosen


def ordered(scopes: Collection[str]) -> list[str]:
    """Scopes in the order of SCOPES, for display and storage."""
    return [s for s in SCOPES if s in scopes]


def permits(scopes: Collection[str], needed: str) -> bool:
    return needed in scopes or ADMIN in scopes


def bearer_key(header: str | None) -> str:
    """The key of an `Authorization: Bearer <key>` header (the scheme is case-insensitive)."""
    if header is None or not header.strip():
        raise KeyRefused("send an API key: Authorization: Bearer <key>")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise KeyRefused("the Authorization header must be `Bearer <key>`")
    if len(token) > MAX_KEY or not _TOKEN_RE.fullmatch(token):
        raise KeyRefused("the API key is not valid")
    return token


def authenticate(header: str | None, rows: Mapping[str, KeyRow]) -> Caller:
    """The caller a header's key belongs to; KeyRefused for a missing, unknown or revoked key.
    The hashes are compared in constant time."""
    key = bearer_key(header)
    row = rows.get(key_id(key))
    presented = key_hash(key)
    if row is None or not hmac.compare_digest(row.key_hash, presented):
        raise KeyRefused("the API key is not valid")
    if row.revoked_at is not None:
        raise KeyRefused("the API key is revoked")
    return Caller(row.key_id, row.name, row.scopes)
