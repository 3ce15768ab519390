"""The contact-check evidence record (`avro/checks/ContactCheckPerformed.v<N>.avsc`).

Avro single-object encoding, framed like the events (C3 01, the writer schema's 8-byte
fingerprint, the body), so an auditor can tell the schema version of every record without a
registry. The schemas live in their own folder: the event codec loads every `.avsc` of
`avro/` as an event type. Writes use the newest version; reads resolve any loaded version.
"""

from __future__ import annotations

import functools
import io
import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from uuid import UUID

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from schemas.codec import HEADER_SIZE, MAGIC, CodecError, schema_fingerprint

CHECK_SCHEMA_DIR: Final = Path(__file__).resolve().parent / "avro" / "checks"
RECORD_NAME: Final = "ContactCheckPerformed"
RECIPIENT_KINDS: Final = ("subjects", "emails")
#: Kafka header naming the value's schema, for consumers that route without decoding
SCHEMA_HEADER: Final = "schema"
_FILE_RE: Final = re.compile(rf"{RECORD_NAME}\.v([1-9][0-9]*)\.avsc")


@dataclass(frozen=True, slots=True)
class ContactCheck:
    """One ContactCheckPerformed record; field names as in the schema."""

    check_id: UUID
    campaign_id: str
    purpose: str
    channel: str
    checked_at: datetime
    snapshot_token: str
    recipient_kind: str
    requested: int
    allowed: int
    denied: int
    denied_by_reason: dict[str, int]
    recipients_digest: str
    allowed_digest: str


@dataclass(frozen=True, slots=True)
class _Version:
    number: int
    fingerprint: bytes
    parsed: dict[str, Any]


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[_Version, ...]:
    """Every schema version in the folder, oldest first."""
    found = []
    for path in sorted(CHECK_SCHEMA_DIR.glob("*.avsc")):
        match = _FILE_RE.fullmatch(path.name)
        if match is None:
            raise CodecError(f"schema file {path.name!r} is not named {RECORD_NAME}.v<N>.avsc")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            parsed = parse_schema(raw)
            fingerprint = schema_fingerprint(raw)
        except Exception as exc:
            raise CodecError(f"cannot load schema {path}: {exc}") from exc
        if not isinstance(parsed, dict) or parsed.get("name") != f"ledger.checks.{RECORD_NAME}":
            raise CodecError(f"schema {path.name} is not the record ledger.checks.{RECORD_NAME}")
        found.append(_Version(int(match[1]), fingerprint, parsed))
    if not found:
        raise CodecError(f"no {RECORD_NAME} schema in {CHECK_SCHEMA_DIR}")
    return tuple(sorted(found, key=lambda v: v.number))


def schema_name() -> str:
    """`ContactCheckPerformed.v<N>` of the version `encode_check` writes."""
    return f"{RECORD_NAME}.v{_versions()[-1].number}"


def encode_check(check: ContactCheck) -> bytes:
    if check.checked_at.utcoffset() is None:
        raise CodecError("checked_at is a naive datetime; pass a timezone-aware UTC datetime")
    writer = _versions()[-1]
    buffer = io.BytesIO()
    buffer.write(MAGIC)
    buffer.write(writer.fingerprint)
    try:
        schemaless_writer(buffer, writer.parsed, asdict(check), disable_tuple_notation=True)
    except Exception as exc:
        raise CodecError(f"cannot encode check {check.check_id}: {exc}") from exc
    return buffer.getvalue()


def decode_check(value: bytes) -> ContactCheck:
    """The record in a Kafka value, resolved from its writer schema to the newest reader."""
    if len(value) < HEADER_SIZE or value[:2] != MAGIC:
        raise CodecError("not single-object encoded: expected c301 and an 8-byte fingerprint")
    fingerprint = bytes(value[2:HEADER_SIZE])
    versions = _versions()
    writer = next((v for v in versions if v.fingerprint == fingerprint), None)
    if writer is None:
        raise CodecError(f"unknown {RECORD_NAME} schema fingerprint 0x{fingerprint.hex()}")
    reader = versions[-1]
    buffer = io.BytesIO(value)
    buffer.seek(HEADER_SIZE)
    try:
        record = schemaless_reader(
            buffer, writer.parsed, None if reader is writer else reader.parsed
        )
    except Exception as exc:
        raise CodecError(f"cannot decode a {RECORD_NAME} body: {exc!r}") from exc
    if buffer.tell() != len(value) or not isinstance(record, dict):
        raise CodecError(f"a {RECORD_NAME} record has trailing bytes or is not a record")
    return ContactCheck(**record)


def check_headers(check: ContactCheck) -> list[tuple[str, bytes]]:
    return [
        (SCHEMA_HEADER, schema_name().encode("ascii")),
        ("check_id", str(check.check_id).encode("ascii")),
    ]
