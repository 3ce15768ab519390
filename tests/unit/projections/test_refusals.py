"""Which records a batch refuses (projections/refusals.py `screen`): a record without a valid
MAC at or above its partition's cut-off is `unauthenticated-record` before it is ever decoded;
below the cut-off it is decoded as before; a valid MAC is kept with the event."""

from __future__ import annotations

import pytest

from projections.dead_letters import UNAUTHENTICATED, UNDECODABLE
from projections.log_records import Record
from projections.refusals import screen
from schemas.codec import kafka_headers
from schemas.record_mac import EVENTS, MAC_HEADER, Header, RecordMacs
from tests.unit.codec_samples import CODEC, GRANTED

MACS = RecordMacs({"w1": bytes(32)}, "w1")
VALUE = CODEC.encode(GRANTED)
KEY = GRANTED.subject_id.encode()
ROUTING: list[Header] = list(kafka_headers(GRANTED))
GARBAGE = b"\x00garbage"


def record(offset: int, value: bytes | None, headers: str, partition: int = 0) -> Record:
    made: list[Header] = {
        "valid": MACS.seal(EVENTS, KEY, value, ROUTING),
        "none": ROUTING,
        "wrong": [*ROUTING, (MAC_HEADER, b"v1:w1:" + b"A" * 43)],
        "unknown key": RecordMacs({"w9": bytes(32)}, "w9").seal(EVENTS, KEY, value, ROUTING),
    }[headers]
    return Record(partition, offset, KEY, value, made)


@pytest.mark.parametrize(
    ("rec", "cutoffs", "outcome"),
    [
        (record(0, VALUE, "valid"), {}, "applied with its MAC"),
        (record(0, GARBAGE, "valid"), {}, UNDECODABLE),
        (record(0, None, "valid"), {}, UNDECODABLE),
        (record(0, VALUE, "none"), {}, UNAUTHENTICATED),
        (record(0, VALUE, "wrong"), {}, UNAUTHENTICATED),
        (record(0, VALUE, "unknown key"), {}, UNAUTHENTICATED),
        # undecodable and unauthenticated: the MAC is checked first, nothing is decoded
        (record(0, GARBAGE, "none"), {}, UNAUTHENTICATED),
        # below the cut-off: written before MACs, decoded as before
        (record(4, VALUE, "none"), {0: 5}, "applied without a MAC"),
        (record(4, VALUE, "wrong"), {0: 5}, "applied without a MAC"),
        (record(4, GARBAGE, "none"), {0: 5}, UNDECODABLE),
        (record(5, VALUE, "none"), {0: 5}, UNAUTHENTICATED),
        (record(4, VALUE, "valid"), {0: 5}, "applied with its MAC"),
        # another partition's cut-off does not apply
        (record(4, VALUE, "none", partition=1), {0: 5}, UNAUTHENTICATED),
    ],
)
def test_screen(rec: Record, cutoffs: dict[int, int], outcome: str) -> None:
    verdict = MACS.verify(EVENTS, rec.key, rec.value, rec.headers)
    candidates, refused = screen(CODEC, [rec], [verdict], cutoffs)
    if outcome.startswith("applied"):
        ((event, partition, offset, value, mac),) = candidates
        assert (event, partition, offset, value) == (GRANTED, rec.partition, rec.offset, VALUE)
        expected = dict(rec.headers)[MAC_HEADER] if outcome.endswith("its MAC") else None
        assert mac == (None if expected is None else expected.decode())
        assert refused == []
    else:
        assert candidates == []
        (refusal,) = refused
        assert (refusal.record, refusal.reason) == (rec, outcome)
        if outcome == UNAUTHENTICATED:
            assert refusal.error.startswith(f"{UNAUTHENTICATED}: ")
