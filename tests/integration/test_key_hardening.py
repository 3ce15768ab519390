"""API keys hardened (security review L4) against a real API and PostgreSQL: refused keys are
logged and limited per client address; rows stored as plain SHA-256 before migration 0014 keep
working and are rewritten to the keyed hash on their next use; and a start names the valid
keys of an earlier LEDGER_ADMIN_KEY."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from projections.migrate import migrate, migration_files
from services.config import Settings
from services.identity.api_key_store import NOTIFY_CHANNEL
from services.identity.api_keys import ADMIN, DECIDE, key_hash, key_id, new_key
from services.identity.secrets import new_key as new_secret
from tests.conftest import HASH_KEY, TEST_ADMIN_KEY, make_settings, running_api, wait_until
from tests.integration.access_support import PROBLEM, bearer, client_of, made_key
from tests.servers import Servers

pytestmark = pytest.mark.integration

LIMIT = 3
ATTACKER = {"X-Forwarded-For": "203.0.113.9"}  # through a trusted proxy (loopback)
NEIGHBOUR = {"X-Forwarded-For": "203.0.113.10"}


@pytest.fixture
async def limited(real_servers: Servers) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    settings = await make_settings(real_servers, LEDGER_FAILED_KEY_RATE_PER_MIN=str(LIMIT))
    async with running_api(settings) as api:
        yield api, settings


async def test_refused_keys_are_logged_and_limited_per_address(
    limited: tuple[httpx.AsyncClient, Settings], caplog: pytest.LogCaptureFixture
) -> None:
    api, settings = limited
    kid, good = await made_key(settings, api, DECIDE)
    guessed = [f"cl_nosuchkey_{new_secret()}" for _ in range(LIMIT)]
    wrong_secret = f"cl_{kid}_{new_secret()}"
    caplog.set_level(logging.WARNING, logger="services.api.guard")
    async with client_of(api) as anonymous:
        for key in guessed:
            refused = await anonymous.get("/v1/purposes", headers={**ATTACKER, **bearer(key)})
            assert refused.status_code == 401, refused.text
        over = await anonymous.get("/v1/purposes", headers={**ATTACKER, **bearer(wrong_secret)})
        assert over.status_code == 429 and over.headers["content-type"] == PROBLEM
        assert "refused API keys" in over.json()["detail"]
        assert 1 <= int(over.headers["retry-after"]) <= 60 // LIMIT
        # held back: a generated key (256 random bits, which no one guesses) still gets
        # through, so a client sharing the address is not locked out by whoever guesses ...
        shared = await anonymous.get("/v1/purposes", headers={**ATTACKER, **bearer(good)})
        assert shared.status_code == 200, shared.text
        # ... while a key that could be guessed learns nothing: right or wrong, 429
        weak = "x" * 20 + "y" * 20 + "z" * 20  # a hand-set key of old, stored before the rule
        await store_key(settings, api, weak)
        for key in (weak, weak[:-1] + "a"):
            held = await anonymous.get("/v1/purposes", headers={**ATTACKER, **bearer(key)})
            assert held.status_code == 429, key
        # another address, and the same keys from it, are not affected
        fine = await anonymous.get("/v1/purposes", headers={**NEIGHBOUR, **bearer(good)})
        assert fine.status_code == 200
        fine = await anonymous.get("/v1/purposes", headers={**NEIGHBOUR, **bearer(weak)})
        assert fine.status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    refusals = [line for line in lines if "203.0.113.9" in line]
    assert len(refusals) == LIMIT + 1  # refusals while held back are not logged again
    assert all("GET /v1/purposes" in line for line in refusals)
    assert f"(key {kid})" in refusals[-1]  # a stored key's id, when the secret was wrong
    for line in lines:
        for key in (*guessed, wrong_secret, good):
            secret = key.split("_", 2)[2]  # after `cl_<id>_` (a secret may hold `_` too)
            assert key not in line and secret not in line
        assert "nosuchkey" not in line  # an id nobody stored is not echoed either


async def store_key(settings: Settings, api: httpx.AsyncClient, key: str) -> None:
    """A key row as a hand-set key of an earlier release left it, once the API has it."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(
            "INSERT INTO api_keys (key_id, name, scopes, key_hash, hash_kind, origin)"
            " VALUES ($1, 'old hand-set key', $2, $3, 'hmac-sha256', 'keys create')",
            key_id(key),
            [DECIDE],
            key_hash(key, HASH_KEY),
        )
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, key_id(key))
    finally:
        await conn.close()
    tries = iter(range(1, 255))

    async def loaded() -> bool:  # each try from an address of its own: none is held back
        probe = {"X-Forwarded-For": f"198.51.100.{next(tries)}", **bearer(key)}
        return (await api.get("/v1/purposes", headers=probe)).status_code == 200

    await wait_until(loaded, 10, "the API to load the stored key")


