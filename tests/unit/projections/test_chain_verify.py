"""Verifying a subject's journal entries: an intact chain, and each kind of tampering found at
the entry where it happened."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.chain_verify import (
    FIELDS_MISMATCH,
    HASH_MISMATCH,
    PAYLOAD_MISMATCH,
    UNDECODABLE,
    JournalEntry,
    SubjectVerifier,
    payload_difference,
)
from projections.hash_chain import GENESIS, subject_chain
from projections.journal import event_payload
from schemas.codec import default_codec
from tests.unit.event_log import dm_object, event, grant, withdraw

CODEC = default_codec()
SPECS = [grant("newsletter", "email"), dm_object(), withdraw("newsletter"), grant("research")]


def entries(count: int = len(SPECS)) -> list[JournalEntry]:
    """A subject's journal rows as the projector writes them: offsets 10, 20, ..."""
    events = [event(t, d, i) for i, (t, d) in enumerate(SPECS[:count])]
    values = [CODEC.encode(e) for e in events]
    return [
        JournalEntry(
            event_id=e.event_id,
            subject_id=e.subject_id,
            event_type=e.type,
            partition=3,
            offset=10 * (i + 1),
            occurred_at=e.occurred_at,
            recorded_at=e.recorded_at,
            payload=json.dumps(event_payload(e), separators=(",", ":")),
            value=v,
            chain_hash=h,
        )
        for i, (e, v, h) in enumerate(zip(events, values, subject_chain(values), strict=True))
    ]


def verify(rows: list[JournalEntry]) -> SubjectVerifier:
    verifier = SubjectVerifier("sub-1", CODEC)
    for row in rows:
        verifier.feed(row)
    return verifier


def test_an_intact_chain_is_valid_and_names_its_head() -> None:
    rows = entries()
    verifier = verify(rows)
    assert verifier.valid and verifier.first_broken is None
    assert (verifier.events, verifier.head) == (4, rows[-1].chain_hash)


def test_a_subject_without_entries_is_valid() -> None:
    verifier = verify([])
    assert (verifier.valid, verifier.events, verifier.head) == (True, 0, GENESIS)


def _flip(value: bytes, at: int) -> bytes:
    return value[:at] + bytes([value[at] ^ 1]) + value[at + 1 :]


def _edit_payload(row: JournalEntry) -> JournalEntry:
    payload = json.loads(row.payload)
    payload["purpose"] = "marketing_partners"
    return replace(row, payload=json.dumps(payload))


Tamper = Callable[[list[JournalEntry]], list[JournalEntry]]

TAMPERING: list[tuple[str, Tamper, int, str]] = [
    (
        "a byte of a record",
        lambda rows: [*rows[:1], replace(rows[1], value=_flip(rows[1].value, 40)), *rows[2:]],
        1,
        HASH_MISMATCH,
    ),
    (
        "two entries swapped",
        lambda rows: [rows[0], rows[2], rows[1], rows[3]],
        1,
        HASH_MISMATCH,
    ),
    ("an entry deleted", lambda rows: [rows[0], *rows[2:]], 1, HASH_MISMATCH),
    (
        "a stored hash",
        lambda rows: [*rows[:2], replace(rows[2], chain_hash=bytes(32)), rows[3]],
        2,
        HASH_MISMATCH,
    ),
    (
        "a record replaced and every later hash recomputed from it",
        lambda rows: _rechained(
            [*rows[:2], replace(rows[2], value=rows[2].value[:-1] + b"\x02"), rows[3]]
        ),
        2,
        UNDECODABLE,
    ),
    ("the payload", lambda rows: [rows[0], _edit_payload(rows[1]), *rows[2:]], 1, PAYLOAD_MISMATCH),
    (
        "the occurred_at column",
        lambda rows: [
            *rows[:3],
            replace(rows[3], occurred_at=rows[3].occurred_at - timedelta(days=1)),
        ],
        3,
        FIELDS_MISMATCH,
    ),
    (
        "the event_type column",
        lambda rows: [replace(rows[0], event_type="ConsentWithdrawn"), *rows[1:]],
        0,
        FIELDS_MISMATCH,
    ),
]


def _rechained(rows: list[JournalEntry]) -> list[JournalEntry]:
    hashes = subject_chain([r.value for r in rows])
    return [replace(r, chain_hash=h) for r, h in zip(rows, hashes, strict=True)]


@pytest.mark.parametrize(
    ("what", "tamper", "index", "reason"), TAMPERING, ids=[t[0] for t in TAMPERING]
)
def test_tampering_is_found_where_it_happened(
    what: str, tamper: Tamper, index: int, reason: str
) -> None:
    rows = entries()
    tampered = tamper(rows)
    verifier = verify(tampered)
    assert not verifier.valid, what
    broken = verifier.first_broken
    assert broken is not None
    assert (broken.event_id, broken.offset, broken.reason) == (
        tampered[index].event_id,
        tampered[index].offset,
        reason,
    )
    assert verifier.events == len(tampered)
    assert set(broken.as_json()) == {"event_id", "partition", "offset", "reason", "detail"}


@given(st.integers(0, 3), st.data())
def test_any_changed_byte_of_any_record_is_found(index: int, data: st.DataObject) -> None:
    rows = entries()
    at = data.draw(st.integers(0, len(rows[index].value) - 1))
    rows[index] = replace(rows[index], value=_flip(rows[index].value, at))
    broken = verify(rows).first_broken
    assert broken is not None
    assert (broken.event_id, broken.reason) == (rows[index].event_id, HASH_MISMATCH)


def test_an_entry_of_another_subject_is_a_fields_mismatch() -> None:
    rows = entries(1)
    verifier = SubjectVerifier("sub-2", CODEC)
    verifier.feed(rows[0])
    assert verifier.first_broken is not None
    assert verifier.first_broken.reason == FIELDS_MISMATCH


def test_payload_fields_a_later_schema_added_with_null_may_be_missing() -> None:
    (row,) = entries(1)
    ev = CODEC.decode(row.value)
    payload = json.loads(row.payload)
    assert payload_difference(row.payload, ev) is None
    missing_null = {k: v for k, v in payload.items() if k != "expires_at"}
    assert payload["expires_at"] is None
    assert payload_difference(json.dumps(missing_null), ev) is None
    missing_value = {k: v for k, v in payload.items() if k != "purpose"}
    assert payload_difference(json.dumps(missing_value), ev) == "purpose"
    assert payload_difference(json.dumps({**payload, "extra": 1}), ev) == "extra"
    assert payload_difference("[]", ev) == "(not an object)"
    assert payload_difference("{", ev) == "(not JSON)"
