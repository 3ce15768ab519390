"""Checkpoints: the record's schema, framing and JSON form, and checking checkpoints against the
records of their range (links, counts, digests)."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from projections.hash_chain import GENESIS, records_digest
from schemas.checkpoint_codec import (
    CHECKPOINT_SCHEMA_DIR,
    LogCheckpoint,
    checkpoint_headers,
    decode_checkpoint,
    encode_checkpoint,
    schema_name,
)
from schemas.codec import MAGIC, CodecError, schema_fingerprint
from services.proof.checkpoint_check import (
    CHAIN_BROKEN,
    COUNT_MISMATCH,
    DIGEST_MISMATCH,
    GAP,
    OK,
    by_partition,
    check_records,
    lanes,
    link_findings,
)

SCHEMA = CHECKPOINT_SCHEMA_DIR / "LogCheckpoint.v1.avsc"
AT = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
Records = list[tuple[int, bytes | None]]


def checkpoint(**overrides: object) -> LogCheckpoint:
    fields: dict[str, object] = {
        "topic": "consent.events",
        "partition": 2,
        "from_offset": 100,
        "to_offset": 250,
        "records": 150,
        "previous_digest": "0" * 64,
        "digest": "ab" * 32,
        "created_at": AT,
        **overrides,
    }
    return LogCheckpoint(**fields)  # type: ignore[arg-type]


def test_the_schema_file_documents_every_field() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert (schema["namespace"], schema["name"]) == ("ledger.checkpoints", "LogCheckpoint")
    assert schema["doc"] and all(field["doc"] for field in schema["fields"])
    assert [f["name"] for f in schema["fields"]] == list(LogCheckpoint.__dataclass_fields__)


def test_single_object_framing_and_headers() -> None:
    value = encode_checkpoint(checkpoint())
    assert value[:2] == MAGIC
    assert value[2:10] == schema_fingerprint(json.loads(SCHEMA.read_text()))
    assert schema_name() == "LogCheckpoint.v1"
    assert checkpoint_headers() == [("schema", b"LogCheckpoint.v1")]
    assert checkpoint().key == b"consent.events:2"


@given(
    st.integers(0, 2**31 - 1),
    st.integers(0, 2**62),
    st.integers(0, 2**20),
    st.binary(min_size=32, max_size=32),
)
def test_round_trips_through_avro_and_json(
    partition: int, start: int, count: int, digest: bytes
) -> None:
    original = checkpoint(
        partition=partition,
        from_offset=start,
        to_offset=start + count,
        records=count,
        digest=digest.hex(),
    )
    assert decode_checkpoint(encode_checkpoint(original)) == original
    line = json.dumps(original.as_json())
    assert LogCheckpoint.from_json(json.loads(line)) == original


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"digest": "AB" * 32}, "digest"),
        ({"previous_digest": "0" * 63}, "previous_digest"),
        ({"partition": -1}, "partition"),
        ({"records": "3"}, "records"),
        ({"created_at": "2026-03-01T09:30:00"}, "created_at"),
        ({"topic": None}, "topic"),
    ],
)
def test_json_checkpoints_are_checked_field_by_field(change: dict[str, object], field: str) -> None:
    data = {**checkpoint().as_json(), **change}
    with pytest.raises(CodecError, match=field):
        LogCheckpoint.from_json(data)


def test_foreign_values_are_refused() -> None:
    value = encode_checkpoint(checkpoint())
    for broken in (b"", value[:2] + b"\x00" * 8 + value[10:], value + b"\x00"):
        with pytest.raises(CodecError):
            decode_checkpoint(broken)
    with pytest.raises(CodecError, match="naive"):
        encode_checkpoint(checkpoint(created_at=datetime(2026, 3, 1)))
    with pytest.raises(CodecError, match="to_offset"):
        encode_checkpoint(checkpoint(to_offset=99))


def cut(records: Records, cuts: list[int], partition: int = 0) -> list[LogCheckpoint]:
    """Checkpoints as the projector cuts them: ranges between the cut offsets, each digest
    continuing the previous one."""
    out = []
    digest = GENESIS
    bounds = [0, *cuts, len(records)]
    for start, end in itertools.pairwise(bounds):
        if start == end:
            continue
        previous, digest = digest, records_digest(digest, records[start:end])
        out.append(
            LogCheckpoint(
                "t",
                partition,
                records[start][0],
                records[end - 1][0] + 1,
                end - start,
                previous.hex(),
                digest.hex(),
                AT,
            )
        )
    return out


logs = st.lists(st.one_of(st.none(), st.binary(max_size=12)), min_size=1, max_size=30).map(
    lambda vals: [(i, v) for i, v in enumerate(vals)]
)


@given(logs, st.data())
def test_checkpoints_of_an_untouched_log_hold(records: Records, data: st.DataObject) -> None:
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(records)), max_size=4))))
    checkpoints = cut(records, cuts)
    findings = check_records(checkpoints, records)
    assert [f.status for f in findings] == [OK] * len(checkpoints)
    assert link_findings(checkpoints) == []


@given(logs, st.data())
def test_a_changed_record_fails_its_checkpoint_only(records: Records, data: st.DataObject) -> None:
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(records)), max_size=4))))
    checkpoints = cut(records, cuts)
    index = data.draw(st.integers(0, len(records) - 1))
    offset, value = records[index]
    new = data.draw(st.one_of(st.none(), st.binary(max_size=12)).filter(lambda v: v != value))
    tampered = [*records[:index], (offset, new), *records[index + 1 :]]
    findings = check_records(checkpoints, tampered)
    failed = [f for f in findings if f.status != OK]
    assert len(failed) == 1
    assert failed[0].status == DIGEST_MISMATCH
    assert failed[0].checkpoint.from_offset <= offset < failed[0].checkpoint.to_offset


@given(logs, st.randoms(use_true_random=False))
def test_reordered_values_fail(records: Records, rng: random.Random) -> None:
    values = [v for _, v in records]
    rng.shuffle(values)
    reordered = [(o, v) for (o, _), v in zip(records, values, strict=True)]
    assume(reordered != records)
    checkpoints = cut(records, [])
    assert [f.status for f in check_records(checkpoints, reordered)] == [DIGEST_MISMATCH]


def test_missing_or_extra_records_fail_by_count() -> None:
    records: Records = [(i, bytes([i])) for i in range(10)]
    checkpoints = cut(records, [4])
    missing = [r for r in records if r[0] != 6]
    assert [f.status for f in check_records(checkpoints, missing)] == [OK, COUNT_MISMATCH]
    truncated = records[:7]
    assert [f.status for f in check_records(checkpoints, truncated)] == [OK, COUNT_MISMATCH]
    beyond = [*records, (10, b"late")]
    assert [f.status for f in check_records(checkpoints, beyond)] == [OK, OK]


def test_links_between_checkpoints() -> None:
    records: Records = [(i, bytes([i])) for i in range(9)]
    a, b, c = cut(records, [3, 6])
    assert link_findings([a, b, c]) == []
    gap = link_findings([a, c])
    assert [f.status for f in gap] == [GAP]
    forged = LogCheckpoint(**{**b.as_json(), "previous_digest": "1" * 64, "created_at": AT})
    assert [(f.status, f.checkpoint) for f in link_findings([a, forged, c])] == [
        (CHAIN_BROKEN, forged)
    ]


def test_grouping_drops_repeats_and_other_topics_and_splits_overlaps() -> None:
    records: Records = [(i, bytes([i])) for i in range(6)]
    a, b = cut(records, [3])
    other = LogCheckpoint(**{**a.as_json(), "topic": "other", "created_at": AT})
    restored = cut([(0, b"new")], [], partition=0)[0]
    grouped = by_partition([b, a, a, other, restored], "t")
    assert list(grouped) == [0]
    assert sorted(grouped[0], key=lambda c: c.digest) == sorted(
        [a, b, restored], key=lambda c: c.digest
    )
    assert [len(lane) for lane in lanes(grouped[0])] == [2, 1]
