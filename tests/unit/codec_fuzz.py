"""Hypothesis strategies for Kafka values a decoder may meet: arbitrary bytes, damaged
encodings of valid events (truncated, bit-flipped, another fingerprint, a valid header over a
garbage body) and well-formed Avro from a foreign producer that breaks the ledger's limits
(schemas/event_limits.py). Shared by the codec's fuzz tests and the projector's."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastavro import schemaless_writer
from hypothesis import strategies as st

from schemas import events
from schemas.codec import HEADER_SIZE, MAGIC, CodecError
from schemas.events import Event
from tests.unit.codec_samples import CODEC
from tests.unit.event_strategies import any_event

FINGERPRINTS = [CODEC.fingerprint_of(t) for t in events.EVENT_TYPES]

#: valid encodings of any event type (the same events the round-trip property draws)
valid_values = any_event().map(CODEC.encode)


def foreign_encode(event: Event) -> bytes:
    """`event` framed and written with its type's newest schema, skipping the codec's checks:
    what another producer could put on the topic."""
    record: dict[str, Any] = {**event.envelope(), **event.data}
    buffer = io.BytesIO()
    buffer.write(MAGIC + CODEC.fingerprint_of(event.type))
    schemaless_writer(buffer, CODEC.schemas()[event.type], record, disable_tuple_notation=True)
    return buffer.getvalue()


@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    value = draw(valid_values)
    return value[: draw(st.integers(0, len(value) - 1))]


@st.composite
def bit_flipped(draw: st.DrawFn) -> bytes:
    """One to three flipped bits anywhere, header included."""
    damaged = bytearray(draw(valid_values))
    for _ in range(draw(st.integers(1, 3))):
        bit = draw(st.integers(0, len(damaged) * 8 - 1))
        damaged[bit // 8] ^= 1 << (bit % 8)
    return bytes(damaged)


@st.composite
def wrong_fingerprint(draw: st.DrawFn) -> bytes:
    """Another known schema's fingerprint (a body read with the wrong schema), or any 8 bytes."""
    value = draw(valid_values)
    fingerprint = draw(st.sampled_from(FINGERPRINTS) | st.binary(min_size=8, max_size=8))
    return MAGIC + fingerprint + value[HEADER_SIZE:]


@st.composite
def garbage_body(draw: st.DrawFn) -> bytes:
    """A valid header over arbitrary bytes, often led by a huge or negative varint length."""
    header = MAGIC + draw(st.sampled_from(FINGERPRINTS))
    prefix = draw(st.sampled_from([b"", b"\xff" * 9 + b"\x01", b"\xfe\xff\xff\xff\x0f", b"\x03"]))
    return header + prefix + draw(st.binary(max_size=200))


EXTREME_TIMES = st.sampled_from(
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1899, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(9000, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
)


@st.composite
def beyond_limits(draw: st.DrawFn) -> bytes:
    """Well-formed Avro of an event with U+0000 in a text, a time near the calendar's ends
    or an out-of-range month count."""
    event = draw(any_event())
    data = dict(event.data)
    texts = [k for k, v in data.items() if isinstance(v, str) and k in _texts(event.type)]
    months = ["months"] if "months" in data else []
    change = draw(st.sampled_from(["time", "nul", "source", *months]))
    if change == "months":
        data["months"] = draw(st.integers(-(2**31), 2**31 - 1).filter(lambda m: m not in (1, 2)))
    elif change == "nul" and texts:
        name = draw(st.sampled_from(texts))
        data[name] = data[name] + "\x00"
    elif change == "source":
        event = replace(event, source=replace(event.source, system="crm\x00"))
    else:
        event = replace(event, occurred_at=draw(EXTREME_TIMES))
    return foreign_encode(replace(event, data=data))


def _texts(event_type: str) -> set[str]:
    """The fields of `event_type` that hold free text (a string, maybe null), not an enum."""
    fields = CODEC.schemas()[event_type]["fields"]
    return {f["name"] for f in fields if f["type"] in ("string", ["null", "string"])}


#: what a decoder must survive; most of it is not a valid event
damaged_values = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda body: MAGIC + body),
    truncated(),
    bit_flipped(),
    wrong_fingerprint(),
    garbage_body(),
    beyond_limits(),
)


def decodes(value: bytes) -> Event | None:
    """The event in `value`, or None when the codec refuses it (any other error propagates)."""
    try:
        return CODEC.decode(value)
    except CodecError:
        return None
