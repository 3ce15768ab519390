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


@functools.lru_cache(maxsize=1)
def _entry_schema() -> dict[str, Any]:
    """The array items' record (`Entry`), parsed alone: each distinct entry is written once."""
    raw = json.loads((FEED_SCHEMA_DIR / f"{SUBJECT_STATE}.avsc").read_text(encoding="utf-8"))
    entries = next(f for f in raw["fields"] if f["name"] == "entries")
    parsed = parse_schema({"namespace": raw["namespace"], **entries["type"]["items"]})
    if not isinstance(parsed, dict):
        raise CodecError("the entries of SubjectState are not Avro records")
    return parsed


#: the body of each entry written lately: a subject's dozen entries are mostly the same few
#: answers. Keyed by the values and the types of the non-text fields, so a hit is the bytes
#: fastavro would write; emptied when full (each `until` of a grant is its own key)
_ENTRY_BODIES: dict[tuple[Any, ...], bytes] = {}
_ENTRY_BODIES_MAX: Final = 4096


def _zigzag_long(n: int) -> bytes:
    """An Avro long: zig-zag, then base-128 varint (the array's block count)."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _entry_body(entry: Mapping[str, Any]) -> bytes:
    allowed, until = entry["allowed"], entry.get("until")
    key = (
        entry["purpose"],
        entry["channel"],
        allowed,
        entry["reason"],
        until,
        type(allowed),
        type(until),
    )
    body = _ENTRY_BODIES.get(key)
    if body is None:
        buffer = io.BytesIO()
        schemaless_writer(buffer, _entry_schema(), dict(entry), disable_tuple_notation=True)
        body = buffer.getvalue()
        if len(_ENTRY_BODIES) >= _ENTRY_BODIES_MAX:
            _ENTRY_BODIES.clear()
        _ENTRY_BODIES[key] = body
    return body


def _written(parsed: dict[str, Any], record: Mapping[str, Any]) -> bytes:
    buffer = io.BytesIO()
    try:
        schemaless_writer(buffer, parsed, dict(record), disable_tuple_notation=True)
    except Exception as exc:
        raise CodecError(f"cannot encode the state of {record.get('subject_id')!r}: {exc}") from exc
    return buffer.getvalue()


def encode_subject_state(record: Mapping[str, Any]) -> bytes:
    """The Kafka value of one subject's state record (fields as in the schema).

    The feed writes one per changed subject, so the entries are not written one by one: the
    record is written with no entries (its last field, ending in the empty array's 0), and the
    array's block count and each entry's cached body are put in its place. The bytes are
    fastavro's own (tests/unit/services/rules/test_state_summary.py compares them); anything
    unusual about the entries is written by fastavro alone, with its errors."""
    parsed, fingerprint = _subject_state()
    moments = [record.get("computed_at")] + [e.get("until") for e in record.get("entries", ())]
    for moment in moments:
        if isinstance(moment, datetime) and moment.utcoffset() is None:
            raise CodecError(f"naive datetime {moment.isoformat()} in a state record; use UTC")
    entries = record.get("entries")
    try:
        if type(entries) is not list or not all(type(e) is dict for e in entries):
            raise TypeError("not a list of entry dicts")
        bodies = [_entry_body(e) for e in entries]
    except Exception:
        return MAGIC + fingerprint + _written(parsed, record)
    head = _written(parsed, {**record, "entries": []})
    if not bodies:
        return MAGIC + fingerprint + head
    # head ends with the empty array's count 0, which also ends a one-block array
    return b"".join((MAGIC, fingerprint, head[:-1], _zigzag_long(len(bodies)), *bodies, b"\x00"))


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
