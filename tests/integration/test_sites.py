"""Registering websites against the real servers: POST/GET/DELETE /v1/sites and
`consent-ledger sites create|list|revoke`, origins refused by field, and a revoked site's key
refused by the running API."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import asyncpg
import httpx
import pytest

from services.config import Settings
from services.identity.api_keys import key_hash
from tests.conftest import HASH_KEY, wait_until

pytestmark = pytest.mark.integration

ORIGIN = "https://shop.example.com"
PATH = "/v1/collect/consents"


async def sites_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.as_environment()}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli.main", "sites", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def banner(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Origin": ORIGIN}


async def records(api: httpx.AsyncClient, key: str) -> int:
    body = {"device_id": str(uuid.uuid4()), "choices": {"cookies_analytics": True}}
    return (await api.post(PATH, json=body, headers=banner(key))).status_code


async def test_the_api_registers_lists_and_revokes_a_site(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    made = await api.post(
        "/v1/sites", json={"name": "shop", "origins": [ORIGIN, "HTTPS://Shop.Example.com:443"]}
    )
    assert made.status_code == 201, made.text
    site = made.json()
    assert site["origins"] == [ORIGIN]
    assert site["purposes"] == ["cookies_analytics", "cookies_marketing"]
    assert site["key"].startswith(f"pk_{site['site_id']}_")
    stored = await db.fetchval("SELECT key_hash FROM sites WHERE site_id = $1", site["site_id"])
    assert bytes(stored) == key_hash(site["key"], HASH_KEY)
    listed = (await api.get("/v1/sites")).json()["sites"]
    assert [s["site_id"] for s in listed] == [site["site_id"]] and "key" not in listed[0]
    assert await records(api, site["key"]) == 201
    revoked = await api.delete(f"/v1/sites/{site['site_id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert await records(api, site["key"]) == 401
    assert (await api.delete("/v1/sites/0000000000000000")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "origins": ["https://www.example.com/path"]}, "origins[0]"),
        ({"name": "x", "origins": ["http://www.example.com"]}, "origins[0]"),
        ({"name": "x", "origins": [ORIGIN, "ftp://x.example"]}, "origins[1]"),
        ({"name": "x", "origins": []}, "origins"),
        ({"name": "x", "origins": [ORIGIN], "purposes": ["newsletter"]}, "purposes[0]"),
        ({"name": "", "origins": [ORIGIN]}, "name"),
    ],
)
async def test_a_bad_registration_is_a_422_naming_the_field(
    api: httpx.AsyncClient, db: asyncpg.Connection, body: dict[str, object], field: str
) -> None:
    answer = await api.post("/v1/sites", json=body)
    assert answer.status_code == 422, answer.text
    assert field in [e["field"] for e in answer.json()["errors"]]
    assert await db.fetchval("SELECT count(*) FROM sites") == 0


async def test_loopback_http_origins_only_where_the_public_url_is_loopback(
    api: httpx.AsyncClient,
) -> None:
    # the test API's public URL is its own 127.0.0.1 address
    made = await api.post("/v1/sites", json={"name": "dev", "origins": ["http://localhost:5173"]})
    assert made.status_code == 201, made.text


async def test_the_cli_creates_lists_and_revokes_a_site(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    made = await sites_cli(settings, "create", "--name", "shop", "--origin", ORIGIN)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    site_id = key.split("_")[1]
    assert len(site_id) == 16

    async def accepted() -> bool:
        return await records(api, key) == 201

    await wait_until(accepted, 30, "the new site's key to be accepted")
    listed = await sites_cli(settings, "list")
    assert listed.returncode == 0 and site_id in listed.stdout and ORIGIN in listed.stdout
    assert key not in listed.stdout
    revoked = await sites_cli(settings, "revoke", site_id)
    assert revoked.returncode == 0, revoked.stderr

    async def refused() -> bool:
        return await records(api, key) == 401

    await wait_until(refused, 30, "the revoked site's key to be refused")
    bad = await sites_cli(settings, "create", "--name", "x", "--origin", "https://a.example/x")
    assert bad.returncode == 2 and "origins[0]" in bad.stderr
    unknown = await sites_cli(settings, "revoke", "0000000000000000")
    assert unknown.returncode == 1
