"""The staleness guard's reads of the projector's reports, against real PostgreSQL: concurrent
decisions without a fresh verdict share one read, a caller that goes away does not spoil it
for the others, and a verdict that is not fresh is read again on the next request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from projections import projector_health
from projections.freshness import Verdict
from projections.projector_health import PartitionReport
from services.config import Settings
from services.reads.projection_health import HealthSnapshot, ProjectionHealth
from tests.writer_macs import TEST_MACS

pytestmark = pytest.mark.integration

PARTITIONS = 2
TABLE = "projector_partitions"


class CountedHealth(ProjectionHealth):
    """The real guard, counting its reads of the reports and able to hold one back."""

    def __init__(self, pool: asyncpg.Pool, topic: str) -> None:
        super().__init__(pool, topic, PARTITIONS, 30_000, TEST_MACS.current_id)
        self.reads = 0
        #: set once a read has begun
        self.reading = asyncio.Event()
        self.hold = asyncio.Event()
        self.hold.set()

    async def callers_held_at_one_read(self, count: int) -> list[asyncio.Task[Verdict]]:
        """`count` concurrent callers, once the read they wait for has begun (held open)."""
        self.hold.clear()
        callers = [asyncio.create_task(self.verdict()) for _ in range(count)]
        await self.reading.wait()
        return callers

    async def snapshot(self) -> HealthSnapshot:
        self.reads += 1
        self.reading.set()
        await self.hold.wait()
        return await super().snapshot()


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(settings.database_url, min_size=1, max_size=4) as made:
        yield made


async def caught_up(db: asyncpg.Connection, topic: str) -> None:
    reports = [PartitionReport(p, 10, 10, 0.0) for p in range(PARTITIONS)]
    await projector_health.report(db, topic, reports, TEST_MACS.key_ids)


async def test_concurrent_requests_without_a_fresh_verdict_share_one_read(
    settings: Settings, pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    await caught_up(db, settings.topic)
    health = CountedHealth(pool, settings.topic)
    waiting = await health.callers_held_at_one_read(32)
    health.hold.set()
    verdicts = await asyncio.gather(*waiting)
    assert health.reads == 1
    assert all(v.fresh for v in verdicts)
    # the fresh verdict is then kept: no read at all
    assert (await health.verdict()).fresh and health.reads == 1


async def test_a_caller_that_goes_away_leaves_the_shared_read_to_the_others(
    settings: Settings, pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    await caught_up(db, settings.topic)
    health = CountedHealth(pool, settings.topic)
    leaving, staying = await health.callers_held_at_one_read(2)
    leaving.cancel()
    health.hold.set()
    assert (await staying).fresh
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert health.reads == 1


async def test_a_verdict_that_is_not_fresh_is_read_again_on_the_next_request(
    settings: Settings, pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    health = CountedHealth(pool, settings.topic)
    first = await health.verdict()
    assert not first.fresh and first.reason == "no projector has reported partition 0, 1 yet"
    await caught_up(db, settings.topic)
    assert (await health.verdict()).fresh
    assert health.reads == 2


async def test_a_failed_read_reaches_every_waiter_and_the_next_request_reads_again(
    settings: Settings, pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    await caught_up(db, settings.topic)
    health = CountedHealth(pool, settings.topic)
    await db.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_away")
    try:
        waiting = await health.callers_held_at_one_read(3)
        health.hold.set()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(o, asyncpg.UndefinedTableError) for o in outcomes)
    finally:
        await db.execute(f"ALTER TABLE {TABLE}_away RENAME TO {TABLE}")
    assert (await health.verdict()).fresh
    assert health.reads == 2
