"""The webhook deliveries' upkeep against the real PostgreSQL (and the API where a route
answers): a redelivery's retry schedule, redelivering to a disabled subscription, the queue
gauges, retention of parked deliveries and of purged subjects' deliveries, the life of an
erasure capture, a deleted subscription's counts, the deliveries list's bad cursors, and the
indexes the list and the gauges read."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from projections import webhook_deliveries as deliveries
from projections import webhook_queue as queue
from projections import webhook_retention as retention
from projections.webhook_deliveries import Attempt
from schemas import events as ev
from services.config import Settings
from services.proof.retention import purge_due
from services.rules.catalogue import load_catalogue
from services.rules.webhook_delivery import next_attempt_at
from services.webhooks import erasure_capture
from tests.integration.webhook_support import subscribe

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
URL = "https://hooks.example.com/in"
#: a claim's lease in these tests: longer than any of them runs
LEASE_S = 300.0


async def delivery(
    conn: asyncpg.Connection,
    sid: uuid.UUID,
    *,
    subject: str = "s-1",
    status: str = deliveries.PENDING,
    attempts: int = 0,
    event_type: str = ev.CONSENT_WITHDRAWN,
    event_id: uuid.UUID | None = None,
    created_at: datetime | None = None,
    last_attempt_at: datetime | None = None,
    offset: int = 0,
) -> uuid.UUID:
    did = uuid.uuid4()
    await conn.execute(
        "INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, subject_id,"
        " log_partition, log_offset, payload, status, attempts, created_at, next_attempt_at,"
        " last_attempt_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $9, $10, $11, $12)",
        did,
        sid,
        event_id or uuid.uuid4(),
        event_type,
        subject,
        offset,
        json.dumps({"type": event_type, "data": {}}),
        status,
        attempts,
        created_at or NOW,
        NOW if status == deliveries.PENDING else None,
        last_attempt_at,
    )
    return did


async def test_a_redelivery_starts_the_retry_schedule_again(db: asyncpg.Connection) -> None:
    sid = await subscribe(db, URL)
    did = await delivery(db, sid, status=deliveries.PARKED, attempts=9, last_attempt_at=NOW)
    assert await deliveries.redeliver(db, sid, did)
    (due,) = await queue.claim(db, sid, 10, LEASE_S)
    assert due.retry_attempts == 0
    # the first retry after a redelivery comes within a second, not an hour
    again = next_attempt_at(
        failed_attempts=due.retry_attempts + 1,
        failed_at=NOW,
        window_from=due.retry_from,
        window=timedelta(hours=24),
        draw=0.999,
    )
    assert again is not None and again <= NOW + timedelta(seconds=1)
    failed = Attempt(NOW, 5, 500, deliveries.FAILED, "answered 500")
    assert await queue.record(_pool(db), due, failed, NOW)
    (second,) = await queue.claim(db, sid, 10, LEASE_S)
    assert (second.attempts, second.retry_attempts) == (10, 1)


def _pool(conn: asyncpg.Connection) -> Any:
    """`record` takes a pool: one connection stands in for it."""

    class One:
        def acquire(self) -> Any:
            return _Borrowed(conn)

    return One()


class _Borrowed:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def __aenter__(self) -> asyncpg.Connection:
        return self.conn

    async def __aexit__(self, *_: object) -> None:
        return None


async def test_redelivery_to_a_disabled_webhook_is_a_409(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    sid = await subscribe(db, URL)
    did = await delivery(db, sid, status=deliveries.PARKED, attempts=3, last_attempt_at=NOW)
    await db.execute("UPDATE webhook_subscriptions SET enabled = false WHERE id = $1", sid)
    path = f"/v1/webhooks/{sid}/deliveries/{did}/redeliver"
    refused = await api.post(path)
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "disabled" in refused.json()["detail"]
    assert await db.fetchval("SELECT status FROM webhook_deliveries WHERE id = $1", did) == "parked"
    await db.execute("UPDATE webhook_subscriptions SET enabled = true WHERE id = $1", sid)
    assert (await api.post(path)).status_code == 202


@pytest.mark.parametrize(
    "cursor_time",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
        "2026-01-01T00:00:00",  # no offset
    ],
)
async def test_a_cursor_out_of_range_is_a_422(
    api: httpx.AsyncClient, db: asyncpg.Connection, cursor_time: str
) -> None:
    sid = await subscribe(db, URL)
    cursor = base64.urlsafe_b64encode(f"{cursor_time}|{uuid.uuid4()}".encode()).decode()
    answer = await api.get(f"/v1/webhooks/{sid}/deliveries", params={"cursor": cursor})
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["cursor"]


@pytest.mark.parametrize("limit", ["²", "١٢", "1e2", "-1", "0", "501"])
async def test_a_limit_that_is_not_ascii_digits_in_range_is_a_422(
    api: httpx.AsyncClient, db: asyncpg.Connection, limit: str
) -> None:
    sid = await subscribe(db, URL)
    answer = await api.get(f"/v1/webhooks/{sid}/deliveries", params={"limit": limit})
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["limit"]


async def test_the_gauges_leave_disabled_subscriptions_out(db: asyncpg.Connection) -> None:
    live, held = await subscribe(db, URL), await subscribe(db, URL)
    await delivery(db, live, created_at=NOW - timedelta(minutes=2))
    await delivery(db, held, created_at=NOW - timedelta(days=3))
    await delivery(db, held, subject="s-2", created_at=NOW - timedelta(days=3))
    await db.execute("UPDATE webhook_subscriptions SET enabled = false WHERE id = $1", held)
    gauges = {g.subscription_id: g for g in await deliveries.queue_gauges(db)}
    assert set(gauges) == {live}
    assert gauges[live].depth == 1
    assert 100 < gauges[live].oldest_pending_s < 3600


async def test_a_deleted_subscription_takes_its_counts_along(db: asyncpg.Connection) -> None:
    kept, gone = await subscribe(db, URL), await subscribe(db, URL)
    for sid in (kept, gone):
        await db.execute(
            "INSERT INTO webhook_outcome_counts (subscription_id, outcome, count)"
            " VALUES ($1, 'succeeded', 3), ($1, 'parked', 1)",
            sid,
        )
    await db.execute("DELETE FROM webhook_subscriptions WHERE id = $1", gone)
    assert {s for s, _, _ in await deliveries.outcome_counts(db)} == {kept}


async def test_parked_deliveries_expire_and_purged_subjects_leave_none(
    db: asyncpg.Connection,
) -> None:
    sid = await subscribe(db, URL)
    old = NOW - timedelta(days=31)
    stale = await delivery(db, sid, status=deliveries.PARKED, last_attempt_at=old, created_at=old)
    recent = await delivery(
        db, sid, subject="s-2", status=deliveries.PARKED, last_attempt_at=NOW - timedelta(days=29)
    )
    assert await retention.purge_parked(db, 30) == 1
    left = {r["id"] for r in await db.fetch("SELECT id FROM webhook_deliveries")}
    assert stale not in left and recent in left

    # an erased subject whose proof `retention` purged keeps no delivery, whatever its status
    for status in (deliveries.PENDING, deliveries.PARKED, deliveries.SUCCEEDED):
        await delivery(db, sid, subject="s-erased", status=status, last_attempt_at=NOW)
    await db.execute(
        "INSERT INTO erasures (subject_id, event_id, ground, erased_at, suppressed, purged_at)"
        " VALUES ('s-erased', $1, 'consent_withdrawn', $2, 0, $2)",
        uuid.uuid4(),
        NOW,
    )
    assert await retention.purge_purged_subjects(db) == 3
    assert await db.fetchval("SELECT count(*) FROM webhook_deliveries") == 1


async def test_the_retention_job_deletes_a_purged_subjects_deliveries(
    settings: Settings, db: asyncpg.Connection
) -> None:
    sid = await subscribe(db, URL)
    await delivery(db, sid, subject="s-gone", status=deliveries.PARKED, last_attempt_at=NOW)
    kept = await delivery(db, sid, subject="s-here")
    long_ago = NOW - timedelta(days=365 * 30)
    await db.execute(
        "INSERT INTO erasures (subject_id, event_id, ground, erased_at, suppressed)"
        " VALUES ('s-gone', $1, 'consent_withdrawn', $2, 0)",
        uuid.uuid4(),
        long_ago,
    )
    await db.execute(
        "INSERT INTO journal (event_id, subject_id, event_type, occurred_at, recorded_at,"
        " log_partition, log_offset, payload, record_value, chain_hash)"
        " VALUES ($1, 's-gone', 'SubjectErased', $2, $2, 0, 0, '{}', '\\x00', $3)",
        uuid.uuid4(),
        long_ago,
        b"\x00" * 32,
    )
    catalogue = load_catalogue(settings.catalogue_file)
    outcome = await purge_due(db, settings.topic, catalogue, NOW, dry_run=False)
    assert [s for s, _ in outcome.purged] == ["s-gone"]
    assert [r["id"] for r in await db.fetch("SELECT id FROM webhook_deliveries")] == [kept]


async def test_no_erasure_capture_outlives_the_retry_window(db: asyncpg.Connection) -> None:
    """A SubjectErased pending for a disabled subscription with include_identifiers keeps its
    capture only for the retry window (and the grace): then its delivery says
    identifiers_withheld."""
    sid = await subscribe(db, URL, [ev.SUBJECT_ERASED])
    await db.execute(
        "UPDATE webhook_subscriptions SET enabled = false, include_identifiers = true"
        " WHERE id = $1",
        sid,
    )
    old, young = uuid.uuid4(), uuid.uuid4()
    for event_id, age in ((old, timedelta(hours=26)), (young, timedelta(hours=2))):
        await delivery(db, sid, event_type=ev.SUBJECT_ERASED, event_id=event_id, subject="s-x")
        await db.execute(
            "INSERT INTO webhook_erasure_identifiers (event_id, subject_id, master_key_id,"
            " wrapped_key, sealed, captured_at) VALUES ($1, 's-x', 'k', '\\x00', '\\x00', $2)",
            event_id,
            NOW - age,
        )
    window, grace = timedelta(hours=24), timedelta(hours=1)
    assert await erasure_capture.forget_orphans(db, window, grace) == [old]
    assert await db.fetchval("SELECT event_id FROM webhook_erasure_identifiers") == young


async def _plan(conn: asyncpg.Connection, sql: str, *args: object) -> str:
    """The plan's node types and index names, with sequential scans and bitmaps off (so a
    missing index shows as a sort or a sequential scan, whatever the table's size)."""
    async with conn.transaction():
        await conn.execute(
            "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;"
            " SET LOCAL plan_cache_mode = force_custom_plan"
        )
        plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    return json.dumps(json.loads(plan))


@pytest.mark.parametrize("status", [None, deliveries.PARKED])
async def test_the_list_pages_from_an_index_without_sorting(
    db: asyncpg.Connection, status: str | None
) -> None:
    sid = await subscribe(db, URL)
    for n in range(20):
        await delivery(db, sid, subject=f"s-{n}", created_at=NOW - timedelta(seconds=n))
    await db.execute("ANALYZE webhook_deliveries")
    plan = await _plan(db, deliveries.LISTING, sid, status, NOW, uuid.uuid4(), 51)
    assert "Sort" not in plan and "Seq Scan" not in plan, plan


async def test_the_gauges_read_the_pending_age_index(db: asyncpg.Connection) -> None:
    sid = await subscribe(db, URL)
    for n in range(20):
        await delivery(db, sid, subject=f"s-{n}")
    await db.execute("VACUUM ANALYZE webhook_deliveries")
    plan = await _plan(db, deliveries.QUEUE_GAUGES)
    assert "webhook_deliveries_pending_age" in plan, plan
