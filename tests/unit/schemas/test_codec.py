"""The codec pins exact bytes, refuses bad input and round-trips every event type."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form
from hypothesis import given, settings

from schemas import events
from schemas.codec import (
    CRC64_EMPTY,
    DEFAULT_SCHEMA_DIR,
    MAGIC,
    CodecError,
    EventCodec,
    crc64_avro,
    default_codec,
    kafka_headers,
)
from schemas.events import Event, Source
from tests.properties import examples
from tests.unit.codec_samples import (
    CODEC,
    GRANTED,
    RESTRICTED,
    REVOKED,
    WITHDRAWN,
    event_fields,
)
from tests.unit.event_strategies import DATA, any_event

SCHEMA_FILES = sorted(DEFAULT_SCHEMA_DIR.glob("*.avsc"))


GOLDEN_GRANTED = (
    "c301 39c19876731f6a95"  # magic, fingerprint of v2
    " 4836663163326433652d346235612d346337642d386539662d306131623263336434653566107375622d3030"
    " 303180c9d89de7d88b0680c9c39ee7d88b060002107765622d73686f700222666f6f7465722d6e6577736c65"
    " 747465720000020e323032342d3033146e6577736c6574746572020a656d61696c028080aab1c8ada806"
    " 000000"  # request_event_id, evidence, context: null
)
#: ConsentGranted v1 (before context): released, still in logs, still decoded
GOLDEN_GRANTED_V1 = (
    "c301 b6a12cd07577ccc1"  # magic, fingerprint of v1
    " 4836663163326433652d346235612d346337642d386539662d306131623263336434653566107375622d3030"
    " 303180c9d89de7d88b0680c9c39ee7d88b060002107765622d73686f700222666f6f7465722d6e6577736c65"
    " 747465720000020e323032342d3033146e6577736c6574746572020a656d61696c028080aab1c8ada806"
)


GOLDEN_WITHDRAWN = (
    "c301 d41802939bdb7b13"  # magic, fingerprint of v3
    " 4830303030303030302d303030302d343030302d383030302d3030303030303030303030320c63726d3a3432"
    " fefffaf388898e068080fbf388898e060c00000000000000000000"
)
#: ConsentWithdrawn v2 (campaign_id, before context)
GOLDEN_WITHDRAWN_V2 = (
    "c301 4deb11181430c989"  # magic, fingerprint of v2
    " 4830303030303030302d303030302d343030302d383030302d3030303030303030303030320c63726d3a3432"
    " fefffaf388898e068080fbf388898e060c000000000000000000"
)
#: ConsentWithdrawn v3 with a sealed context (the client address's ciphertext, no user agent)
GOLDEN_WITHDRAWN_CONTEXT = (
    "c301 d41802939bdb7b13"  # magic, fingerprint of v3
    " 4830303030303030302d303030302d343030302d383030302d3030303030303030303030320c63726d3a3432"
    " fefffaf388898e068080fbf388898e060c00000000000000000002023a01000000000000000000000000aaaa"
    " aaaaaaaaaaaaaaaaaaaaaaaaaaaa000216756e73756273637269626502183031323334353637383961620204"
    " 656e010a1c636c69656e745f61646472657373087061676518706167655f76657273696f6e106c616e677561"
    " 6765126f6e655f636c69636b0000"
)
WITHDRAWN_CONTEXT = Event(
    **{
        **event_fields(WITHDRAWN),
        "data": {
            **WITHDRAWN.data,
            "context": {
                "client_address": bytes.fromhex("01" + "00" * 12 + "aa" * 16),
                "user_agent": None,
                "page": "unsubscribe",
                "page_version": "0123456789ab",
                "language": "en",
                "one_click": True,
                "captured": ["client_address", "page", "page_version", "language", "one_click"],
                "asserted": [],
            },
        },
    }
)

GOLDEN_RESTRICTED = (
    "c301 d8d6a88240eaabcc"  # magic, fingerprint
    " 4861336234633564362d653766382d346139622d386330642d316532663361346235633664107375622d3030"
    " 303380d8f1a4eaee9506e8dff1a4eaee950608021068656c706465736b000202106167656e742d3137000004"
    " 12616e616c79746963731270726f66696c696e6700"
)

GOLDEN_REVOKED = (
    "c301 d3ebdf18452cf04c"  # magic, fingerprint
    " 4835653166306332612d396238642d346537662d613663352d623464336532663161306239107375622d3030"
    " 303480c4e3d69387b106f4c7e3d69387b10608021068656c706465736b000202106167656e742d3137000250"
    " 707265666572656e6365206c696e6b20666f7277617264656420746f206120636f6c6c6561677565"
)

GOLDEN = [
    pytest.param(GRANTED, GOLDEN_GRANTED, id="ConsentGranted"),
    pytest.param(WITHDRAWN, GOLDEN_WITHDRAWN, id="ConsentWithdrawn"),
    pytest.param(WITHDRAWN_CONTEXT, GOLDEN_WITHDRAWN_CONTEXT, id="ConsentWithdrawn-context"),
    pytest.param(RESTRICTED, GOLDEN_RESTRICTED, id="ProcessingRestricted"),
    pytest.param(REVOKED, GOLDEN_REVOKED, id="LinksRevoked"),
]


@pytest.mark.parametrize(("event", "golden_hex"), GOLDEN)
def test_encodes_to_golden_bytes(event: Event, golden_hex: str) -> None:
    golden = bytes.fromhex(golden_hex)
    value = CODEC.encode(event)
    assert value == golden
    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == CODEC.fingerprint_of(event.type)


#: released older versions: never written again, always decoded (to the newest reader)
GOLDEN_OLDER = [
    pytest.param(GRANTED, GOLDEN_GRANTED_V1, id="ConsentGranted.v1"),
    pytest.param(WITHDRAWN, GOLDEN_WITHDRAWN_V2, id="ConsentWithdrawn.v2"),
]


@pytest.mark.parametrize(("event", "golden_hex"), GOLDEN + GOLDEN_OLDER)
def test_decodes_golden_bytes(event: Event, golden_hex: str) -> None:
    assert CODEC.decode(bytes.fromhex(golden_hex)) == event


def test_decoded_values_have_the_documented_python_types() -> None:
    decoded = CODEC.decode(CODEC.encode(RESTRICTED))
    assert isinstance(decoded.event_id, UUID)
    assert decoded.occurred_at.tzinfo is not None
    assert decoded.occurred_at.utcoffset() == UTC.utcoffset(None)
    assert type(decoded.data) is dict
    assert type(decoded.data["purposes"]) is list


def test_crc64_of_nothing_is_the_spec_empty_value() -> None:
    assert crc64_avro(b"") == CRC64_EMPTY


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_crc64_matches_fastavro(path: Path) -> None:
    # fastavro's hex is the little-endian byte order of the 64-bit value, i.e. the header bytes.
    canonical = to_parsing_canonical_form(json.loads(path.read_text()))
    ours = crc64_avro(canonical.encode())
    assert ours.to_bytes(8, "little").hex() == fingerprint(canonical, "CRC-64-AVRO")
    event_type, version = path.name.split(".")[:2]
    newest = max(
        int(p.name.split(".")[1][1:]) for p in SCHEMA_FILES if p.name.startswith(event_type + ".")
    )
    if int(version[1:]) == newest:
        assert CODEC.fingerprint_of(event_type) == ours.to_bytes(8, "little")


# --- errors -------------------------------------------------------------------------------------

GOOD = CODEC.encode(GRANTED)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(b"", r"not single-object encoded: magic missing", id="empty"),
        pytest.param(b"hello, this is not avro", r"not single-object encoded", id="garbage"),
        pytest.param(b"\xc3\x02" + GOOD[2:], r"magic c302", id="wrong-magic"),
        pytest.param(GOOD[:6], r"not single-object encoded.*6 bytes", id="short-header"),
        pytest.param(
            MAGIC + bytes(8) + GOOD[10:], r"unknown schema fingerprint 0x0{16}", id="unknown-fp"
        ),
        pytest.param(GOOD[:-3], r"cannot decode ConsentGranted v2 body", id="truncated"),
        pytest.param(GOOD + b"\x00", r"1 trailing byte", id="trailing"),
    ],
)
def test_decode_refuses(value: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        CODEC.decode(value)


def _with(**changes: Any) -> Event:
    return Event(**{**event_fields(GRANTED), **changes})


@pytest.mark.parametrize(
    ("event", "message"),
    [
        pytest.param(
            _with(occurred_at=datetime(2024, 5, 1)), r"occurred_at is a naive datetime", id="naive"
        ),
        pytest.param(
            _with(data={**GRANTED.data, "expires_at": datetime(2026, 1, 1)}),
            r"ConsentGranted\.expires_at is a naive datetime",
            id="naive-in-data",
        ),
        pytest.param(_with(type="ConsentGiven"), r"unknown event type 'ConsentGiven'", id="type"),
        pytest.param(
            _with(data={**GRANTED.data, "colour": "red"}),
            re.escape("unknown field(s) ['colour']"),
            id="unknown-key",
        ),
        pytest.param(
            _with(data={"channel": "email"}), r"cannot encode ConsentGranted.*purpose", id="missing"
        ),
        pytest.param(
            _with(source=Source("carrier_pigeon")), r"cannot encode ConsentGranted", id="enum"
        ),
        pytest.param(
            Event(
                **{
                    **event_fields(RESTRICTED),
                    "data": {"ground": "legal_claims", "purposes": "ads"},
                }
            ),
            r"ProcessingRestricted\.purposes must be a list",
            id="string-as-list",
        ),
    ],
)
def test_encode_refuses(event: Event, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        CODEC.encode(event)


def test_missing_schema_directory_is_a_codec_error(tmp_path: Path) -> None:
    with pytest.raises(CodecError, match=r"no \.avsc schema files"):
        EventCodec(tmp_path)


def test_misnamed_schema_file_is_a_codec_error(tmp_path: Path) -> None:
    source = DEFAULT_SCHEMA_DIR / "ConsentGranted.v1.avsc"
    (tmp_path / "ConsentWithdrawn.v1.avsc").write_bytes(source.read_bytes())
    with pytest.raises(CodecError, match=r"expected ledger\.events\.ConsentWithdrawn"):
        EventCodec(tmp_path)


# --- the rest of the public API -----------------------------------------------------------------


def test_kafka_headers() -> None:
    assert kafka_headers(GRANTED) == [
        ("event_type", b"ConsentGranted"),
        ("event_id", b"6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"),
    ]


def test_default_codec_is_built_once_and_knows_every_type() -> None:
    assert default_codec() is CODEC
    assert set(CODEC.schemas()) == set(events.EVENT_TYPES)
    assert CODEC.schemas()["ConsentGranted"]["name"] == "ledger.events.ConsentGranted"


# --- round-trip property (strategies: tests/unit/event_strategies.py) ---------------------------


def test_property_strategies_cover_every_event_type() -> None:
    assert set(DATA) == set(events.EVENT_TYPES)


@settings(max_examples=examples(300), deadline=None, database=None)
@given(any_event())
def test_decode_inverts_encode(event: Event) -> None:
    value = CODEC.encode(event)
    assert value[2:10] == CODEC.fingerprint_of(event.type)
    assert CODEC.decode(value) == event
