"""Dead letters are purged by age: `consent-ledger retention` deletes rejected records and strips
queued dead letters older than LEDGER_DEAD_LETTER_RETENTION_DAYS, keeps young ones, never
lowers the count of dead letters, and restore-log then writes placeholders at purged offsets.

Whether the broker really deletes old records of the dead-letter topic cannot be shown here:
the embedded broker enforces no retention. What is checked is that the ledger creates the
topic with retention.ms from the setting, as the broker reports it."""

from __future__ import annotations

from dataclasses import replace

import asyncpg
import pytest

from projections import dead_letters
from services.config import Settings
from services.ledger.kafka_clients import new_admin
from services.ledger.topic import describe, ensure_topic
from services.operations.restore_log import restore_log
from services.operations.restore_plan import PLACEHOLDER_HEADERS, PLACEHOLDER_KEY
from services.proof.dead_letter_retention import PURGED_ERROR
from services.proof.retention import run_retention
from tests.conftest import running_projector, wait_until
from tests.integration.replay import caught_up, produce_log
from tests.integration.test_dead_letters import running_dead_letter_feed
from tests.integration.topic_records import all_records, produce_raw
from tests.writer_macs import sealed

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000


async def _rejected(settings: Settings, db: asyncpg.Connection) -> list[tuple[int, int]]:
    """Four undecodable records in partition 0, applied by the projector; the first two made
    40 days old, as if rejected then."""
    garbage: list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]] = [
        (0, b"poison", b"\x00garbage-%d" % n, []) for n in range(4)
    ]
    await produce_raw(settings.kafka, settings.topic, garbage)
    await produce_log(settings, count=20, subjects=3, seed=7)
    async with running_projector(settings):
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to pass the poison")
    rows = await db.fetch(
        "SELECT log_partition, log_offset FROM rejected_records ORDER BY log_offset"
    )
    positions = [(r[0], r[1]) for r in rows]
    assert len(positions) == 4
    old = [o for _, o in positions[:2]]
    await db.execute(
        "UPDATE rejected_records SET rejected_at = now() - interval '40 days'"
        " WHERE log_offset = ANY($1::bigint[])",
        old,
    )
    await db.execute(
        "UPDATE dead_letter_outbox SET queued_at = now() - interval '40 days'"
        " WHERE log_offset = ANY($1::bigint[])",
        old,
    )
    return positions


