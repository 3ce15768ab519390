"""Publishable site keys (pure): `pk_<site id>_<secret>`, meant to sit in a page's source.

A site key can do nothing but record and read its own visitors' choices, for its own origins
and purposes (POST/GET /v1/collect/consents); the guard (services/api/guard.py) refuses it on
every other route. It is stored like an API key, as an HMAC-SHA-256 under the server's
LEDGER_API_KEY_HASH_KEY (services/identity/api_keys.py `key_hash`), so a revoked key cannot
be told from a made-up one without the secrets file.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Final

from projections.sites import SiteRow
from services.identity.api_keys import MAX_KEY, KeyRefused, key_hash

PREFIX: Final = "pk_"
SECRET_BYTES: Final = 32
_FORMAT_RE: Final = re.compile(r"pk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


def new_site_key() -> tuple[str, str]:
    """A fresh (site id, key): a 64-bit random id and a 256-bit random secret."""
    site_id = secrets.token_hex(8)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()
    return site_id, f"{PREFIX}{site_id}_{secret}"


def is_site_key(token: str) -> bool:
    """Whether a bearer token is meant as a site key (whatever its validity)."""
    return token.startswith(PREFIX)


def site_id_of(key: str) -> str | None:
    found = _FORMAT_RE.fullmatch(key) if len(key) <= MAX_KEY else None
    return found.group(1) if found else None


def verify_site_key(key: str, sites: Mapping[str, SiteRow], hash_key: bytes) -> SiteRow:
    """The site `key` belongs to; KeyRefused for a malformed, unknown or revoked key (the
    hashes compared in constant time)."""
    site_id = site_id_of(key)
    row = sites.get(site_id) if site_id else None
    digest = key_hash(key[:MAX_KEY], hash_key)
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise KeyRefused("the site key is not valid")
    if row.revoked_at is not None:
        raise KeyRefused("the site key is revoked", row.site_id)
    return row
