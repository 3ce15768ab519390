"""The webhook dispatcher against the real broker, PostgreSQL and a real receiving HTTP server:
signatures verified by the Standard Webhooks library, log order per subject, retries after
500s, timeouts and a refused connection, parking and redelivery, two secrets while one
rotates, a slow receiver that delays no other, and an address refused as the dispatcher
connects."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpcore
import pytest

from projections import webhook_deliveries
from services.config import Settings
from services.stack.embedded import free_port
from services.webhooks.sending import AddressRefused, AddressRules, CheckedBackend
from services.webhooks.signing import new_secret
from tests.conftest import make_settings, wait_until
from tests.integration.webhook_support import (
    Received,
    append,
    dispatching,
    receiving,
    statuses,
    subscribe,
    withdrawal,
)
from tests.servers import Servers

pytestmark = pytest.mark.integration

SECRET = new_secret()


async def one_secret(_: uuid.UUID) -> list[str]:
    return [SECRET]


@pytest.fixture
async def hook_settings(real_servers: Servers) -> Settings:
    return await make_settings(real_servers, LEDGER_WEBHOOK_GROUP=f"hooks-{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def conn(hook_settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(hook_settings.database_url)
    try:
        yield c
    finally:
        await c.close()


async def test_signed_in_order_per_subject_with_retries(
    hook_settings: Settings, conn: asyncpg.Connection
) -> None:
    failed_once: set[str] = set()

    async def answer(r: Received) -> int:
        # every subject's first delivery fails once: its later ones must wait for it
        if r.payload["subject_id"] not in failed_once:
            failed_once.add(r.payload["subject_id"])
            return 500
        return 200

    subjects = [f"subj-{i}" for i in range(3)]
    events = [withdrawal(s) for _ in range(4) for s in subjects]
    async with receiving(answer) as receiver:
        sid = await subscribe(conn, receiver.url)
        async with dispatching(hook_settings, one_secret):
            await append(hook_settings, events)

            async def all_acknowledged() -> bool:
                return len(receiver.acknowledged) == len(events)

            await wait_until(all_acknowledged, 60, "every event acknowledged")
    payloads = receiver.verified(SECRET)  # raises on a bad signature
    assert len(payloads) == len(events) + len(subjects)
    for s in subjects:
        sent = [e.event_id for e in events if e.subject_id == s]
        got = [uuid.UUID(r.payload["event_id"]) for r in receiver.acknowledged]
        assert [g for g in got if g in sent] == sent  # log order per subject
    first = receiver.acknowledged[0]
    assert set(first.payload) == {
        "type",
        "event_id",
        "subject_id",
        "occurred_at",
        "recorded_at",
        "data",
    }
    assert first.payload["data"]["purpose"] == "newsletter"
    assert first.webhook_id == f"{first.payload['event_id']}_{sid}"
    retried = [r for r in receiver.received if r.webhook_id == receiver.received[0].webhook_id]
    assert len(retried) == 2  # the same webhook-id on the retry
    assert await statuses(conn, sid) == {"succeeded": len(events)}
    rows = await conn.fetch(
        "SELECT outcome, response_code FROM webhook_attempts ORDER BY started_at"
    )
    assert sum(r["outcome"] == "failed" and r["response_code"] == 500 for r in rows) == 3
    counts = await webhook_deliveries.outcome_counts(conn)
    assert (sid, "succeeded", len(events)) in counts and (sid, "failed", 3) in counts


async def test_timeouts_park_then_redelivery_succeeds(
    hook_settings: Settings, conn: asyncpg.Connection
) -> None:
    release = asyncio.Event()

    async def answer(_: Received) -> int:
        if not release.is_set():
            await release.wait()  # never answers within the timeout
        return 200

    event = withdrawal("slow-subject")
    async with receiving(answer) as receiver:
        sid = await subscribe(conn, receiver.url)
        async with dispatching(hook_settings, one_secret, window=timedelta(seconds=3), timeout_s=1):
            await append(hook_settings, [event])

            async def parked() -> bool:
                return await statuses(conn, sid) == {"parked": 1}

            await wait_until(parked, 60, "the delivery parked")
            outcomes = await conn.fetch("SELECT outcome, response_code FROM webhook_attempts")
            assert len(outcomes) >= 2 and {r["outcome"] for r in outcomes} == {"timeout"}
            assert await conn.fetchval(
                "SELECT failing_since IS NOT NULL FROM webhook_subscriptions WHERE id = $1", sid
            )
            release.set()
            delivery = await conn.fetchval("SELECT id FROM webhook_deliveries")
            assert await webhook_deliveries.redeliver(conn, sid, delivery)
            assert not await webhook_deliveries.redeliver(conn, uuid.uuid4(), delivery)

            async def succeeded() -> bool:
                return await statuses(conn, sid) == {"succeeded": 1}

            await wait_until(succeeded, 30, "the redelivery to succeed")
    health = await conn.fetchrow(
        "SELECT failing_since, last_success_at FROM webhook_subscriptions WHERE id = $1", sid
    )
    assert health is not None
    assert health["failing_since"] is None and health["last_success_at"] is not None
    # the hung requests were answered after the dispatcher gave up on them: not successes
    assert (
        await conn.fetchval("SELECT count(*) FROM webhook_attempts WHERE outcome = 'succeeded'")
        == 1
    )


async def test_both_secrets_sign_while_one_rotates(
    hook_settings: Settings, conn: asyncpg.Connection
) -> None:
    old, new = new_secret(), new_secret()

    async def rotating(_: uuid.UUID) -> list[str]:
        return [new, old]

    async with receiving() as receiver:
        await subscribe(conn, receiver.url)
        async with dispatching(hook_settings, rotating):
            await append(hook_settings, [withdrawal("rotating")])

            async def got() -> bool:
                return len(receiver.acknowledged) == 1

            await wait_until(got, 60, "the delivery")
    assert len(receiver.received[0].signature.split(" ")) == 2
    assert receiver.verified(old) == receiver.verified(new)


async def test_a_slow_receiver_delays_no_other(
    hook_settings: Settings, conn: asyncpg.Connection
) -> None:
    release = asyncio.Event()

    async def hang(_: Received) -> int:
        await release.wait()
        return 200

    events = [withdrawal(f"s-{i}") for i in range(6)]
    async with receiving(hang) as slow, receiving() as quick:
        await subscribe(conn, slow.url)
        await subscribe(conn, quick.url)
        async with dispatching(hook_settings, one_secret, timeout_s=30):
            await append(hook_settings, events)

            async def quick_done() -> bool:
                return len(quick.acknowledged) == len(events)

            await wait_until(quick_done, 60, "the quick receiver to get everything")
            assert slow.acknowledged == []
            release.set()

            async def slow_done() -> bool:
                return len(slow.acknowledged) == len(events)

            await wait_until(slow_done, 60, "the slow receiver to get everything")


async def test_a_refused_connection_is_retried_until_the_receiver_listens(
    hook_settings: Settings, conn: asyncpg.Connection
) -> None:
    port = free_port()  # nothing listens here yet: connecting is refused
    sid = await subscribe(conn, f"http://localhost:{port}/hook")
    async with dispatching(hook_settings, one_secret):
        await append(hook_settings, [withdrawal("down-then-up")])

        async def refused() -> bool:
            return bool(
                await conn.fetchval(
                    "SELECT count(*) FROM webhook_attempts WHERE outcome = 'refused'"
                )
            )

        await wait_until(refused, 60, "a refused connection")
        assert await statuses(conn, sid) == {"pending": 1}  # to be tried again, not parked
        async with receiving(port=port) as receiver:

            async def succeeded() -> bool:
                return await statuses(conn, sid) == {"succeeded": 1}

            await wait_until(succeeded, 60, "the retry to reach the receiver")
    assert [p["subject_id"] for p in receiver.verified(SECRET)] == ["down-then-up"]
    attempts = await conn.fetch(
        "SELECT outcome, response_code, error FROM webhook_attempts ORDER BY attempt"
    )
    *before, last = attempts
    assert before and all(a["outcome"] == "refused" for a in before), attempts
    assert all(a["response_code"] is None for a in before)
    assert "could not connect" in before[0]["error"], before[0]["error"]
    assert (last["outcome"], last["response_code"]) == ("succeeded", 204)


async def test_an_address_refused_at_delivery(
    hook_settings: Settings, conn: asyncpg.Connection
) -> None:
    async with receiving() as receiver:
        sid = await subscribe(conn, receiver.url)
        # loopback was allowed when the subscription was made, not any more
        async with dispatching(hook_settings, one_secret, allow_loopback=False):
            await append(hook_settings, [withdrawal("refused")])

            async def refused() -> bool:
                return bool(
                    await conn.fetchval(
                        "SELECT count(*) FROM webhook_attempts WHERE outcome = 'refused'"
                    )
                )

            await wait_until(refused, 60, "a refused attempt")
    assert receiver.received == []
    assert await statuses(conn, sid) == {"pending": 1}


async def test_the_connection_goes_only_to_a_checked_address() -> None:
    """A host name is resolved and checked as the dispatcher connects (no DNS rebinding past
    a check made earlier): localhost resolves to loopback, refused unless allowed."""
    async with receiving() as receiver:
        refusing = CheckedBackend(AddressRules(allow_loopback=False, allow_private=False))
        with pytest.raises(AddressRefused, match="localhost"):
            await refusing.connect_tcp("localhost", receiver.port)
        allowing = CheckedBackend(AddressRules(allow_loopback=True, allow_private=False))
        stream = await allowing.connect_tcp("localhost", receiver.port)
        await stream.aclose()
        with pytest.raises(httpcore.ConnectError):
            await allowing.connect_tcp("no-such-host.invalid", 443)
