"""Undecodable records of the event topic reach the dead-letter topic with their bytes, source
position and error, while the projector goes on; /metrics and /readyz count them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import TopicPartition

from projections import dead_letters
from projections.dead_letters import DeadLetter
from services.bootstrap import publishing_sessions
from services.config import Settings
from services.ledger.kafka_clients import new_consumer, new_producer
from services.ledger.topic import highwaters
from services.projector.dead_letter_feed import DeadLetterFeed
from tests.conftest import running_api, running_projector, wait_until
from tests.integration.replay import answers_decisions, caught_up, produce_log
from tests.writer_macs import sealed

pytestmark = pytest.mark.integration

UNKNOWN_FINGERPRINT = b"\xc3\x01" + b"\xff" * 8 + b"\x00"


@contextlib.asynccontextmanager
async def running_dead_letter_feed(settings: Settings) -> AsyncIterator[DeadLetterFeed]:
    feed = DeadLetterFeed(settings, sessions=publishing_sessions(settings))
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    try:
        yield feed
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def read_dead_letters(settings: Settings) -> list[tuple[int, int, DeadLetter]]:
    """Every record of the dead-letter topic: (its partition, its offset, the letter)."""
    topic = settings.dead_letter_topic
    marks = await highwaters(settings.kafka, topic)
    consumer = new_consumer(settings.kafka, enable_auto_commit=False)
    await consumer.start()
    found: list[tuple[int, int, DeadLetter]] = []
    try:
        tps = [TopicPartition(topic, p) for p in sorted(marks)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        read = dict.fromkeys(marks, 0)

        async def done() -> bool:
            fetched = await consumer.getmany(*tps, timeout_ms=100)
            for tp, messages in fetched.items():
                for m in messages:
                    letter = dead_letters.from_record(m.key, m.value, list(m.headers))
                    found.append((tp.partition, m.offset, letter))
                    read[tp.partition] = m.offset + 1
            return all(read[p] >= end for p, end in marks.items())

        await wait_until(done, 60, "the dead-letter topic to be read")
    finally:
        await consumer.stop()
    return found


async def test_undecodable_records_are_dead_lettered_and_the_projector_goes_on(
    settings: Settings, db: asyncpg.Connection
) -> None:
    producer = new_producer(settings.kafka, acks="all")
    await producer.start()
    try:
        # written by a ledger (MACed) that knows schemas this one does not, or by a bug
        first, *_ = [
            await producer.send_and_wait(
                settings.topic, value, key=b"poison-1", headers=sealed(b"poison-1", value)
            )
            for value in (b"\x00garbage", UNKNOWN_FINGERPRINT, None)
        ]
    finally:
        await producer.stop()
    sent = await produce_log(settings, count=20, subjects=3, seed=5)

    async def all_published() -> bool:
        return (await dead_letters.counts(db, settings.topic))[1] == 0

    async with (
        running_projector(settings),
        running_dead_letter_feed(settings) as feed,
        running_api(settings) as api,
    ):
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to pass the poison")
        await wait_until(all_published, 60, "the dead letters to be published")
        # the projector reports its positions about once a second, after the batch
        await wait_until(lambda: answers_decisions(api), 60, "the projector to report")
        metrics = (await api.get("/metrics")).text.splitlines()
        ready = await api.get("/readyz")
    assert feed.published == 3

    journaled = await db.fetchval("SELECT count(*) FROM journal")
    # the records after the poison were applied: 20 events, a retried one sent twice at most
    assert journaled == 20 <= sent
    letters = await read_dead_letters(settings)
    p, at = first.partition, first.offset
    assert [(x.topic, x.partition, x.offset, x.key) for _, _, x in letters] == [
        (settings.topic, p, at + n, b"poison-1") for n in range(3)
    ]
    assert [x.reason for _, _, x in letters] == [dead_letters.UNDECODABLE] * 3
    assert [x.value for _, _, x in letters] == [b"\x00garbage", UNKNOWN_FINGERPRINT, None]
    errors = [x.error for _, _, x in letters]
    assert "magic" in errors[0] and "fingerprint" in errors[1] and "no value" in errors[2]
    # each letter is kept, in the same words, where it was rejected
    kept = await db.fetch(
        "SELECT log_offset, error, reason FROM rejected_records WHERE topic = $1"
        " ORDER BY log_offset",
        settings.topic,
    )
    assert [r["error"] for r in kept] == errors
    assert {r["reason"] for r in kept} == {dead_letters.UNDECODABLE}
    # the outbox names where each letter went
    rows = await db.fetch(
        "SELECT dead_letter_partition, dead_letter_offset FROM dead_letter_outbox"
        " WHERE published_at IS NOT NULL ORDER BY log_offset"
    )
    assert [(r[0], r[1]) for r in rows] == [(dp, do) for dp, do, _ in letters]

    assert "ledger_dead_letters_total 3" in metrics
    assert "ledger_dead_letters_unpublished 0" in metrics
    # dead letters do not make the ledger unready: the projector went on
    assert ready.status_code == 200, ready.text
    assert ready.json()["projector"]["dead_letters"] == 3
    assert ready.json()["projector"]["dead_letters_unpublished"] == 0
