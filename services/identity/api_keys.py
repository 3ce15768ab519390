"""API keys: their format, their stored hash, their scopes and the check of a presented key.

Pure (no I/O): services/identity/api_key_store.py keeps the rows, services/api/guard.py asks here. A
key is `cl_<key id>_<secret>`: the id finds the stored row without a search and names the key
in `keys list` and the access log; the secret is 256 random bits. A key of another form (a
LEDGER_ADMIN_KEY chosen by hand) gets its id from a hash of the key. The stored hash is an
HMAC-SHA-256 under the server's LEDGER_API_KEY_HASH_KEY; rows written before that are plain
SHA-256 until their key is next used (services/identity/api_key_store.py upgrades them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import math
import re
import secrets
import string
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

DECIDE: Final = "decide"
RECORD: Final = "record"
#: publish privacy-notice versions (a material one outdates consents)
NOTICES: Final = "notices"
#: take the steps of a rights request after its receipt: verify, extend, complete, refuse
REQUESTS: Final = "requests"
AUDIT: Final = "audit"
#: pull a campaign's audience and the suppression list with decrypted addresses
AUDIENCE: Final = "audience"
ADMIN: Final = "admin"
#: every scope; admin implies the others
SCOPES: Final = (DECIDE, RECORD, NOTICES, REQUESTS, AUDIT, AUDIENCE, ADMIN)

#: how a row's key_hash was computed: HMAC-SHA-256 under the hash key, or (rows stored before
#: the hash key existed) plain SHA-256, upgraded on the key's next successful use
KEYED: Final = "hmac-sha256"
LEGACY: Final = "sha256"
#: where a row came from: `keys create`, LEDGER_ADMIN_KEY, or `up`'s development key
FROM_COMMAND: Final = "keys create"
FROM_ADMIN_VARIABLE: Final = "LEDGER_ADMIN_KEY"
FROM_DEV_KEY: Final = "up"
ORIGINS: Final = (FROM_COMMAND, FROM_ADMIN_VARIABLE, FROM_DEV_KEY)

PREFIX: Final = "cl_"
SECRET_BYTES: Final = 32
#: random bits a hand-set admin key must carry, as many as a generated key
MIN_ADMIN_KEY_BITS: Final = 256
#: the most characters one run of repeated or consecutive ones may have (`aaaa`, `abcd`)
MAX_RUN: Final = 11
#: the fewest different characters a secret may use
MIN_DISTINCT: Final = 8
MAX_KEY: Final = 512
_FORMAT_RE: Final = re.compile(r"cl_([A-Za-z0-9]{1,40})_([A-Za-z0-9_-]+)")
#: RFC 6750 b64token: what a client can send after `Bearer `
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:-]{0,63}")
#: the id of a key not of the `cl_` form: never one a `cl_` key can have (those have no "-")
HASHED_ID_PREFIX: Final = "h-"


class KeyRefused(Exception):
    """The presented key does not authenticate; `reason` says why, never echoing the key.
    `key_id` names the stored key it claimed to be, when there is one (a wrong secret, a
    revoked key): never an id only the presenter knows."""

    def __init__(self, reason: str, key_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key_id = key_id


@dataclass(frozen=True, slots=True)
class KeyRow:
    """A stored key: never the key itself, only its hash."""

    key_id: str
    name: str
    scopes: frozenset[str]
    key_hash: bytes
    created_at: datetime
    revoked_at: datetime | None
    hash_kind: str = KEYED
    origin: str = FROM_COMMAND


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request: the key's id and name go into the access log."""

    key_id: str
    name: str
    scopes: frozenset[str]


def key_hash(key: str, hash_key: bytes) -> bytes:
    """HMAC-SHA-256 of the key under the server's hash key. A key carries 256 random bits, so
    no salt or slow hash is needed, and a fast one keeps the check off the decision endpoint's
    latency; the server key means a stolen `api_keys` table cannot even be searched offline
    for a weak hand-chosen key without the secrets file too."""
    return hmac.new(hash_key, key.encode("utf-8"), hashlib.sha256).digest()


def legacy_key_hash(key: str) -> bytes:
    """SHA-256 of the key: how rows were stored before the hash key existed."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def stored_hash(row: KeyRow, key: str, hash_key: bytes) -> bytes:
    """The hash of `key` computed the way `row`'s was."""
    return legacy_key_hash(key) if row.hash_kind == LEGACY else key_hash(key, hash_key)


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


#: the alphabets a secret is measured against, smallest first: (characters, bits each); any
#: other secret counts 6 bits a character (base64)
_ALPHABETS: Final = (
    (frozenset(string.digits), math.log2(10)),
    (frozenset(string.digits + "abcdef"), 4.0),
    (frozenset(string.digits + "ABCDEF"), 4.0),
)
_BASE64_BITS: Final = 6.0
#: what a LEDGER_ADMIN_KEY must be, in the error message
ADMIN_KEY_RULE: Final = (
    "at least 256 random bits: a key `cl_<name>_<secret>` (or a bare secret) whose secret is"
    " at least 43 base64url characters, 64 hex digits or 78 decimal digits, for example"
    " cl_ops_$(openssl rand -hex 32)"
)


