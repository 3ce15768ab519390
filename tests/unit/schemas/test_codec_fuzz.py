"""Whatever bytes arrive, every decoder answers with a value or a CodecError, never anything
else, and a small record declaring a huge length costs no memory."""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import events
from schemas.check_codec import decode_check, encode_check
from schemas.checkpoint_codec import decode_checkpoint, encode_checkpoint
from schemas.codec import HEADER_SIZE, MAGIC, CodecError
from schemas.feeds import decode_subject_state, encode_subject_state
from tests.properties import examples
from tests.unit.codec_fuzz import beyond_limits, damaged_values, decodes
from tests.unit.codec_samples import CODEC, GRANTED, RESTRICTED, at
from tests.unit.schemas.test_check_codec import check
from tests.unit.schemas.test_checkpoints import checkpoint
from tests.unit.services.rules.test_state_summary import RECORD

FUZZ = settings(max_examples=examples(400), deadline=None, database=None)


@FUZZ
@given(value=damaged_values)
def test_a_damaged_value_decodes_or_is_a_codec_error(value: bytes) -> None:
    event = decodes(value)  # anything but a CodecError propagates and fails the test
    if event is not None:  # a damage that still decodes is an event the codec can write
        assert CODEC.decode(CODEC.encode(event)) == event


@FUZZ
@given(value=beyond_limits())
def test_well_formed_avro_beyond_the_limits_is_refused(value: bytes) -> None:
    with pytest.raises(CodecError, match="breaks a limit"):
        CODEC.decode(value)


def _varint(n: int) -> bytes:
    """Avro's zig-zag varint of a long."""
    zigzag = (n << 1) ^ (n >> 63)
    out = bytearray()
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


def _ends_with_empty(event: events.Event, field: str, empty: Any) -> bytes:
    """The encoding of `event` with `field`, its last data field, empty: a trailing 0 byte
    (an empty string's, bytes' or array's length)."""
    value = CODEC.encode(replace(event, data={**event.data, field: empty}))
    assert value.endswith(b"\x00")
    return value[:-1]


LINKED = replace(
    GRANTED,
    type=events.IDENTIFIER_LINKED,
    notice_version=None,
    data={"identifier_type": "email", "blind_index": bytes(32), "ciphertext": b""},
)
HUGE = 2**62


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(MAGIC + CODEC.fingerprint_of("ConsentGranted") + _varint(HUGE), id="string"),
        pytest.param(
            MAGIC + CODEC.fingerprint_of("ConsentGranted") + _varint(-5) + b"abc", id="negative"
        ),
        pytest.param(_ends_with_empty(LINKED, "ciphertext", b"") + _varint(HUGE), id="bytes"),
        pytest.param(_ends_with_empty(RESTRICTED, "purposes", []) + _varint(HUGE), id="array"),
        pytest.param(
            _ends_with_empty(RESTRICTED, "purposes", []) + _varint(-HUGE) + _varint(HUGE),
            id="array-block-size",
        ),
    ],
)
def test_a_huge_declared_length_is_a_codec_error_without_allocating_it(value: bytes) -> None:
    assert len(value) < 200
    tracemalloc.start()
    try:
        with pytest.raises(CodecError, match="cannot decode"):
            CODEC.decode(value)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


#: the side topics' decoders, each with a valid value to damage
SIDE_DECODERS: list[tuple[str, Callable[[bytes], object], bytes]] = [
    ("check", decode_check, encode_check(check())),
    ("checkpoint", decode_checkpoint, encode_checkpoint(checkpoint())),
    ("subject-state", decode_subject_state, encode_subject_state(RECORD)),
]


@st.composite
def _damaged(draw: st.DrawFn, valid: bytes) -> bytes:
    how = draw(st.sampled_from(["truncate", "flip", "garbage", "any"]))
    if how == "truncate":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if how == "flip":
        bit = draw(st.integers(0, len(valid) * 8 - 1))
        return valid[: bit // 8] + bytes([valid[bit // 8] ^ (1 << bit % 8)]) + valid[bit // 8 + 1 :]
    if how == "garbage":
        return valid[:HEADER_SIZE] + draw(st.binary(max_size=200))
    return draw(st.binary(max_size=300))


@pytest.mark.parametrize(
    ("decode", "valid"), [pytest.param(d, v, id=n) for n, d, v in SIDE_DECODERS]
)
@settings(max_examples=examples(150), deadline=None, database=None)
@given(data=st.data())
def test_side_topic_decoders_raise_only_codec_errors(
    decode: Callable[[bytes], object], valid: bytes, data: st.DataObject
) -> None:
    value = data.draw(_damaged(valid))
    with contextlib.suppress(CodecError):  # anything else fails the test
        decode(value)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        pytest.param(
            replace(GRANTED, data={**GRANTED.data, "purpose": "news\x00letter"}),
            r"ConsentGranted\.purpose contains U\+0000",
            id="nul-in-data",
        ),
        pytest.param(
            replace(GRANTED, source=events.Source("form", "crm\x00", None)),
            r"ConsentGranted\.source\.system contains U\+0000",
            id="nul-in-source",
        ),
        pytest.param(
            replace(GRANTED, occurred_at=datetime(1899, 12, 31, tzinfo=UTC)),
            r"ConsentGranted\.occurred_at is 1899-12-31.*from 1900-01-01 up to 9000-01-01",
            id="too-early",
        ),
        pytest.param(
            replace(GRANTED, data={**GRANTED.data, "expires_at": at(9000, 1, 1)}),
            r"ConsentGranted\.expires_at is 9000-01-01",
            id="too-late",
        ),
        pytest.param(
            replace(
                GRANTED,
                type=events.RIGHTS_REQUEST_EXTENDED,
                data={"request_id": GRANTED.event_id, "months": 3, "reason": "backlog"},
            ),
            r"RightsRequestExtended\.months is 3; accepted: 1 to 2",
            id="months",
        ),
    ],
)
def test_encode_refuses_values_beyond_the_limits(event: events.Event, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        CODEC.encode(event)
