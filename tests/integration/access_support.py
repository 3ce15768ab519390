"""Helpers of the access-control tests: keys made in the real database, and clients that send
a chosen key or none."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import httpx

from services.config import Settings
from services.identity.api_key_store import create_key
from tests.conftest import HASH_KEY, wait_until

PROBLEM = "application/problem+json"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def client_of(
    api: httpx.AsyncClient, key: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same API that sends `key`, or no Authorization header at all."""
    headers = bearer(key) if key else {}
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30, headers=headers) as client:
        yield client


async def accepted(api: httpx.AsyncClient, key: str) -> bool:
    """True once the API knows the key (any valid key may read the catalogue)."""
    return (await api.get("/v1/purposes", headers=bearer(key))).status_code == 200


async def made_key(
    settings: Settings, api: httpx.AsyncClient, *scopes: str, name: str = "crm"
) -> tuple[str, str]:
    """A new key with `scopes`, once the running API accepts it: (key id, key)."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        key, row = await create_key(conn, name, frozenset(scopes), HASH_KEY)
    finally:
        await conn.close()

    async def known() -> bool:
        return await accepted(api, key)

    await wait_until(known, settings.api_key_refresh_s + 5, f"the API to accept key {row.key_id}")
    return row.key_id, key