def secret_bits(secret: str) -> float:
    """The most random bits `secret` can carry: its length times the bits of one character
    of the smallest alphabet it is written in (decimal or hex digits, else base64)."""
    chars = set(secret)
    bits = next((b for alphabet, b in _ALPHABETS if chars <= alphabet), _BASE64_BITS)
    return len(secret) * bits


def shortest_period(text: str) -> int:
    """The length of the shortest block `text` repeats (`abcabca` -> 3; its length if none),
    by the prefix function: linear in the length."""
    border = [0] * len(text)
    for i in range(1, len(text)):
        k = border[i - 1]
        while k and text[i] != text[k]:
            k = border[k - 1]
        border[i] = k + (text[i] == text[k])
    return len(text) - border[-1] if text else 0


def longest_run(text: str) -> int:
    """The most characters in one run where each repeats the one before, or follows it by the
    same step of one code point: `aaaa`, `abcd`, `4321`."""
    best = run = min(1, len(text))
    step: int | None = None
    for before, after in itertools.pairwise(text):
        diff = ord(after) - ord(before)
        if abs(diff) > 1:
            run, step = 1, None
        else:
            run, step = (run + 1 if diff == step or step is None else 2), diff
        best = max(best, run)
    return best


def randomness_problem(secret: str) -> str | None:
    """Why `secret` cannot carry MIN_ADMIN_KEY_BITS random bits, or None. Randomness cannot be
    measured: this counts what its characters could carry and refuses what is plainly not
    random (a repeated block, a long run, few different characters). A secret from `openssl
    rand` or `secrets.token_urlsafe` of the required length fails it with odds below 1e-8."""
    bits = secret_bits(secret)
    if bits < MIN_ADMIN_KEY_BITS:
        return f"carries at most {bits:.0f} random bits ({len(secret)} characters)"
    period = shortest_period(secret)
    if period <= len(secret) // 2:
        block = "one character" if period == 1 else f"a block of {period} characters"
        return f"repeats {block}"
    run = longest_run(secret)
    if run > MAX_RUN:
        return f"has a run of {run} repeated or consecutive characters"
    if len(set(secret)) < MIN_DISTINCT:
        return f"uses only {len(set(secret))} different characters"
    return None


def admin_key_problem(key: str) -> str | None:
    """What makes a hand-set LEDGER_ADMIN_KEY unusable, or None: it must be sendable as a
    bearer token and carry at least MIN_ADMIN_KEY_BITS random bits (in the secret of a
    `cl_<id>_<secret>` key, else in the whole key, padding aside)."""
    if not _TOKEN_RE.fullmatch(key) or len(key) > MAX_KEY:
        return "must be a bearer token: letters, digits and - . _ ~ + / (then = padding)"
    found = _FORMAT_RE.fullmatch(key)
    problem = randomness_problem(found.group(2) if found else key.rstrip("="))
    if problem:
        return f"must carry {ADMIN_KEY_RULE}; {'its secret' if found else 'it'} {problem}"
    return None


def unguessable(key: str) -> bool:
    """Whether a key carries at least MIN_ADMIN_KEY_BITS random bits, as every key `keys
    create` makes does: guessing one online is hopeless, so a limit on refused keys has nothing
    to hold it back from."""
    return admin_key_problem(key) is None


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


def verify_key(key: str, rows: Mapping[str, KeyRow], hash_key: bytes) -> KeyRow:
    """The stored row `key` matches; KeyRefused for an unknown or revoked key (`key_id` set
    when the id names a stored key). The hashes are compared in constant time."""
    row = rows.get(key_id(key))
    if row is None:
        key_hash(key, hash_key)  # as much work as a known id: timing tells nothing
        raise KeyRefused("the API key is not valid")
    if not hmac.compare_digest(row.key_hash, stored_hash(row, key, hash_key)):
        raise KeyRefused("the API key is not valid", row.key_id)
    if row.revoked_at is not None:
        raise KeyRefused("the API key is revoked", row.key_id)
    return row


def authenticate(header: str | None, rows: Mapping[str, KeyRow], hash_key: bytes) -> Caller:
    """The caller a header's key belongs to; KeyRefused for a missing, unknown or revoked key."""
    row = verify_key(bearer_key(header), rows, hash_key)
    return Caller(row.key_id, row.name, row.scopes)


def forgotten_admin_keys(rows: Iterable[KeyRow], current: str | None) -> list[str]:
    """The ids of keys registered from LEDGER_ADMIN_KEY that are still valid but are not the
    current one (`current`: its id, None when the variable is unset). Changing the variable
    does not revoke the key it held before, so an operator who "rotated" that way left it
    working."""
    return [
        row.key_id
        for row in rows
        if row.origin == FROM_ADMIN_VARIABLE and row.revoked_at is None and row.key_id != current
    ]
