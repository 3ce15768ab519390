"""Helpers of the purpose catalogue's integration tests: how many versions the log holds, the
catalogue file seeded, a purpose as the API answers it and a PUT body changing it."""

from __future__ import annotations

from typing import Any, Final

import asyncpg
import httpx

from services.config import Settings
from tests.conftest import wait_until

#: the purposes of services/rules/purposes.toml: the versions a first start seeds
FILE_PURPOSES: Final = 11


async def purpose_rows(settings: Settings) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        found: int = await conn.fetchval("SELECT count(*) FROM purpose_versions")
        return found
    finally:
        await conn.close()


async def journaled_purpose_events(settings: Settings) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        found: int = await conn.fetchval(
            "SELECT count(*) FROM journal WHERE subject_id LIKE 'purpose/%'"
        )
        return found
    finally:
        await conn.close()


async def seeded(settings: Settings) -> None:
    async def done() -> bool:
        return await purpose_rows(settings) == FILE_PURPOSES

    await wait_until(done, 30, "the catalogue file to be seeded")


async def current(api: httpx.AsyncClient, pid: str, at: str | None = None) -> dict[str, Any]:
    response = await api.get("/v1/purposes", params={"at": at} if at else {})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = {p["id"]: p for p in response.json()["purposes"]}[pid]
    return found


def put_body(purpose: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**{k: v for k, v in purpose.items() if k not in ("id", "version")}, **changes}
