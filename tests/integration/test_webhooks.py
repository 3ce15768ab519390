"""Webhook subscriptions against the real servers: the admin routes (the secret shown once,
sealed at rest, rotation signing with both secrets for a day, deletion cascading to
deliveries), refused fields and URLs named by field, and an erasure capturing the subject's
identifiers for its SubjectErased webhooks before the data key is destroyed."""

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
from services.webhooks import erasure_capture
from services.webhooks.signing import webhook_headers
from tests.conftest import running_api, running_projector

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


async def _link(api: httpx.AsyncClient, subject: str, kind: str, value: str) -> str:
    answer = await api.post(
        f"/v1/subjects/{subject}/identifiers", json={"type": kind, "value": value}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


async def test_an_erasure_captures_the_identifiers_before_the_key_is_destroyed(
    api: httpx.AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    made = await api.post(
        "/v1/webhooks",
        json={"url": URL, "events": ["SubjectErased"], "include_identifiers": True},
    )
    assert made.status_code == 201, made.text
    await _link(api, "wh-erased", "email", "Maija.Virtanen@Example.fi")
    token = await _link(api, "wh-erased", "phone", "+358 40 123 4567")
    erased = await api.post(
        "/v1/subjects/wh-erased/erasure",
        params={"min_token": token},
        json={"ground": "consent_withdrawn"},
    )
    assert erased.status_code == 201, erased.text
    event_id = uuid.UUID(erased.json()["event_id"])
    row = await db.fetchrow("SELECT * FROM webhook_erasure_identifiers")
    assert row is not None
    assert row["event_id"] == event_id and row["subject_id"] == "wh-erased"
    assert b"example.fi" not in bytes(row["sealed"]) and b"358" not in bytes(row["sealed"])
    key = await db.fetchval("SELECT wrapped_key FROM subject_keys WHERE subject_id = 'wh-erased'")
    assert key is None  # shredded: the capture is the only way left to the addresses
    captured = await erasure_capture.open_capture(db, master(settings), event_id)
    assert captured is not None
    assert sorted(captured, key=lambda i: i["type"]) == [
        {"type": "email", "value": "maija.virtanen@example.fi"},
        {"type": "phone", "value": "+358401234567"},
    ]
    assert await erasure_capture.forget(db, event_id)
    assert await erasure_capture.open_capture(db, master(settings), event_id) is None
    assert not await erasure_capture.forget(db, event_id)


async def test_no_capture_where_no_subscription_wants_identifiers(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    # identifiers not asked for, and identifiers asked for but not on erasures, or disabled
    await api.post("/v1/webhooks", json={"url": URL, "events": ["SubjectErased"]})
    await api.post(
        "/v1/webhooks",
        json={"url": URL, "events": ["ConsentWithdrawn"], "include_identifiers": True},
    )
    off = await api.post(
        "/v1/webhooks", json={"url": URL, "events": ["SubjectErased"], "include_identifiers": True}
    )
    await api.patch(f"/v1/webhooks/{off.json()['id']}", json={"enabled": False})
    token = await _link(api, "wh-plain", "email", "plain@example.com")
    erased = await api.post(
        "/v1/subjects/wh-plain/erasure", params={"min_token": token}, json={"ground": "objection"}
    )
    assert erased.status_code == 201, erased.text
    assert await db.fetchval("SELECT count(*) FROM webhook_erasure_identifiers") == 0


async def test_a_replayed_erasure_keeps_only_the_first_capture(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    await api.post(
        "/v1/webhooks", json={"url": URL, "events": ["SubjectErased"], "include_identifiers": True}
    )
    token = await _link(api, "wh-again", "email", "again@example.com")
    first = await api.post(
        "/v1/subjects/wh-again/erasure",
        params={"min_token": token},
        json={"ground": "objection"},
        headers={"Idempotency-Key": "erase-wh-again"},
    )
    again = await api.post(
        "/v1/subjects/wh-again/erasure",
        json={"ground": "objection"},
        headers={"Idempotency-Key": "erase-wh-again"},
    )
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    ids = [
        r["event_id"] for r in await db.fetch("SELECT event_id FROM webhook_erasure_identifiers")
    ]
    assert ids == [uuid.UUID(first.json()["event_id"])]


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
