"""restore-log's plan (pure): every offset up to each partition's end, stored records where the
database has them and placeholders elsewhere; the ends; the records made from stored rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import headers_for, kafka_headers
from schemas.events import Event
from schemas.record_mac import (
    EVENTS,
    MAC_HEADER,
    RecordMacs,
    Verdict,
    encode_headers,
    mac_text,
)
from services.operations.restore_plan import (
    DUPLICATE,
    JOURNAL,
    PLACEHOLDER,
    PLACEHOLDER_HEADERS,
    PLACEHOLDER_KEY,
    REJECTED,
    GapFiller,
    OutRecord,
    gap_partitions,
    log_ends,
    stored_record,
)

EVENT_ID = uuid.UUID("0c1f3e0a-7d55-5b8e-9c55-4f0f2b6f1a9d")
RECORDED = datetime(2026, 3, 1, 9, 30, 0, 123000, tzinfo=UTC)


def stored(partition: int, offset: int) -> OutRecord:
    return OutRecord(partition, offset, b"k", b"v%d" % offset, (), 1, JOURNAL)


def fill(ends: dict[int, int], records: list[OutRecord]) -> list[OutRecord]:
    filler = GapFiller(ends)
    out = [r for record in records for r in filler.feed(record)]
    return out + filler.finish()


# per partition: the end, and which offsets below it the database holds
layouts = st.dictionaries(
    st.integers(0, 5),
    st.integers(1, 40).flatmap(
        lambda end: st.tuples(st.just(end), st.sets(st.integers(0, end - 1)))
    ),
    max_size=4,
)


@given(layouts)
def test_every_offset_is_produced_once_in_order_with_stored_records_kept(
    layout: dict[int, tuple[int, set[int]]],
) -> None:
    ends = {p: end for p, (end, _) in layout.items()}
    records = [stored(p, o) for p in sorted(layout) for o in sorted(layout[p][1])]
    out = fill(ends, records)
    assert [(r.partition, r.offset) for r in out] == [
        (p, o) for p in sorted(ends) for o in range(ends[p])
    ]
    held = {(r.partition, r.offset): r for r in records}
    for r in out:
        if (r.partition, r.offset) in held:
            assert r == held[(r.partition, r.offset)]
        else:
            assert (r.source, r.key, r.value, r.headers) == (
                PLACEHOLDER,
                PLACEHOLDER_KEY,
                None,
                PLACEHOLDER_HEADERS,
            )
    assert {p for p, (end, offs) in layout.items() if len(offs) < end} == gap_partitions(
        ends, {p: len(offs) for p, (_, offs) in layout.items()}
    )


def test_at_an_offset_held_twice_the_first_fed_stands() -> None:
    first = stored(0, 1)
    again = OutRecord(0, 1, None, b"dup", (), None, DUPLICATE)
    out = fill({0: 3}, [first, again, stored(0, 2)])
    assert out == [out[0], first, stored(0, 2)]
    assert out[0].source == PLACEHOLDER


def test_a_partition_without_stored_records_is_all_placeholders() -> None:
    out = fill({0: 1, 3: 2}, [stored(0, 0)])
    assert [(r.partition, r.offset, r.source) for r in out] == [
        (0, 0, JOURNAL),
        (3, 0, PLACEHOLDER),
        (3, 1, PLACEHOLDER),
    ]


@pytest.mark.parametrize(
    "records",
    [
        [stored(1, 0), stored(0, 0)],  # partitions out of order
        [stored(0, 5)],  # beyond the end
        [stored(2, 0)],  # a partition without an end
    ],
)
def test_records_out_of_the_plan_are_a_programming_error(records: list[OutRecord]) -> None:
    with pytest.raises(ValueError):
        fill({0: 2, 1: 1}, records)


@pytest.mark.parametrize(
    ("stored_offsets", "last", "expected"),
    [
        ({0: 10, 1: 4}, {0: 9, 1: 3}, {0: 10, 1: 4}),
        ({0: 10}, {0: 5}, {0: 10}),  # the tail was purged: the stored offset wins
        ({}, {0: 5, 2: 0}, {0: 6, 2: 1}),  # offsets stored under another name
        ({0: 3}, {0: 7}, {0: 8}),
        ({0: 0, 1: 2}, {}, {1: 2}),
        ({}, {}, {}),
    ],
)
def test_log_ends(
    stored_offsets: dict[int, int], last: dict[int, int], expected: dict[int, int]
) -> None:
    assert log_ends(stored_offsets, last) == expected


def row(source: str, **fields: Any) -> dict[str, Any]:
    return {
        "log_partition": 2,
        "log_offset": 7,
        "subject_id": None,
        "record_key": None,
        "record_value": b"value",
        "event_type": None,
        "event_id": None,
        "recorded_at": None,
        "record_mac": None,
        "record_headers": None,
        "source": source,
        **fields,
    }


EVENT = {"subject_id": "cust-1", "event_type": "ConsentGranted", "event_id": EVENT_ID}
EVENT_HEADERS = tuple(headers_for("ConsentGranted", EVENT_ID))
MAC = "v1:w1:" + "A" * 43
MS = 1772357400123


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        (
            row(JOURNAL, **EVENT, recorded_at=RECORDED),
            OutRecord(2, 7, b"cust-1", b"value", EVENT_HEADERS, MS, JOURNAL),
        ),
        (
            row(DUPLICATE, **EVENT, recorded_at=RECORDED),
            OutRecord(2, 7, b"cust-1", b"value", EVENT_HEADERS, MS, DUPLICATE),
        ),
        (
            row(DUPLICATE, event_id=EVENT_ID),
            OutRecord(
                2, 7, None, b"value", (("event_id", str(EVENT_ID).encode()),), None, DUPLICATE
            ),
        ),
        (
            row(REJECTED, record_key=b"poison", record_value=b"\x00garbage"),
            OutRecord(2, 7, b"poison", b"\x00garbage", (), None, REJECTED),
        ),
        (row(REJECTED, record_value=None), OutRecord(2, 7, None, None, (), None, REJECTED)),
        # the MAC header each record had comes back with it
        (
            row(JOURNAL, **EVENT, recorded_at=RECORDED, record_mac=MAC),
            OutRecord(
                2, 7, b"cust-1", b"value", (*EVENT_HEADERS, (MAC_HEADER, MAC.encode())), MS, JOURNAL
            ),
        ),
        (
            row(DUPLICATE, **EVENT, recorded_at=RECORDED, record_mac=MAC),
            OutRecord(
                2,
                7,
                b"cust-1",
                b"value",
                (*EVENT_HEADERS, (MAC_HEADER, MAC.encode())),
                MS,
                DUPLICATE,
            ),
        ),
        (
            row(
                REJECTED,
                record_key=b"poison",
                record_headers=encode_headers([("x", None), (MAC_HEADER, MAC.encode())]),
            ),
            OutRecord(
                2, 7, b"poison", b"value", (("x", None), (MAC_HEADER, MAC.encode())), None, REJECTED
            ),
        ),
    ],
)
def test_stored_rows_become_the_records_the_api_sent(
    found: dict[str, Any], expected: OutRecord
) -> None:
    assert stored_record(found) == expected


def test_a_restored_event_verifies_under_the_mac_it_was_written_with() -> None:
    """The API MACs an event over its key and headers (services/ledger/publisher.py); the record
    restore-log rebuilds from the journal's columns must be the same bytes, or the MAC it gets
    back would not verify."""
    macs = RecordMacs({"w1": bytes(range(32))}, "w1")
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    event = Event("ConsentGranted", EVENT_ID, "cust-1", at, at, data={"purpose": "p"})
    key, value = event.subject_id.encode("utf-8"), b"\xc3\x01value"
    written = macs.seal(EVENTS, key, value, kafka_headers(event))
    stored = row(JOURNAL, **EVENT, recorded_at=at, record_value=value, record_mac=mac_text(written))
    again = stored_record(stored)
    assert (again.key, again.headers) == (key, tuple(written))
    assert macs.verify(EVENTS, again.key, again.value, again.headers) is Verdict.VALID


def test_placeholders_get_the_headers_given() -> None:
    sealed = (*PLACEHOLDER_HEADERS, (MAC_HEADER, MAC.encode()))
    filler = GapFiller({0: 2}, sealed)
    assert [r.headers for r in filler.finish()] == [sealed, sealed]


def test_stored_headers_that_do_not_read_back_refuse_the_restore() -> None:
    with pytest.raises(ValueError, match="stored header"):
        stored_record(row(REJECTED, record_headers=b"\x00\x00\x00\x01"))
