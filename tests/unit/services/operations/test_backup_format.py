"""The backup file (pure): record <-> Avro mapping, the header's metadata and its checks, the
restore's refusals and verification, and the schema docs/operators/backup-restore.md documents."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastavro import reader, schemaless_reader, schemaless_writer
from fastavro.write import Writer
from hypothesis import given
from hypothesis import strategies as st

from services.operations.backup_format import (
    CODEC,
    META_CREATED_AT,
    META_FORMAT,
    META_TOPICS,
    META_VERSION,
    PARSED_SCHEMA,
    SCHEMA,
    BackupFileError,
    BackupHeader,
    LogRecord,
    TopicExtent,
    check_record,
    count_mismatches,
    read_header,
    roles_to_restore,
    target_problems,
)

BACKUP_PAGE = Path(__file__).resolve().parents[4] / "docs" / "operators" / "backup-restore.md"
AT = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
EVENTS = TopicExtent("events", "consent.events", (0, 0, 5), (10, 0, 7))
CHECKS = TopicExtent("checks", "consent.checks", (0,), (2,))
HEADER = BackupHeader(AT, "0.1.0", (EVENTS, CHECKS))

optional_bytes = st.none() | st.binary(max_size=64)
records = st.builds(
    LogRecord,
    topic=st.text(min_size=1, max_size=40),
    partition=st.integers(0, 2**31 - 1),
    offset=st.integers(0, 2**63 - 1),
    timestamp=st.integers(-1, 2**62),
    key=optional_bytes,
    value=optional_bytes,
    headers=st.lists(st.tuples(st.text(max_size=20), optional_bytes), max_size=4).map(tuple),
)


@given(records)
def test_a_record_survives_the_avro_encoding_byte_for_byte(record: LogRecord) -> None:
    buffer = io.BytesIO()
    schemaless_writer(buffer, PARSED_SCHEMA, record.as_avro())
    buffer.seek(0)
    decoded = schemaless_reader(buffer, PARSED_SCHEMA, None)
    assert isinstance(decoded, dict)
    assert LogRecord.from_avro(decoded) == record


extents = st.integers(1, 6).flatmap(
    lambda n: st.tuples(
        st.sampled_from(["events", "checks"]),
        st.text(min_size=1, max_size=30),
        st.lists(st.tuples(st.integers(0, 10**12), st.integers(0, 10**6)), min_size=n, max_size=n),
    )
)


@given(extents, st.datetimes(timezones=st.just(UTC)), st.text(min_size=1, max_size=10))
def test_the_header_reads_back_from_the_file_metadata(
    extent: tuple[str, str, list[tuple[int, int]]], at: datetime, version: str
) -> None:
    role, topic, spans = extent
    starts = tuple(start for start, _ in spans)
    ends = tuple(start + length for start, length in spans)
    header = BackupHeader(at, version, (TopicExtent(role, topic, starts, ends),))
    buffer = io.BytesIO()
    Writer(buffer, PARSED_SCHEMA, codec=CODEC, metadata=header.metadata()).flush()
    buffer.seek(0)
    assert read_header(reader(buffer).metadata) == header


def metadata(**changes: Any) -> dict[str, Any]:
    meta: dict[str, Any] = HEADER.metadata()
    meta.update(changes)
    return {k: v for k, v in meta.items() if v is not None}


def topics(*entries: dict[str, Any]) -> str:
    return json.dumps(list(entries))


GOOD = EVENTS.as_json()


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        (metadata(**{META_FORMAT: None}), "ledger.backup_format is missing"),
        (metadata(**{META_FORMAT: "2"}), "ledger.backup_format is '2'"),
        (metadata(**{META_VERSION: None}), "ledger.version is missing"),
        (metadata(**{META_CREATED_AT: "yesterday"}), "ledger.created_at is not an RFC 3339"),
        (metadata(**{META_TOPICS: "{"}), "ledger.topics is not JSON"),
        (metadata(**{META_TOPICS: "[]"}), "ledger.topics must be a non-empty list"),
        (metadata(**{META_TOPICS: topics({**GOOD, "role": "state"})}), "[0].role is 'state'"),
        (metadata(**{META_TOPICS: topics({**GOOD, "topic": ""})}), "[0].topic must be"),
        (metadata(**{META_TOPICS: topics({**GOOD, "partitions": 0})}), "[0].partitions must"),
        (
            metadata(**{META_TOPICS: topics({**GOOD, "end_offsets": [1, 2]})}),
            "[0].end_offsets must list 3 offsets",
        ),
        (
            metadata(**{META_TOPICS: topics({**GOOD, "start_offsets": [0, -1, 0]})}),
            "[0].start_offsets must list 3 offsets",
        ),
        (
            metadata(**{META_TOPICS: topics({**GOOD, "start_offsets": [11, 0, 0]})}),
            "a start offset is beyond its end offset",
        ),
        (metadata(**{META_TOPICS: topics(GOOD, GOOD)}), "names a role or a topic twice"),
        (metadata(**{META_VERSION: b"\xff"}), "ledger.version is not UTF-8"),
    ],
)
def test_a_bad_header_is_refused_naming_the_field(meta: dict[str, Any], message: str) -> None:
    with pytest.raises(BackupFileError) as raised:
        read_header(meta)
    assert message in str(raised.value)


def record(topic: str = "consent.events", partition: int = 0, offset: int = 0) -> LogRecord:
    return LogRecord(topic, partition, offset, 0, b"k", b"v")


@pytest.mark.parametrize(
    ("found", "error"),
    [
        (record(offset=0), None),
        (record(offset=9), None),
        (record(partition=2, offset=5), None),
        (record("consent.checks", 0, 1), None),
        (record("consent.state"), "names topic 'consent.state', not in the header"),
        (record(partition=3), "names partition 3; the header says 3 partitions"),
        (record(offset=10), "consent.events[0]@10 is outside the backed-up range [0, 10)"),
        (record(partition=2, offset=4), "outside the backed-up range [5, 7)"),
        (record(partition=1, offset=0), "outside the backed-up range [0, 0)"),
    ],
)
def test_each_record_must_lie_in_the_header_ranges(found: LogRecord, error: str | None) -> None:
    if error is None:
        assert check_record(HEADER, found).topic == found.topic
    else:
        with pytest.raises(BackupFileError, match=re.escape(error)):
            check_record(HEADER, found)


@pytest.mark.parametrize(
    ("partitions", "marks", "expected"),
    [
        (3, {0: 0, 1: 0, 2: 0}, []),
        (None, {}, ["topic t does not exist: create it with 3 partitions, or pass --create-topic"]),
        (
            4,
            {0: 0, 1: 0, 2: 0, 3: 0},
            [
                "topic t has 4 partitions; the backup of consent.events has 3: records must go"
                " back to the partitions they came from"
            ],
        ),
        (
            3,
            {0: 0, 1: 2, 2: 5},
            [
                "topic t is not empty (partition 1: 2, partition 2: 5 records): restore only"
                " into an empty topic"
            ],
        ),
    ],
)
def test_a_target_must_exist_with_the_same_partitions_and_be_empty(
    partitions: int | None, marks: dict[int, int], expected: list[str]
) -> None:
    assert target_problems(EVENTS, "t", partitions, marks) == expected


@pytest.mark.parametrize(
    ("restored", "marks", "expected"),
    [
        ({0: 10, 2: 2}, {0: 10, 1: 0, 2: 2}, []),
        ({0: 10}, {0: 11, 1: 0}, [(0, 10, 11)]),
        ({0: 3, 1: 1}, {0: 3}, [(1, 1, 0)]),
        ({}, {0: 1}, [(0, 0, 1)]),
    ],
)
def test_count_mismatches(
    restored: dict[int, int], marks: dict[int, int], expected: list[tuple[int, int, int]]
) -> None:
    assert count_mismatches(restored, marks) == expected


@pytest.mark.parametrize(
    ("only", "roles"),
    [((), ["events", "checks"]), (("checks",), ["checks"]), (("events",), ["events"])],
)
def test_only_picks_the_roles_in_file_order(only: tuple[str, ...], roles: list[str]) -> None:
    assert [t.role for t in roles_to_restore(HEADER, only)] == roles


def test_only_a_role_the_file_lacks_is_refused() -> None:
    with pytest.raises(BackupFileError, match="--only checks: the file holds only events"):
        roles_to_restore(BackupHeader(AT, "0.1.0", (EVENTS,)), ("checks",))


def test_the_backup_page_documents_the_schema_of_the_file() -> None:
    text = BACKUP_PAGE.read_text(encoding="utf-8")
    block = re.search(r"```json\n(.*?)\n```", text, re.DOTALL)
    assert block is not None, "no ```json block in docs/operators/backup-restore.md"
    assert json.loads(block.group(1)) == SCHEMA
