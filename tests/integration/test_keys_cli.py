"""`consent-ledger keys create|list|revoke` against a real database and a running API, and
the registration of LEDGER_ADMIN_KEY."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import asyncpg
import httpx
import pytest

from services.config import Settings
from services.identity.api_key_store import KeyConflict, register_admin_key, revoke_key
from services.identity.api_keys import key_hash, key_id
from services.identity.secrets import new_key
from tests.conftest import HASH_KEY, TEST_ADMIN_KEY, wait_until
from tests.integration.access_support import accepted, client_of

pytestmark = pytest.mark.integration


async def keys_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.as_environment()}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli.main", "keys", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_create_list_and_revoke_a_key(
    api: httpx.AsyncClient, settings: Settings, db: asyncpg.Connection
) -> None:
    made = await keys_cli(
        settings, "create", "--scope", "decide", "--scope", "record", "--name", "crm"
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    kid = key_id(key)
    assert re.fullmatch(rf"cl_{kid}_[A-Za-z0-9_-]{{43}}", key)
    assert f"created key {kid} (crm) with scopes decide, record" in made.stdout
    row = await db.fetchrow(
        "SELECT name, scopes, key_hash, hash_kind, origin FROM api_keys WHERE key_id = $1", kid
    )
    assert row is not None
    assert (row["name"], row["scopes"], bytes(row["key_hash"])) == (
        "crm",
        ["decide", "record"],
        key_hash(key, HASH_KEY),
    )
    assert (row["hash_kind"], row["origin"]) == ("hmac-sha256", "keys create")

    async def works() -> bool:
        return await accepted(api, key)

    await wait_until(works, settings.api_key_refresh_s + 5, "the API to accept the new key")
    async with client_of(api, key) as crm:
        granted = await crm.post("/v1/subjects/cli-1/consents", json={"purpose": "newsletter"})
        assert granted.status_code == 201, granted.text
        assert (await crm.get("/v1/subjects/cli-1/events")).status_code == 403

    listed = await keys_cli(settings, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert lines[0].split() == ["id", "name", "scopes", "created", "revoked"]
    [mine] = [line.split() for line in lines if line.startswith(kid)]
    assert mine[:3] == [kid, "crm", "decide,record"] and mine[-1] == "-"
    assert any(line.startswith("testadmin ") for line in lines)  # LEDGER_ADMIN_KEY's row
    assert (
        key.split("_", 2)[2] not in listed.stdout
        and key_hash(key, HASH_KEY).hex() not in listed.stdout
    )

    revoked = await keys_cli(settings, "revoke", kid)
    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked key {kid} (crm)" in revoked.stdout

    async def refused() -> bool:
        return not await accepted(api, key)

    await wait_until(refused, settings.api_key_refresh_s + 1, "the revoked key to be refused")
    again = await keys_cli(settings, "list")
    [mine] = [line.split() for line in again.stdout.splitlines() if line.startswith(kid)]
    assert mine[-1] != "-"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("revoke", "nosuchkey"), 1, "no key has the id 'nosuchkey'"),
        (("create", "--scope", "decide", "--name", "ada@example.com"), 2, "--name must be"),
        (("create", "--scope", "read", "--name", "crm"), 2, "invalid choice: 'read'"),
        (("create", "--name", "crm"), 2, "--scope"),
    ],
)
async def test_refused_key_commands(
    settings: Settings, args: tuple[str, ...], code: int, message: str
) -> None:
    done = await keys_cli(settings, *args)
    assert done.returncode == code and message in done.stderr, done.stderr


async def test_the_admin_key_is_registered_once_and_stays_revoked(
    settings: Settings, db: asyncpg.Connection
) -> None:
    first = await register_admin_key(db, TEST_ADMIN_KEY, HASH_KEY)
    assert first.created and first.row.scopes == {"admin"} and first.row.key_id == "testadmin"
    second = await register_admin_key(db, TEST_ADMIN_KEY, HASH_KEY)
    assert not second.created and second.row == first.row
    assert await db.fetchval("SELECT count(*) FROM api_keys") == 1
    with pytest.raises(KeyConflict, match="testadmin"):
        await register_admin_key(db, "cl_testadmin_" + new_key(), HASH_KEY)
    assert await revoke_key(db, "testadmin") is not None
    again = await register_admin_key(db, TEST_ADMIN_KEY, HASH_KEY)
    assert not again.created and again.row.revoked_at is not None
    chosen = await register_admin_key(db, new_key(), HASH_KEY)
    assert chosen.created and chosen.row.key_id.startswith("h-")
    assert chosen.row.origin == "LEDGER_ADMIN_KEY"


async def test_create_accepts_the_notices_and_requests_scopes(
    settings: Settings, db: asyncpg.Connection
) -> None:
    made = await keys_cli(
        settings, "create", "--scope", "notices", "--scope", "requests", "--name", "dpo"
    )
    assert made.returncode == 0, made.stderr
    assert "with scopes notices, requests" in made.stdout
    kid = key_id(made.stdout.strip().splitlines()[-1])
    scopes = await db.fetchval("SELECT scopes FROM api_keys WHERE key_id = $1", kid)
    assert scopes == ["notices", "requests"]
