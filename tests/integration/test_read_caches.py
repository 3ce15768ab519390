"""What an API process keeps in memory for decisions, against the real PostgreSQL: the notice
cache is never behind the snapshot a decision reads, the projection's progress wakes every
min_token waiter from one read of the stored offsets per notification, and concurrent
decisions' state reads share one statement that answers each as a read of its own would."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest

from projections import notices, offsets, subject_state
from projections.outdating import Notice
from projections.runner import NOTIFY_CHANNEL
from projections.state import Fact
from services.bootstrap import database_connector
from services.config import Settings
from services.reads.coalescer import Coalescer
from services.reads.notice_cache import REFRESH_S, NoticeCache
from services.reads.progress import ProjectionProgress

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


def notice(version: str, offset: int) -> Notice:
    return Notice(
        version=version,
        effective_from=datetime(2024, 1, offset + 1, tzinfo=UTC),
        text_sha256=hashlib.sha256(version.encode()).hexdigest(),
        url=f"https://example.com/privacy/{version}",
        material=True,
        event_id=uuid4(),
        published_at=datetime.now(UTC),
        position=(0, offset),
    )


async def applied_count(pool: asyncpg.Pool, settings: Settings) -> int:
    """The count a decision's snapshot sees, read the way the decision reads it."""
    _, _, applied = await subject_state.load_counted(pool, "nobody", settings.topic, 0)
    return applied


async def test_the_notice_cache_is_never_behind_the_decisions_snapshot(
    pool: asyncpg.Pool, db: asyncpg.Connection, settings: Settings
) -> None:
    moment = [0.0]
    cache = NoticeCache(pool, clock=lambda: moment[0])
    empty = await cache.covering(await applied_count(pool, settings))
    assert empty.by_version == {}

    for n, version in enumerate(["v1", "v2"]):
        await notices.insert(db, [notice(version, n)])
        applied = await applied_count(pool, settings)
        assert applied == n + 1
        seen = await cache.covering(applied)
        assert sorted(seen.by_version) == ["v1", "v2"][: n + 1]
        assert await cache.covering(applied) is seen  # read once, then kept

    # a snapshot older than the cache (read before v2 was applied) keeps the newer cache
    assert sorted((await cache.covering(1)).by_version) == ["v1", "v2"]

    # a table that shrank (a restored database) is seen by the periodic reload
    await db.execute("DELETE FROM notices WHERE version = 'v2'")
    assert "v2" in (await cache.covering(1)).by_version
    moment[0] += REFRESH_S
    assert sorted((await cache.covering(1)).by_version) == ["v1"]


async def test_every_waiter_wakes_on_one_notification(
    pool: asyncpg.Pool, db: asyncpg.Connection, settings: Settings
) -> None:
    await offsets.store(db, settings.topic, {0: 3})
    progress = ProjectionProgress(pool, settings.topic)
    await progress.start(database_connector(settings))
    try:
        assert progress.listening
        assert progress.positions == {0: 3}  # read when listening starts
        assert await progress.wait_for(0, 3, 0.01)

        async def apply_a_batch() -> bool:
            async with db.transaction():  # as the projector does: offsets, then NOTIFY
                await offsets.store(db, settings.topic, {0: 7, 1: 9})
                await db.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
            return True

        # gather starts the waiters first: they are all waiting when the batch commits
        waited = await asyncio.gather(
            *(progress.wait_for(p, 7, 5) for p in (0, 0, 1) * 10), apply_a_batch()
        )
        assert waited == [True] * 31
        assert not await progress.wait_for(2, 1, 0.3)  # nothing there: times out
    finally:
        await progress.close()


async def test_without_a_listener_a_waiter_reads_the_offsets_itself(
    pool: asyncpg.Pool, db: asyncpg.Connection, settings: Settings
) -> None:
    progress = ProjectionProgress(pool, settings.topic)  # never started: no listener
    await offsets.store(db, settings.topic, {2: 4})
    assert not progress.listening
    assert await progress.wait_for(2, 4, 2)
    assert progress.positions == {2: 4}


def fact(n: int, kind: str, scope_a: str, scope_b: str, event_type: str) -> Fact:
    return Fact(
        kind,
        scope_a,
        scope_b,
        event_type,
        uuid4(),
        (n % 3, n),
        datetime(2025, 1, 1 + n, tzinfo=UTC),
    )


async def test_concurrent_decision_reads_share_a_statement_and_match_single_reads(
    pool: asyncpg.Pool, db: asyncpg.Connection, settings: Settings
) -> None:
    held = {
        "s-a": [fact(0, "consent", "newsletter", "email", "ConsentGranted")],
        "s-b": [
            fact(1, "consent", "newsletter", "*", "ConsentWithdrawn"),
            fact(2, "dm_objection", "*", "*", "DirectMarketingObjected"),
        ],
    }
    await subject_state.upsert(db, [(s, f) for s, facts in held.items() for f in facts])
    await offsets.store(db, settings.topic, {0: 5, 2: 9})
    await notices.insert(db, [notice("v1", 0)])
    asked = [("s-a", 0), ("s-b", 2), ("s-none", 1), ("s-a", 0)]

    statements: list[int] = []

    async def counted(
        keys: Sequence[tuple[str, int]],
    ) -> dict[tuple[str, int], subject_state.Loaded]:
        statements.append(len(keys))
        return await subject_state.load_many(pool, settings.topic, keys)

    reads = Coalescer(counted)
    together = await asyncio.gather(*(reads.get(k) for k in asked))
    assert statements == [3]  # one statement for the three distinct subjects
    for (subject_id, partition), loaded in zip(asked, together, strict=True):
        alone = await subject_state.load_counted(pool, subject_id, settings.topic, partition)
        assert loaded == alone
    assert together[0][0] == {f.key: f for f in held["s-a"]}
    assert together[1][1:] == (9, 1)
    assert together[2] == ({}, 0, 1)  # no facts, a partition with no stored offset yet