async def test_old_dead_letters_are_purged_and_young_ones_kept(
    settings: Settings, db: asyncpg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    positions = await _rejected(settings, db)
    old, young = positions[:2], positions[2:]

    assert await run_retention(settings, dry_run=True) == 0
    assert "would purge 2 rejected record(s) and 2 dead letter(s)" in capsys.readouterr().out
    assert await db.fetchval("SELECT count(*) FROM rejected_records") == 4

    assert await run_retention(settings) == 0
    out = capsys.readouterr().out
    assert "purged 2 rejected record(s) and 2 dead letter(s)" in out
    assert "LEDGER_DEAD_LETTER_RETENTION_DAYS=30" in out
    kept = await db.fetch("SELECT log_partition, log_offset, record_value FROM rejected_records")
    assert sorted((r[0], r[1]) for r in kept) == young
    assert all(r["record_value"] for r in kept)
    letters = await db.fetch(
        "SELECT log_partition, log_offset, error, record_key, record_value, purged_at"
        " FROM dead_letter_outbox ORDER BY log_offset"
    )
    stripped = [r for r in letters if r["purged_at"] is not None]
    assert [(r[0], r[1]) for r in stripped] == old
    assert all(
        r["error"] == PURGED_ERROR and r["record_key"] is None and r["record_value"] is None
        for r in stripped
    )
    assert [bytes(r["record_value"]) for r in letters if r["purged_at"] is None] == [
        b"\x00garbage-2",
        b"\x00garbage-3",
    ]
    # every dead letter ever is still counted; the purged ones are not waiting to be published
    assert await dead_letters.counts(db, settings.topic) == (4, 2)

    # a second run finds nothing more; the feed publishes only what was kept
    assert await run_retention(settings) == 0
    assert "purged 0 rejected record(s) and 0 dead letter(s)" in capsys.readouterr().out
    async with running_dead_letter_feed(settings) as feed:

        async def published() -> bool:
            return (await dead_letters.counts(db, settings.topic))[1] == 0

        await wait_until(published, 60, "the kept dead letters to be published")
    assert feed.published == 2
    on_topic = await all_records(settings.kafka, settings.dead_letter_topic)
    assert sorted(s.value or b"" for s in on_topic) == [b"\x00garbage-2", b"\x00garbage-3"]


async def test_a_purged_dead_letter_a_rebuild_wrote_again_is_purged_again(
    settings: Settings, db: asyncpg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rebuild replays the log, which keeps every record, and writes the rejected rows of
    purged dead letters again with a fresh rejected_at: the next run deletes them at once."""
    positions = await _rejected(settings, db)
    old = positions[:2]
    assert await run_retention(settings) == 0
    capsys.readouterr()
    await db.executemany(  # what the replay of a rebuild writes for the two purged letters
        "INSERT INTO rejected_records (topic, log_partition, log_offset, error, record_key,"
        " record_value, reason) VALUES ($1, $2, $3, 'no MAC header', 'poison', 'again',"
        " 'unauthenticated-record')",
        [(settings.topic, p, o) for p, o in old],
    )
    assert await run_retention(settings) == 0
    assert "purged 2 rejected record(s) and 0 dead letter(s)" in capsys.readouterr().out
    kept = await db.fetch("SELECT log_partition, log_offset FROM rejected_records")
    assert sorted((r[0], r[1]) for r in kept) == positions[2:]


async def test_restore_log_writes_placeholders_where_dead_letters_were_purged(
    settings: Settings, db: asyncpg.Connection
) -> None:
    positions = await _rejected(settings, db)
    original = await all_records(settings.kafka, settings.topic)
    assert await run_retention(settings) == 0

    target = replace(settings, topic=f"{settings.topic}.restored")
    await ensure_topic(target)
    result = await restore_log(target, db, source_topic=settings.topic)
    assert result.sources["placeholder"] == 2 and result.sources["rejected"] == 2
    assert result.restarted == [0]  # the partition's checkpoint digest starts again
    restored = await all_records(target.kafka, target.topic)
    assert [(s.partition, s.offset) for s in restored] == [
        (s.partition, s.offset) for s in original
    ]
    by_position = {(s.partition, s.offset): s for s in restored}
    for where in positions[:2]:
        placeholder = by_position[where]
        assert placeholder.key == PLACEHOLDER_KEY and placeholder.value is None
        # a record the ledger writes now: MACed like every other
        assert placeholder.headers == tuple(sealed(PLACEHOLDER_KEY, None, PLACEHOLDER_HEADERS))
    assert [by_position[where].value for where in positions[2:]] == [
        b"\x00garbage-2",
        b"\x00garbage-3",
    ]
    # every other record is back with its bytes
    kept = {(s.partition, s.offset): s.value for s in original}
    for where, seen in by_position.items():
        if where not in positions[:2]:
            assert seen.value == kept[where], where


async def test_the_dead_letter_topic_is_created_with_the_retention_setting(
    settings: Settings,
) -> None:
    shorter = replace(
        settings,
        dead_letter_topic=f"{settings.dead_letter_topic}.short",
        dead_letter_retention_days=7,
    )
    await ensure_topic(shorter)
    admin = new_admin(settings.kafka)
    await admin.start()
    try:
        described = {
            t.name: t
            for t in await describe(admin, [settings.dead_letter_topic, shorter.dead_letter_topic])
        }
    finally:
        await admin.close()
    assert described[settings.dead_letter_topic].configs["retention.ms"] == str(30 * DAY_MS)
    assert described[shorter.dead_letter_topic].configs["retention.ms"] == str(7 * DAY_MS)
    assert described[settings.dead_letter_topic].configs["cleanup.policy"] == "delete"
