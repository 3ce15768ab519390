"""API keys hardened (security review L4) against a real API and PostgreSQL: rows stored as
plain SHA-256 before migration 0014 keep working and are rewritten to the keyed hash on their
next use, and a start names the valid keys of an earlier LEDGER_ADMIN_KEY. That refused keys
are logged and limited per client address is checked in-process:
tests/unit/services/api/test_refused_keys.py."""

from __future__ import annotations

import hashlib
import logging

import asyncpg
import pytest

from projections.migrate import migrate, migration_files
from services.config import Settings
from services.identity.api_keys import ADMIN, DECIDE, key_hash, new_key
from services.identity.secrets import new_key as new_secret
from tests.conftest import HASH_KEY, TEST_ADMIN_KEY, running_api, wait_until
from tests.integration.access_support import bearer

pytestmark = pytest.mark.integration


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
