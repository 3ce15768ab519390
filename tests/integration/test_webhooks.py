"""Webhook subscriptions against the real servers: the admin routes (the secret shown once,
sealed at rest, rotation signing with both secrets for a day, deletion cascading to
deliveries), refused fields and URLs named by field, and an erasure capturing the subject's
identifiers for its SubjectErased webhooks: tests/integration/test_webhook_erasure_capture.py."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from services.config import Settings
from services.identity import webhook_secrets
from services.identity.secrets import KeyRing
from services.webhooks.signing import webhook_headers
from tests.conftest import running_api, running_projector, wait_until

pytestmark = pytest.mark.integration

URL = "https://crm.example.com/hooks/ledger"
NEW = {"url": URL, "events": ["ConsentWithdrawn", "SubjectErased"], "description": "CRM"}


def master(settings: Settings) -> KeyRing:
    return settings.secrets().master


async def secrets_now(settings: Settings, db: asyncpg.Connection, hook_id: str) -> list[str]:
    return await webhook_secrets.signing_secrets(
        db, master(settings), uuid.UUID(hook_id), datetime.now(UTC)
    )


async def test_subscribe_show_change_rotate_and_delete(
    api: httpx.AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    made = await api.post(
        "/v1/webhooks", json={**NEW, "url": "HTTPS://CRM.Example.com:443/hooks/ledger"}
    )
    assert made.status_code == 201, made.text
    hook = made.json()
    secret, hook_id = hook["secret"], hook["id"]
    assert secret.startswith("whsec_")
    assert hook["url"] == URL and hook["events"] == NEW["events"]
    assert hook["enabled"] and not hook["include_identifiers"] and hook["created_by"]
    assert hook["previous_secret_retires_at"] is None and hook["secret_created_at"]
    sealed = await db.fetchval("SELECT sealed_secret FROM webhook_secrets")
    assert secret.encode() not in bytes(sealed) and secret[6:].encode() not in bytes(sealed)
    assert await secrets_now(settings, db, hook_id) == [secret]

    shown = (await api.get(f"/v1/webhooks/{hook_id}")).json()
    listed = (await api.get("/v1/webhooks")).json()["webhooks"]
    assert "secret" not in shown and [h["id"] for h in listed] == [hook_id]
    assert "secret" not in listed[0] and secret not in str(listed)

    changed = await api.patch(
        f"/v1/webhooks/{hook_id}", json={"events": ["SubjectErased"], "enabled": False}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["SubjectErased"] and not changed.json()["enabled"]
    assert changed.json()["description"] == "CRM" and changed.json()["url"] == URL
    cleared = await api.patch(f"/v1/webhooks/{hook_id}", json={"description": None})
    assert cleared.json()["description"] is None

    rotated = await api.post(f"/v1/webhooks/{hook_id}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    retires = datetime.fromisoformat(rotated.json()["previous_secret_retires_at"])
    assert timedelta(hours=23) < retires - datetime.now(UTC) <= timedelta(days=1)
    signing = await secrets_now(settings, db, hook_id)
    assert signing == [new_secret, secret]
    body = b'{"type":"SubjectErased"}'
    headers = webhook_headers(signing, "evt_1", int(datetime.now(UTC).timestamp()), body)
    for receiver_secret in (secret, new_secret):
        assert Webhook(receiver_secret).verify(body, headers) == {"type": "SubjectErased"}
    shown = (await api.get(f"/v1/webhooks/{hook_id}")).json()
    assert datetime.fromisoformat(shown["previous_secret_retires_at"]) == retires
    after_a_day = await webhook_secrets.signing_secrets(
        db, master(settings), uuid.UUID(hook_id), retires + timedelta(seconds=1)
    )
    assert after_a_day == [new_secret]
    # reading the signing secrets deleted the retired one: no sealed copy outlives its day
    assert await db.fetchval("SELECT count(*) FROM webhook_secrets") == 1

    await db.execute(
        "INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, subject_id,"
        " log_partition, log_offset, payload) VALUES ($1, $2, $3, 'SubjectErased', 's-1', 0, 0,"
        " '{}')",
        uuid.uuid4(),
        uuid.UUID(hook_id),
        uuid.uuid4(),
    )
    deleted = await api.delete(f"/v1/webhooks/{hook_id}")
    assert deleted.status_code == 204
    for table in ("webhook_subscriptions", "webhook_secrets", "webhook_deliveries"):
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    assert (await api.get(f"/v1/webhooks/{hook_id}")).status_code == 404
    assert (await api.delete(f"/v1/webhooks/{hook_id}")).status_code == 404
    assert (await api.get("/v1/webhooks/not-a-uuid")).status_code == 404
    too_long = await api.get(f"/v1/webhooks/{hook_id}{'x' * 100}")
    assert too_long.status_code == 404
    assert hook_id in too_long.json()["detail"] and str(uuid.UUID(int=0)) not in too_long.text
    assert (await api.post(f"/v1/webhooks/{uuid.uuid4()}/rotate-secret")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NEW, "url": "http://crm.example.com/x"}, "url"),
        ({**NEW, "url": "https://169.254.169.254/latest"}, "url"),
        ({**NEW, "url": "https://10.0.0.5/x"}, "url"),
        ({**NEW, "url": "https://localhost:8443/x"}, "url"),
        ({**NEW, "url": "https://user:pw@crm.example.com/x"}, "url"),
        ({**NEW, "url": 5}, "url"),
        ({"events": ["SubjectErased"]}, "url"),
        ({**NEW, "events": []}, "events"),
        ({**NEW, "events": ["SubjectDeleted"]}, "events"),
        ({**NEW, "events": ["SubjectErased", "PurposeDefined"]}, "events[1]"),
        ({**NEW, "events": ["PurposeRetired"]}, "events[0]"),
        ({"url": URL}, "events"),
        ({**NEW, "description": "x" * 201}, "description"),
        ({**NEW, "include_identifiers": "yes"}, "include_identifiers"),
        ({**NEW, "enabled": False}, "enabled"),
        ({**NEW, "secret": "whsec_AAAA"}, "secret"),
    ],
)
async def test_a_bad_subscription_is_a_422_naming_the_field(
    api: httpx.AsyncClient, db: asyncpg.Connection, body: dict[str, object], field: str
) -> None:
    answer = await api.post("/v1/webhooks", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in answer.json()["errors"]]
    assert await db.fetchval("SELECT count(*) FROM webhook_subscriptions") == 0


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (rb'{"url": "https://crm.example.com/\ud800", "events": ["SubjectErased"]}', "url"),
        (
            rb'{"url": "https://crm.example.com/", "events": ["SubjectErased"],'
            rb' "description": "CRM \udfff"}',
            "description",
        ),
    ],
)
async def test_a_lone_surrogate_is_a_422_naming_the_field(
    api: httpx.AsyncClient, db: asyncpg.Connection, raw: bytes, field: str
) -> None:
    answer = await api.post(
        "/v1/webhooks", content=raw, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == [field]
    assert await db.fetchval("SELECT count(*) FROM webhook_subscriptions") == 0


async def test_a_bad_change_is_a_422_and_changes_nothing(api: httpx.AsyncClient) -> None:
    hook = (await api.post("/v1/webhooks", json=NEW)).json()
    for body, field in (
        ({"url": "http://crm.example.com/"}, "url"),
        ({"events": None}, "events"),
        ({"enabled": "no"}, "enabled"),
        ({"include_identifiers": True}, "include_identifiers"),
    ):
        answer = await api.patch(f"/v1/webhooks/{hook['id']}", json=body)
        assert answer.status_code == 422, answer.text
        assert field in [e["field"] for e in answer.json()["errors"]]
    shown = (await api.get(f"/v1/webhooks/{hook['id']}")).json()
    assert shown["url"] == URL and shown["events"] == NEW["events"] and shown["enabled"]


async def test_loopback_receivers_only_where_the_setting_allows(settings: Settings) -> None:
    local = {**NEW, "url": "http://127.0.0.1:9999/hook"}
    async with running_projector(settings):
        async with running_api(settings) as api:
            assert (await api.post("/v1/webhooks", json=local)).status_code == 422
        allowing = dataclasses.replace(settings, webhook_allow_loopback=True)
        async with running_api(allowing) as api:
            made = await api.post("/v1/webhooks", json=local)
            assert made.status_code == 201, made.text
            assert made.json()["url"] == "http://127.0.0.1:9999/hook"


async def webhooks_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.as_environment()}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli.main", "webhooks", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_cli_creates_lists_shows_updates_rotates_and_deletes(
    settings: Settings, db: asyncpg.Connection
) -> None:
    made = await webhooks_cli(
        settings, "create", "--url", URL, "--event", "SubjectErased", "--include-identifiers"
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    hook_id = str(await db.fetchval("SELECT id FROM webhook_subscriptions"))
    assert secret.startswith("whsec_") and hook_id in made.stdout
    assert await secrets_now(settings, db, hook_id) == [secret]
    listed = await webhooks_cli(settings, "list")
    assert listed.returncode == 0 and hook_id in listed.stdout and URL in listed.stdout
    assert secret not in listed.stdout
    shown = await webhooks_cli(settings, "show", hook_id)
    assert json.loads(shown.stdout)["include_identifiers"] is True
    assert secret not in shown.stdout
    changed = await webhooks_cli(
        settings, "update", hook_id, "--event", "ConsentWithdrawn", "--disable"
    )
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["events"] == ["ConsentWithdrawn"]
    assert json.loads(changed.stdout)["enabled"] is False
    rotated = await webhooks_cli(settings, "rotate-secret", hook_id)
    assert rotated.returncode == 0, rotated.stderr
    new_secret = rotated.stdout.strip().splitlines()[-1]
    assert await secrets_now(settings, db, hook_id) == [new_secret, secret]
    bad = await webhooks_cli(settings, "create", "--url", "http://crm.example.com/", "--event", "X")
    assert bad.returncode == 2 and "url:" in bad.stderr and "events:" in bad.stderr
    deleted = await webhooks_cli(settings, "delete", hook_id)
    assert deleted.returncode == 0, deleted.stderr
    assert await db.fetchval("SELECT count(*) FROM webhook_subscriptions") == 0
    assert (await webhooks_cli(settings, "show", hook_id)).returncode == 1
    assert (await webhooks_cli(settings, "delete", "not-an-id")).returncode == 1


async def test_a_subscription_with_identifiers_keeps_its_url(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    made = await api.post(
        "/v1/webhooks", json={"url": URL, "events": ["SubjectErased"], "include_identifiers": True}
    )
    hook_id = made.json()["id"]
    moved = await api.patch(f"/v1/webhooks/{hook_id}", json={"url": "https://other.example/h"})
    assert moved.status_code == 422, moved.text
    assert [e["field"] for e in moved.json()["errors"]] == ["url"]
    assert "subscribe" in moved.json()["errors"][0]["detail"]
    same = await api.patch(f"/v1/webhooks/{hook_id}", json={"url": URL, "enabled": False})
    assert same.status_code == 200 and same.json()["enabled"] is False
    assert (await api.get(f"/v1/webhooks/{hook_id}")).json()["url"] == URL
    by_cli = await webhooks_cli(settings, "update", hook_id, "--url", "https://other.example/h")
    assert by_cli.returncode == 2 and "url:" in by_cli.stderr
    assert (await api.get(f"/v1/webhooks/{hook_id}")).json()["url"] == URL


async def test_a_leaked_secret_stops_signing_at_once(
    api: httpx.AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    hook = (await api.post("/v1/webhooks", json=NEW)).json()
    first = (await api.post(f"/v1/webhooks/{hook['id']}/rotate-secret")).json()["secret"]
    bad = await api.post(f"/v1/webhooks/{hook['id']}/rotate-secret", json={"retire_previous": 1})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "retire_previous"
    rotated = await api.post(
        f"/v1/webhooks/{hook['id']}/rotate-secret", json={"retire_previous": "now"}
    )
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert await secrets_now(settings, db, hook["id"]) == [new_secret]
    assert await db.fetchval("SELECT count(*) FROM webhook_secrets") == 1
    assert hook["secret"] != new_secret != first
    shown = (await api.get(f"/v1/webhooks/{hook['id']}")).json()
    assert shown["previous_secret_retires_at"] is None
    by_cli = await webhooks_cli(settings, "rotate-secret", hook["id"], "--retire-previous-now")
    assert by_cli.returncode == 0, by_cli.stderr
    assert await secrets_now(settings, db, hook["id"]) == [by_cli.stdout.strip().splitlines()[-1]]


async def waiting_on_locks(db: asyncpg.Connection) -> int:
    """Backends of this database waiting for a lock (pg_locks, read outside any transaction)."""
    found = await db.fetchval(
        "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND pid IN"
        " (SELECT pid FROM pg_stat_activity WHERE datname = current_database())"
    )
    return int(found)


async def test_concurrent_rotations_leave_one_current_secret(
    api: httpx.AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    hook = (await api.post("/v1/webhooks", json=NEW)).json()
    path = f"/v1/webhooks/{hook['id']}/rotate-secret"
    holder = await asyncpg.connect(settings.database_url)
    try:
        async with holder.transaction():
            # both rotations queue behind the current secret's row, then race
            await holder.execute("SELECT 1 FROM webhook_secrets FOR UPDATE")
            rotations = [asyncio.create_task(api.post(path)) for _ in range(2)]

            async def both_waiting() -> bool:
                return await waiting_on_locks(db) == 2

            await wait_until(both_waiting, 30, "both rotations to wait for the lock")
    finally:
        await holder.close()
    answers = [await task for task in rotations]
    assert [a.status_code for a in answers] == [200, 200]
    assert await db.fetchval("SELECT count(*) FROM webhook_secrets WHERE retires_at IS NULL") == 1
    signing = await secrets_now(settings, db, hook["id"])
    assert len(signing) == 3 and hook["secret"] in signing
    assert {a.json()["secret"] for a in answers} <= set(signing)


async def test_a_rotation_racing_a_deletion_is_a_404(
    api: httpx.AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    hook = (await api.post("/v1/webhooks", json=NEW)).json()
    deleter = await asyncpg.connect(settings.database_url)
    try:
        async with deleter.transaction():
            await deleter.execute("DELETE FROM webhook_subscriptions")
            rotation = asyncio.create_task(api.post(f"/v1/webhooks/{hook['id']}/rotate-secret"))

            async def rotation_waiting() -> bool:
                return await waiting_on_locks(db) == 1

            await wait_until(rotation_waiting, 30, "the rotation to wait for the deletion")
    finally:
        await deleter.close()
    answer = await rotation
    assert answer.status_code == 404, answer.text
    assert await db.fetchval("SELECT count(*) FROM webhook_secrets") == 0


async def test_retired_secrets_are_deleted_by_housekeeping(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    hooks = [(await api.post("/v1/webhooks", json=NEW)).json()["id"] for _ in range(2)]
    for hook_id in hooks:
        await api.post(f"/v1/webhooks/{hook_id}/rotate-secret")
    assert await webhook_secrets.delete_retired(db, datetime.now(UTC)) == 0
    later = datetime.now(UTC) + webhook_secrets.ROTATION_OVERLAP + timedelta(seconds=1)
    assert await webhook_secrets.delete_retired(db, later) == 2
    assert await db.fetchval("SELECT count(*) FROM webhook_secrets WHERE retires_at IS NULL") == 2
    assert await db.fetchval("SELECT count(*) FROM webhook_secrets") == 2
