"""Avro single-object encoding of the state feed's records (`avro/feeds/SubjectState.v1.avsc`).

The same framing as the events (C3 01, the writer schema's 8-byte fingerprint, the body), so a
consumer can tell the schema version of every record without a registry. The feed schemas live
in their own folder: the event codec loads every `.avsc` of `avro/` as an event type.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from schemas.codec import HEADER_SIZE, MAGIC, CodecError, schema_fingerprint

FEED_SCHEMA_DIR: Final = Path(__file__).resolve().parent / "avro" / "feeds"
SUBJECT_STATE: Final = "SubjectState.v1"
#: Kafka header naming the value's schema, for consumers that route without decoding
SCHEMA_HEADER: Final = "schema"


@functools.lru_cache(maxsize=1)
def _subject_state() -> tuple[dict[str, Any], bytes]:
    path = FEED_SCHEMA_DIR / f"{SUBJECT_STATE}.avsc"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        parsed = parse_schema(raw)
        fingerprint = schema_fingerprint(raw)
    except Exception as exc:
        raise CodecError(f"cannot load schema {path}: {exc}") from exc
    if not isinstance(parsed, dict):
        raise CodecError(f"schema {path.name} is not an Avro record")
    return parsed, fingerprint


def subject_state_fingerprint() -> bytes:
    return _subject_state()[1]


def encode_subject_state(record: Mapping[str, Any]) -> bytes:
    """The Kafka value of one subject's state record (fields as in the schema)."""
    parsed, fingerprint = _subject_state()
    moments = [record.get("computed_at")] + [e.get("until") for e in record.get("entries", ())]
    for moment in moments:
        if isinstance(moment, datetime) and moment.utcoffset() is None:
            raise CodecError(f"naive datetime {moment.isoformat()} in a state record; use UTC")
    buffer = io.BytesIO()
    buffer.write(MAGIC)
    buffer.write(fingerprint)
    try:
        schemaless_writer(buffer, parsed, dict(record), disable_tuple_notation=True)
    except Exception as exc:
        raise CodecError(f"cannot encode the state of {record.get('subject_id')!r}: {exc}") from exc
    return buffer.getvalue()


def decode_subject_state(value: bytes) -> dict[str, Any]:
    """A state record from its Kafka value; refuses other schemas and trailing bytes."""
    parsed, fingerprint = _subject_state()
    if len(value) < HEADER_SIZE or value[:2] != MAGIC:
        raise CodecError("not single-object encoded: expected c301 and an 8-byte fingerprint")
    if bytes(value[2:HEADER_SIZE]) != fingerprint:
        raise CodecError(f"unknown state schema fingerprint 0x{bytes(value[2:HEADER_SIZE]).hex()}")
    buffer = io.BytesIO(value)
    buffer.seek(HEADER_SIZE)
    try:
        record = schemaless_reader(buffer, parsed, None)
    except Exception as exc:
        raise CodecError(f"cannot decode a state record: {exc!r}") from exc
    if buffer.tell() != len(value) or not isinstance(record, dict):
        raise CodecError("a state record has trailing bytes or is not a record")
    return record
