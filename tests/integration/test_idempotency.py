"""Idempotency-Key: a retried command never becomes two events, even if an answer was lost."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from schemas.codec import default_codec, kafka_headers
from services.api.commands import Context, grant_consent
from services.config import Settings
from services.http.body import Fields
from services.ledger import idempotency
from services.ledger.kafka_clients import new_producer
from services.rules.catalogue import load_catalogue
from tests.faults.ledger_check import wait_caught_up
from tests.writer_macs import sealed

pytestmark = pytest.mark.integration

BODY = {"purpose": "newsletter", "channel": "email", "method": "form"}


async def history(api: httpx.AsyncClient, subject: str, token: str) -> list[str]:
    response = await api.get(f"/v1/subjects/{subject}/events", params={"min_token": token})
    assert response.status_code == 200, response.text
    return [e["event_id"] for e in response.json()["events"]]


async def test_same_key_and_body_give_the_same_event_once(api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "order-1"}
    first = await api.post("/v1/subjects/idem-1/consents", json=BODY, headers=headers)
    again = await api.post("/v1/subjects/idem-1/consents", json=BODY, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["event_id"] == first.json()["event_id"]
    assert again.json()["token"] == first.json()["token"]
    assert again.headers["idempotent-replayed"] == "true"
    assert await history(api, "idem-1", again.json()["token"]) == [first.json()["event_id"]]


async def test_same_key_with_another_body_is_refused(api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "order-2"}
    first = await api.post("/v1/subjects/idem-2/consents", json=BODY, headers=headers)
    assert first.status_code == 201
    other = await api.post(
        "/v1/subjects/idem-2/consents", json={**BODY, "channel": None}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    elsewhere = await api.post("/v1/subjects/idem-3/consents", json=BODY, headers=headers)
    assert elsewhere.status_code == 422
    assert await history(api, "idem-2", first.json()["token"]) == [first.json()["event_id"]]


async def test_a_lost_first_answer_is_completed_by_the_retry_with_the_same_event(
    api: httpx.AsyncClient, settings: Settings, db: asyncpg.Connection
) -> None:
    """The first attempt claimed the key and may or may not have reached the broker (here it
    did, but its answer was lost); the retry sends the same bytes, and history holds one event."""
    codec = default_codec()
    catalogue = load_catalogue(settings.catalogue_file)
    (event,) = grant_consent(Fields(dict(BODY)), Context("idem-4", datetime.now(UTC), catalogue))
    value = codec.encode(event)
    digest = idempotency.request_digest("consents", "idem-4", dict(BODY))
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        stored = idempotency.key_hash(settings.secrets().blind_index_key, "order-4")
        claim = await idempotency.claim(pool, stored, digest, "idem-4", [event.event_id], [value])
        assert claim.first
    finally:
        await pool.close()
    producer = new_producer(settings.kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic,
            value,
            key=b"idem-4",
            headers=sealed(b"idem-4", value, kafka_headers(event)),
        )
    finally:
        await producer.stop()

    retry = await api.post(
        "/v1/subjects/idem-4/consents", json=BODY, headers={"Idempotency-Key": "order-4"}
    )
    assert retry.status_code == 201
    assert retry.json()["event_id"] == str(event.event_id)
    assert await history(api, "idem-4", retry.json()["token"]) == [str(event.event_id)]

    await wait_caught_up(settings, 30)  # both records, and the purpose catalogue's
    assert await db.fetchval("SELECT count(*) FROM journal WHERE subject_id = 'idem-4'") == 1
    rows = await db.fetch("SELECT event_id FROM subject_facts WHERE subject_id = 'idem-4'")
    assert [r["event_id"] for r in rows] == [event.event_id]
