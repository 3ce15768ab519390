"""A batch mixing valid events and damaged values (tests/unit/codec_fuzz.py: arbitrary bytes,
truncated, bit-flipped, foreign Avro beyond the ledger's limits) applies the valid ones, keeps
the rest in rejected_records and advances past all of them: no such record stops the
projector."""

from __future__ import annotations

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.log_records import Record
from projections.runner import apply_batch
from schemas.events import Event
from tests.properties import examples
from tests.unit.codec_fuzz import damaged_values, decodes, valid_values
from tests.unit.codec_samples import CODEC
from tests.writer_macs import TEST_MACS, sealed_record

pytestmark = pytest.mark.integration

PARTITIONS = 3
TOPIC = "consent.events.fuzz"

#: each entry: (partition, value); most damaged values are refused, some still decode
BATCHES = st.lists(
    st.tuples(st.integers(0, PARTITIONS - 1), valid_values | damaged_values | st.none()),
    min_size=1,
    max_size=12,
)


def _records(entries: list[tuple[int, bytes | None]]) -> list[Record]:
    """Consecutive offsets per partition, from 7 rather than 0 (a log's start may be deleted)."""
    next_offset = dict.fromkeys(range(PARTITIONS), 7)
    records = []
    for partition, value in entries:
        records.append(sealed_record(partition, next_offset[partition], b"fuzz", value))
        next_offset[partition] += 1
    return records


@settings(
    max_examples=examples(80),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(entries=BATCHES)
async def test_a_batch_of_valid_and_damaged_records_is_applied_rejected_and_passed(
    db: asyncpg.Connection, entries: list[tuple[int, bytes | None]]
) -> None:
    records = _records(entries)
    decoded = {(r.partition, r.offset): decodes(r.value) if r.value else None for r in records}
    example = db.transaction()  # rolled back: every example starts from the same empty tables
    await example.start()
    try:
        await _check(db, records, decoded)
    finally:
        await example.rollback()


async def _check(
    db: asyncpg.Connection, records: list[Record], decoded: dict[tuple[int, int], Event | None]
) -> None:
    result = await apply_batch(db, CODEC, TOPIC, records, TEST_MACS)

    refused = [r for r in records if decoded[r.partition, r.offset] is None]
    rejected = await db.fetch(
        "SELECT log_partition, log_offset, record_value FROM rejected_records WHERE topic = $1"
        " ORDER BY log_partition, log_offset",
        TOPIC,
    )
    assert [(r["log_partition"], r["log_offset"], r["record_value"]) for r in rejected] == sorted(
        (r.partition, r.offset, r.value) for r in refused
    )
    ids = [event.event_id for event in decoded.values() if event is not None]
    assert (result.applied, result.duplicates, result.rejected) == (
        len(set(ids)),
        len(ids) - len(set(ids)),
        len(refused),
    )
    journaled = await db.fetch("SELECT event_id FROM journal")
    assert {r["event_id"] for r in journaled} == set(ids)
    stored = await db.fetch(
        "SELECT log_partition, next_offset FROM projector_offsets WHERE topic = $1", TOPIC
    )
    assert {r["log_partition"]: r["next_offset"] for r in stored} == {
        p: max(r.offset for r in records if r.partition == p) + 1
        for p in {r.partition for r in records}
    }
