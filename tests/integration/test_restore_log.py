"""`consent-ledger restore-log` and `up`'s restore against the real servers: a lost topic comes
back from the database record for record at the same offsets, the stored offsets equal the new
high-water marks, the projector goes on to a clean replay's state, and offsets the database no
longer holds get placeholders."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import replace

import asyncpg
import pytest

from projections import log_digest, offsets, webhook_fanout
from projections.dead_letters import RESTORE_PLACEHOLDER
from projections.hash_chain import GENESIS, records_digest
from projections.log_records import Record
from projections.runner import apply_batch
from schemas.codec import default_codec
from schemas.record_mac import EVENTS, Verdict, decode_headers
from services.config import Settings
from services.ledger.topic import ensure_topic, highwaters
from services.operations.restore_log import (
    RestoreRefused,
    report,
    restore_if_log_empty,
    restore_log,
)
from services.operations.restore_plan import PLACEHOLDER_ERROR, PLACEHOLDER_HEADERS, PLACEHOLDER_KEY
from tests.conftest import make_settings, running_projector, wait_until
from tests.integration.chain_log import produce_events
from tests.integration.replay import caught_up, clean_replay, produce_log, snapshot
from tests.integration.topic_records import Seen, all_records, produce_raw, run_cli
from tests.integration.webhook_support import subscribe
from tests.servers import Servers
from tests.writer_macs import TEST_MACS, sealed

pytestmark = pytest.mark.integration


async def lost(settings: Settings) -> Settings:
    """The same database with a new, empty event topic: the old one stands for a lost topic."""
    fresh = replace(settings, topic=f"{settings.topic}.restored")
    await ensure_topic(fresh)
    return fresh


def position(seen: Seen) -> tuple[int, int]:
    return seen.partition, seen.offset


async def test_restore_log_brings_the_topic_back_and_the_projector_goes_on(
    settings: Settings, db: asyncpg.Connection, real_servers: Servers
) -> None:
    await produce_log(settings, count=400, subjects=30, seed=31)
    garbage: list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]] = [
        (p, b"poison", b"\x00garbage%d" % p, []) for p in range(4)
    ]
    await produce_raw(settings.kafka, settings.topic, garbage)
    async with running_projector(settings):
        await wait_until(lambda: caught_up(settings, db), 90, "the projector to catch up")
    original = await all_records(settings.kafka, settings.topic)
    assert await db.fetchval("SELECT count(*) FROM duplicate_records") > 0

    target = await lost(settings)
    done = run_cli(target, "restore-log", "--from-topic", settings.topic, "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"restore-log: {len(original):,} records to {target.topic}" in done.stdout

    restored = await all_records(target.kafka, target.topic)
    assert [(position(s), s.key, s.value) for s in restored] == [
        (position(s), s.key, s.value) for s in original
    ]
    # events keep their headers; the undecodable records had none
    assert [s.headers for s in restored] == [s.headers for s in original]
    marks = await highwaters(target.kafka, target.topic)
    assert await offsets.load(db, target.topic) == {p: n for p, n in marks.items() if n}
    assert not await offsets.load(db, settings.topic)

    refused = run_cli(target, "restore-log", "--no-progress")
    assert refused.returncode == 2
    assert f"topic {target.topic} is not empty" in refused.stderr
    again = run_cli(target, "restore-log", "--from-topic", settings.topic, "--no-progress")
    assert again.returncode == 2
    assert f"the database already holds rows of topic {target.topic}" in again.stderr

    # the projector goes on from the restored log with new events
    await produce_log(target, count=120, subjects=30, seed=32)
    async with running_projector(target):
        await wait_until(lambda: caught_up(target, db), 90, "the projector to catch up")
    assert await snapshot(db) == await clean_replay(real_servers, target)


async def test_offsets_the_database_no_longer_holds_get_placeholders(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await produce_events(settings, count=150, subjects=6, seed=41, garbage=2)
    async with running_projector(settings):
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to catch up")
    original = await all_records(settings.kafka, settings.topic)
    # an erased subject's proof purged as `retention` does: its entries and repeats go
    purged = {
        (r["log_partition"], r["log_offset"])
        for r in await db.fetch(
            "SELECT log_partition, log_offset FROM journal WHERE subject_id = 'subj-3'"
            " UNION ALL SELECT d.log_partition, d.log_offset FROM duplicate_records d"
            " JOIN journal j USING (event_id) WHERE j.subject_id = 'subj-3'"
        )
    }
    await db.execute(
        "DELETE FROM duplicate_records WHERE event_id IN"
        " (SELECT event_id FROM journal WHERE subject_id = 'subj-3')"
    )
    await db.execute("DELETE FROM journal WHERE subject_id = 'subj-3'")
    (gap_partition,) = {p for p, _ in purged}
    before = {s.partition: s for s in await log_digest.states(db, settings.topic)}

    target = await lost(settings)
    result = await restore_log(target, db, source_topic=settings.topic)
    assert result.restarted == [gap_partition]
    assert result.sources["placeholder"] == len(purged)
    assert result.records == len(original)

    restored = await all_records(target.kafka, target.topic)
    assert [position(s) for s in restored] == [position(s) for s in original]
    for was, now in zip(original, restored, strict=True):
        if position(was) in purged:
            # a record the ledger writes now: MACed, so a replay finds it undecodable, not forged
            assert (now.key, now.value) == (PLACEHOLDER_KEY, None)
            assert now.headers == tuple(sealed(PLACEHOLDER_KEY, None, PLACEHOLDER_HEADERS))
        else:
            # every other record keeps its MAC header as the ledger first wrote it
            assert (now.key, now.value, now.headers) == (was.key, was.value, was.headers)
        assert TEST_MACS.verify(EVENTS, now.key, now.value, now.headers) is Verdict.VALID
    marks = await highwaters(target.kafka, target.topic)
    assert await offsets.load(db, target.topic) == {p: n for p, n in marks.items() if n}
    kept = await db.fetch(
        "SELECT log_partition, log_offset, error, record_key, record_value, reason,"
        " record_headers FROM rejected_records WHERE topic = $1 AND error = $2",
        target.topic,
        PLACEHOLDER_ERROR,
    )
    assert {(r["log_partition"], r["log_offset"]) for r in kept} == purged
    assert {(bytes(r["record_key"]), r["record_value"]) for r in kept} == {(PLACEHOLDER_KEY, None)}
    assert {r["reason"] for r in kept} == {RESTORE_PLACEHOLDER}
    assert {decode_headers(r["record_headers"]) for r in kept} == {
        tuple(sealed(PLACEHOLDER_KEY, None, PLACEHOLDER_HEADERS))
    }

    # the partition with placeholders starts its digest again over the restored log; the
    # others keep theirs, which the restored records still match
    after = {s.partition: s for s in await log_digest.states(db, target.topic)}
    mine = [(s.offset, s.value) for s in restored if s.partition == gap_partition]
    assert after[gap_partition] == log_digest.PartitionDigest(
        gap_partition, 0, len(mine), len(mine), GENESIS, records_digest(GENESIS, mine)
    )
    for partition, state in before.items():
        if partition != gap_partition:
            assert after[partition] == state
            records = [(s.offset, s.value) for s in restored if s.partition == partition]
            assert state.digest == records_digest(GENESIS, records)

    with pytest.raises(RestoreRefused, match=f"topic {target.topic} is not empty"):
        await restore_log(target, db)


async def test_up_restores_an_empty_topic_the_database_knows(
    settings: Settings, db: asyncpg.Connection, real_servers: Servers
) -> None:
    """`up` finds the topic it projected empty (the embedded broker restarted): here the
    records of another topic were applied under the name of an empty one."""
    await produce_events(settings, count=90, subjects=9, seed=51, garbage=1)
    original = await all_records(settings.kafka, settings.topic)
    target = await lost(settings)
    records = [Record(s.partition, s.offset, s.key, s.value, s.headers) for s in original]
    await apply_batch(db, default_codec(), target.topic, records, TEST_MACS)
    await db.execute(
        "INSERT INTO idempotency_keys (idempotency_key, request_digest, event_ids, record_values,"
        " subject_id, ack_partitions, ack_offsets) VALUES ($1, '', '{}', '{}', 'subj-1', '{0}',"
        " '{1}')",
        f"key-{uuid.uuid4()}",
    )

    assert await restore_if_log_empty(target, db) == len(original)
    restored = await all_records(target.kafka, target.topic)
    assert [(position(s), s.key, s.value, s.headers) for s in restored] == [
        (position(s), s.key, s.value, s.headers) for s in original
    ]
    # acknowledged positions are forgotten: a retry looks in the journal
    forgotten = "SELECT count(*) FROM idempotency_keys WHERE ack_offsets IS NOT NULL"
    assert await db.fetchval(forgotten) == 0
    assert await restore_if_log_empty(target, db) == 0  # not empty any more
    nothing = await make_settings(real_servers)
    async with contextlib.AsyncExitStack() as stack:
        fresh_db = await asyncpg.connect(nothing.database_url)
        stack.push_async_callback(fresh_db.close)
        assert await restore_if_log_empty(nothing, fresh_db) == 0  # nothing to restore


async def test_the_webhook_positions_come_back_to_the_restored_ends(
    settings: Settings, db: asyncpg.Connection
) -> None:
    """A dispatcher that fanned out records the projector never applied holds positions past
    the restored log's ends, and deliveries of events the ledger no longer holds: the restore
    moves the positions back (the events appended next take those offsets) and deletes the
    deliveries still to be sent, before anything is appended."""
    await produce_events(settings, count=60, subjects=6, seed=61)
    original = await all_records(settings.kafka, settings.topic)
    target = await lost(settings)
    records = [Record(s.partition, s.offset, s.key, s.value, s.headers) for s in original]
    await apply_batch(db, default_codec(), target.topic, records, TEST_MACS)
    ends = await offsets.load(db, target.topic)
    empty = max(ends) + 1  # a partition whose records were all lost
    sid = await subscribe(db, "https://hooks.example.com/in")
    ahead = {**{p: n + 5 for p, n in ends.items()}, empty: 7}
    await db.executemany(
        "INSERT INTO webhook_dispatch_offsets (log_partition, next_offset) VALUES ($1, $2)",
        list(ahead.items()),
    )
    kept: set[uuid.UUID] = set()
    for partition, end in {**ends, empty: 0}.items():
        for offset, status in ((end - 1, "pending"), (end, "pending"), (end + 1, "parked")):
            if offset >= 0:
                made = await _delivery(db, sid, partition, offset, status)
                if offset < end:
                    kept.add(made)
        kept.add(await _delivery(db, sid, partition, end + 2, "succeeded"))

    result = await restore_log(target, db)
    assert await webhook_fanout.load_offsets(db) == {**ends, empty: 0}
    assert result.webhooks is not None
    assert result.webhooks.moved == ahead
    assert (result.webhooks.dropped, result.webhooks.delivered) == (2 * len(ahead), len(ahead))
    assert {r["id"] for r in await db.fetch("SELECT id FROM webhook_deliveries")} == kept
    assert "webhooks: positions past the restored log moved back" in report(result)


async def _delivery(
    conn: asyncpg.Connection, sid: uuid.UUID, partition: int, offset: int, status: str
) -> uuid.UUID:
    made = uuid.uuid4()
    await conn.execute(
        "INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, subject_id,"
        " log_partition, log_offset, payload, status) VALUES ($1, $2, $3, 'ConsentWithdrawn',"
        " 's-1', $4, $5, '{}', $6)",
        made,
        sid,
        uuid.uuid4(),
        partition,
        offset,
        status,
    )
    return made
