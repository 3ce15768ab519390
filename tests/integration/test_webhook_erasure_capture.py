"""An erasure captures the subject's identifiers for its SubjectErased webhooks before the data
key is destroyed (Art. 19 GDPR), against the real servers: what is captured and when, that a
refused erasure leaves no capture and an unconfirmed one keeps it, the time rule that
deletes captures no delivery will open, and rewrap-keys moving them with the webhook secrets
to a new master key."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from services.config import Settings
from services.identity import webhook_secrets
from services.identity.keystore import DataKeys
from services.identity.secrets import new_key, parse_key_ring
from services.stack.embedded import EmbeddedKafka
from services.webhooks import erasure_capture
from services.webhooks.signing import webhook_headers
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.servers import Servers

pytestmark = pytest.mark.integration

URL = "https://crm.example.com/hooks/ledger"
WANTS_IDENTIFIERS = {"url": URL, "events": ["SubjectErased"], "include_identifiers": True}
#: the retry window forget_orphans caps a capture at (the default LEDGER_WEBHOOK_RETRY_HOURS)
DAY = timedelta(hours=24)


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
    captured = await erasure_capture.open_capture(db, settings.secrets().master, event_id)
    assert captured is not None
    assert sorted(captured, key=lambda i: i["type"]) == [
        {"type": "email", "value": "maija.virtanen@example.fi"},
        {"type": "phone", "value": "+358401234567"},
    ]
    assert await erasure_capture.forget(db, event_id)
    assert await erasure_capture.open_capture(db, settings.secrets().master, event_id) is None
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


def new_data_keys(db: asyncpg.Connection, settings: Settings) -> DataKeys:
    return DataKeys(db, settings.secrets().master)


async def captured(db: asyncpg.Connection) -> list[tuple[uuid.UUID, str]]:
    rows = await db.fetch("SELECT event_id, subject_id FROM webhook_erasure_identifiers")
    return sorted((r["event_id"], r["subject_id"]) for r in rows)


async def history(api: httpx.AsyncClient, subject: str, token: str) -> list[str]:
    answer = await api.get(f"/v1/subjects/{subject}/events", params={"min_token": token})
    assert answer.status_code == 200, answer.text
    return [e["type"] for e in answer.json()["events"]]


async def test_an_erasure_refused_after_the_capture_leaves_no_capture(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    await api.post("/v1/webhooks", json=WANTS_IDENTIFIERS)
    await _link(api, "wh-first", "email", "first@example.com")
    token = await _link(api, "wh-second", "email", "second@example.com")
    key = {"Idempotency-Key": "erase-once"}
    first = await api.post(
        "/v1/subjects/wh-first/erasure",
        params={"min_token": token},
        json={"ground": "objection"},
        headers=key,
    )
    assert first.status_code == 201, first.text
    # the same key for another subject: refused after the second subject was captured
    reused = await api.post(
        "/v1/subjects/wh-second/erasure", json={"ground": "objection"}, headers=key
    )
    assert reused.status_code == 422, reused.text
    assert reused.json()["errors"][0]["field"] == "Idempotency-Key"
    assert await captured(db) == [(uuid.UUID(first.json()["event_id"]), "wh-first")]
    key_left = "SELECT wrapped_key IS NOT NULL FROM subject_keys WHERE subject_id = 'wh-second'"
    assert await db.fetchval(key_left)


async def test_a_failed_capture_is_a_503_and_records_nothing(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    await api.post("/v1/webhooks", json=WANTS_IDENTIFIERS)
    token = await _link(api, "wh-kept", "email", "kept@example.com")
    await db.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN RAISE EXCEPTION 'disk full'; END$$;"
        " CREATE TRIGGER refuse BEFORE INSERT ON webhook_erasure_identifiers"
        " FOR EACH ROW EXECUTE FUNCTION refuse()"
    )
    erased = await api.post(
        "/v1/subjects/wh-kept/erasure", params={"min_token": token}, json={"ground": "objection"}
    )
    assert erased.status_code == 503, erased.text
    assert "nothing is recorded" in erased.json()["detail"]
    # an event appended after the refused erasure: once it is projected, so would the erasure be
    later = await _link(api, "wh-kept", "phone", "+358401234567")
    assert await history(api, "wh-kept", later) == ["IdentifierLinked", "IdentifierLinked"]
    assert await captured(db) == []


async def test_captures_no_delivery_will_open_are_forgotten_after_the_grace(
    api: httpx.AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    hook = (await api.post("/v1/webhooks", json=WANTS_IDENTIFIERS)).json()
    token = await _link(api, "wh-landed", "email", "landed@example.com")
    await _link(api, "wh-lost", "email", "lost@example.com")
    erased = await api.post(
        "/v1/subjects/wh-landed/erasure",
        params={"min_token": token},
        json={"ground": "objection"},
    )
    landed = uuid.UUID(erased.json()["event_id"])
    await history(api, "wh-landed", erased.json()["token"])  # in the journal
    master = settings.secrets().master
    lost, pending = uuid.uuid4(), uuid.uuid4()  # appends that never reached the log
    for event_id in (lost, pending):
        assert await erasure_capture.capture(
            db, new_data_keys(db, settings), master, event_id, "wh-lost"
        )
    await db.execute(
        "INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, subject_id,"
        " log_partition, log_offset, payload) VALUES ($1, $2, $3, 'SubjectErased', 'wh-lost',"
        " 0, 0, '{}')",
        uuid.uuid4(),
        uuid.UUID(hook["id"]),
        pending,
    )
    hour = erasure_capture.ORPHAN_GRACE
    assert await erasure_capture.forget_orphans(db, DAY, hour) == []  # all younger than the grace
    await db.execute("UPDATE webhook_erasure_identifiers SET captured_at = now() - interval '2h'")

    # a partition whose projection has not caught up since: the lost event may be unread
    await db.execute(
        "INSERT INTO projector_partitions (topic, log_partition, position) VALUES ('x', 0, 0)"
    )
    assert await erasure_capture.forget_orphans(db, DAY, hour) == []
    await db.execute("DELETE FROM projector_partitions WHERE topic = 'x'")

    async def caught_up() -> bool:
        found = await db.fetchval(
            "SELECT bool_and(caught_up_at > now() - interval '1h') FROM projector_partitions"
        )
        return bool(found)

    await wait_until(caught_up, 30, "every partition's projection to report caught up")
    # never landed and nothing pending: gone; landed but not read by the dispatcher yet: kept
    assert await erasure_capture.forget_orphans(db, DAY, hour) == [lost]
    assert {e for e, _ in await captured(db)} == {landed, pending}
    # the dispatcher read past the landed event without a delivery to make
    await db.execute(
        "INSERT INTO webhook_dispatch_offsets (log_partition, next_offset)"
        " SELECT log_partition, log_offset + 1 FROM journal WHERE event_id = $1",
        landed,
    )
    assert await erasure_capture.forget_orphans(db, DAY, hour) == [landed]
    # the pending delivery is done
    await db.execute("UPDATE webhook_deliveries SET status = 'parked'")
    assert await erasure_capture.forget_orphans(db, DAY, hour) == [pending]
    assert await captured(db) == []


async def test_an_unconfirmed_erasure_keeps_its_capture_for_the_retry(
    real_servers: Servers,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedKafka(log_file=Path(tmp) / "broker.log")
        servers = Servers("embedded", broker.start(), real_servers.database_url, False)
        try:
            settings = await make_settings(servers, LEDGER_PRODUCE_TIMEOUT_MS="1500")
            async with running_api(settings) as api:
                async with running_projector(settings):
                    await api.post("/v1/webhooks", json=WANTS_IDENTIFIERS)
                    token = await _link(api, "wh-out", "email", "out@example.com")
                    assert await history(api, "wh-out", token) == ["IdentifierLinked"]
                broker.stop()
                down = await api.post(
                    "/v1/subjects/wh-out/erasure",
                    json={"ground": "objection"},
                    headers={"Idempotency-Key": "erase-out"},
                )
                assert down.status_code == 503, down.text
        finally:
            broker.stop()
        db = await asyncpg.connect(settings.database_url)
        try:
            # the event may be in the log: its capture stays
            [(first, subject)] = await captured(db)
            assert subject == "wh-out"
            # a new broker (the unacknowledged send was lost); forgetting fails from now on
            broker = EmbeddedKafka(port=broker.port, log_file=Path(tmp) / "broker2.log")
            broker.start()
            await db.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                " $$BEGIN RAISE EXCEPTION 'disk full'; END$$;"
                " CREATE TRIGGER refuse BEFORE DELETE ON webhook_erasure_identifiers"
                " FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
            try:
                settings = await make_settings(
                    servers, DATABASE_URL=settings.database_url, LEDGER_TOPIC=settings.topic
                )
                async with running_api(settings) as api:
                    retry = await api.post(
                        "/v1/subjects/wh-out/erasure",
                        json={"ground": "objection"},
                        headers={"Idempotency-Key": "erase-out"},
                    )
            finally:
                broker.stop()
            # the retry re-sent the first request's event, whose capture it is; the shredding
            # went ahead though the retry's own capture could not be forgotten
            assert retry.status_code == 201, retry.text
            assert uuid.UUID(retry.json()["event_id"]) == first
            key = "SELECT wrapped_key FROM subject_keys WHERE subject_id = 'wh-out'"
            assert await db.fetchval(key) is None
            assert first in {e for e, _ in await captured(db)}
            opened = await erasure_capture.open_capture(db, settings.secrets().master, first)
            assert opened == [{"type": "email", "value": "out@example.com"}]
        finally:
            await db.close()


async def rewrap_keys(settings: Settings, master_keys: str) -> None:
    env = {**os.environ, **settings.as_environment(), "LEDGER_MASTER_KEYS": master_keys}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli.main", "rewrap-keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


async def test_rewrap_keys_moves_webhook_secrets_and_captures_to_a_new_master_key(
    api: httpx.AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    hook = (await api.post("/v1/webhooks", json=WANTS_IDENTIFIERS)).json()
    rotated = (await api.post(f"/v1/webhooks/{hook['id']}/rotate-secret")).json()
    token = await _link(api, "wh-rewrap", "email", "rewrap@example.com")
    erased = await api.post(
        "/v1/subjects/wh-rewrap/erasure", params={"min_token": token}, json={"ground": "objection"}
    )
    event_id = uuid.UUID(erased.json()["event_id"])
    old = settings.secrets().master
    kept = ",".join(f"{kid}:{base64.urlsafe_b64encode(k).decode()}" for kid, k in old.keys.items())
    fresh = f"m9:{new_key()}"

    await rewrap_keys(settings, f"{fresh},{kept}")
    for table in ("webhook_secrets", "webhook_erasure_identifiers"):
        assert await db.fetchval(f"SELECT array_agg(DISTINCT master_key_id) FROM {table}") == [
            "m9"
        ], table
    only_new = parse_key_ring("LEDGER_MASTER_KEYS", fresh)  # the old master key dropped
    now = datetime.now(UTC)
    signing = await webhook_secrets.signing_secrets(db, only_new, uuid.UUID(hook["id"]), now)
    assert signing == [rotated["secret"], hook["secret"]]
    body = b'{"type":"SubjectErased"}'
    headers = webhook_headers(signing, "evt_1", int(now.timestamp()), body)
    assert Webhook(hook["secret"]).verify(body, headers) == {"type": "SubjectErased"}
    opened = await erasure_capture.open_capture(db, only_new, event_id)
    assert opened == [{"type": "email", "value": "rewrap@example.com"}]
