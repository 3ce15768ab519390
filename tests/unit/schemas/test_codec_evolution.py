"""Schema evolution: bytes written under older schema versions still decode with newer readers."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer

from schemas import events
from schemas.codec import DEFAULT_SCHEMA_DIR, MAGIC, CodecError, EventCodec, schema_fingerprint
from schemas.events import Event
from tests.unit.codec_samples import CODEC, GRANTED, WITHDRAWN, event_fields

#: ConsentWithdrawn v1 (before campaign_id): still in old logs, still decoded
GOLDEN_WITHDRAWN_V1 = (
    "c301 9b0ef28b677661fe"  # magic, fingerprint
    " 4830303030303030302d303030302d343030302d383030302d3030303030303030303030320c63726d3a3432"
    " fefffaf388898e068080fbf388898e060c0000000000000000"
)


def test_a_v1_withdrawal_decodes_with_no_campaign() -> None:
    assert CODEC.decode(bytes.fromhex(GOLDEN_WITHDRAWN_V1)) == WITHDRAWN


def _v2_dir(tmp_path: Path) -> Path:
    v1 = DEFAULT_SCHEMA_DIR / "ConsentGranted.v1.avsc"
    (tmp_path / v1.name).write_bytes(v1.read_bytes())
    v2 = json.loads(v1.read_text())
    v2["fields"].append(
        {"name": "language", "type": ["null", "string"], "default": None, "doc": "BCP 47 tag."}
    )
    (tmp_path / "ConsentGranted.v2.avsc").write_text(json.dumps(v2))
    return tmp_path


def test_v1_bytes_decode_with_the_v2_reader(tmp_path: Path) -> None:
    raw_v1 = json.loads((DEFAULT_SCHEMA_DIR / "ConsentGranted.v1.avsc").read_text())
    record: dict[str, Any] = {
        "event_id": GRANTED.event_id,
        "subject_id": GRANTED.subject_id,
        "occurred_at": GRANTED.occurred_at,
        "recorded_at": GRANTED.recorded_at,
        "source": {"method": "form", "system": "web-shop", "collection_point": "footer-newsletter"},
        "actor": {"type": "subject", "id": None},
        "notice_version": "2024-03",
        **GRANTED.data,
    }
    body = _write(raw_v1, record)
    v1_bytes = MAGIC + schema_fingerprint(raw_v1) + body
    assert CODEC.decode(v1_bytes) == GRANTED

    codec = EventCodec(_v2_dir(tmp_path))
    assert codec.fingerprint_of(events.CONSENT_GRANTED) != CODEC.fingerprint_of(
        events.CONSENT_GRANTED
    )
    assert codec.decode(v1_bytes) == Event(
        **{**event_fields(GRANTED), "data": {**GRANTED.data, "language": None}}
    )


def test_v2_bytes_carry_the_v2_fingerprint_and_decode(tmp_path: Path) -> None:
    codec = EventCodec(_v2_dir(tmp_path))
    event = Event(**{**event_fields(GRANTED), "data": {**GRANTED.data, "language": "de"}})
    value = codec.encode(event)
    assert value[2:10] == codec.fingerprint_of(events.CONSENT_GRANTED)
    assert value[2:10] != CODEC.fingerprint_of(events.CONSENT_GRANTED)
    assert codec.decode(value) == event
    with pytest.raises(CodecError, match=r"unknown schema fingerprint 0x[0-9a-f]{16}"):
        CODEC.decode(value)


def _write(raw_schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """Plain fastavro, without the codec: what any other v1 producer would have written."""
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema(raw_schema), record)
    return buffer.getvalue()