async def pre_0014_database(settings: Settings) -> asyncpg.Connection:
    """The settings' database emptied and migrated by the files before 0014 only, as the
    database of a deployment from before the keyed hashes is."""
    conn = await asyncpg.connect(settings.database_url)
    await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    await conn.execute(
        "CREATE TABLE schema_migrations ("
        " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for name, sql in migration_files():
        if name >= "0014":
            break
        async with conn.transaction():
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
    return conn


LEGACY_INSERT = "INSERT INTO api_keys (key_id, name, scopes, key_hash) VALUES ($1, $2, $3, $4)"


def sha256(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


async def test_legacy_sha256_rows_keep_working_and_are_upgraded(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    conn = await pre_0014_database(settings)
    try:
        crm_id, crm = new_key()
        old_admin = f"cl_oldadmin_{new_secret()}"
        dev_id, dev = new_key()
        rows = [
            (crm_id, "crm", [DECIDE], sha256(crm)),
            ("testadmin", "LEDGER_ADMIN_KEY", [ADMIN], sha256(TEST_ADMIN_KEY)),
            ("oldadmin", "LEDGER_ADMIN_KEY", [ADMIN], sha256(old_admin)),
            (dev_id, "dev-admin", [ADMIN], sha256(dev)),
        ]
        await conn.executemany(LEGACY_INSERT, rows)
        assert "0014_api_key_hardening.sql" in await migrate(conn)
        kinds = await conn.fetch("SELECT key_id, hash_kind, origin FROM api_keys ORDER BY key_id")
        assert {r["key_id"]: (r["hash_kind"], r["origin"]) for r in kinds} == {
            crm_id: ("sha256", "keys create"),
            "testadmin": ("sha256", "LEDGER_ADMIN_KEY"),
            "oldadmin": ("sha256", "LEDGER_ADMIN_KEY"),
            dev_id: ("sha256", "up"),
        }

        async def stored(kid: str) -> tuple[str, bytes]:
            found = await conn.fetchrow(
                "SELECT hash_kind, key_hash FROM api_keys WHERE key_id = $1", kid
            )
            assert found is not None
            return found["hash_kind"], bytes(found["key_hash"])

        caplog.set_level(logging.WARNING, logger="services.identity.api_key_store")
        async with running_api(settings) as api:
            # LEDGER_ADMIN_KEY is upgraded when the API registers it at start
            assert await stored("testadmin") == ("hmac-sha256", key_hash(TEST_ADMIN_KEY, HASH_KEY))
            # the admin key that is no longer LEDGER_ADMIN_KEY but still works is named
            warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            [forgotten] = [line for line in warned if "earlier LEDGER_ADMIN_KEY" in line]
            assert "API key oldadmin" in forgotten and "keys revoke oldadmin" in forgotten
            assert not any(kid in forgotten for kid in ("testadmin", crm_id, dev_id))
            # a legacy row of another key: a wrong secret neither works nor upgrades it
            wrong = await api.get("/v1/purposes", headers=bearer(f"cl_{crm_id}_{new_secret()}"))
            assert wrong.status_code == 401
            assert await stored(crm_id) == ("sha256", sha256(crm))
            # its own key works, and its row then holds the keyed hash
            first = await api.get("/v1/purposes", headers=bearer(crm))
            assert first.status_code == 200, first.text

            async def upgraded() -> bool:
                return await stored(crm_id) == ("hmac-sha256", key_hash(crm, HASH_KEY))

            await wait_until(upgraded, 15, "the legacy row to be upgraded")
            again = await api.get("/v1/purposes", headers=bearer(crm))
            assert again.status_code == 200
            # a row never used since keeps its legacy hash until its key is next used
            assert await stored(dev_id) == ("sha256", sha256(dev))
        # another API process reads the upgraded row: the key still works there
        async with running_api(settings) as restarted:
            later = await restarted.get("/v1/purposes", headers=bearer(crm))
            assert later.status_code == 200
    finally:
        await conn.close()
