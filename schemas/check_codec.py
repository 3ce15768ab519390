"""The contact-check evidence record (`avro/checks/ContactCheckPerformed.v<N>.avsc`).

Avro single-object encoding, framed like the events (C3 01, the writer schema's 8-byte
fingerprint, the body), so an auditor can tell the schema version of every record without a
registry. The schemas live in their own folder: the event codec loads every `.avsc` of
`avro/` as an event type. Writes use the newest version; reads resolve any loaded version.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Final
from uuid import UUID

from schemas.codec import CodecError
from schemas.record_codec import RecordCodec

CHECK_SCHEMA_DIR: Final = Path(__file__).resolve().parent / "avro" / "checks"
RECORD_NAME: Final = "ContactCheckPerformed"
RECIPIENT_KINDS: Final = ("subjects", "emails")
#: Kafka header naming the value's schema, for consumers that route without decoding
SCHEMA_HEADER: Final = "schema"


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


_CODEC: Final = RecordCodec(RECORD_NAME, "ledger.checks", CHECK_SCHEMA_DIR)


def schema_name() -> str:
    """`ContactCheckPerformed.v<N>` of the version `encode_check` writes."""
    return _CODEC.schema_name()


def encode_check(check: ContactCheck) -> bytes:
    if check.checked_at.utcoffset() is None:
        raise CodecError("checked_at is a naive datetime; pass a timezone-aware UTC datetime")
    return _CODEC.encode(asdict(check), f"check {check.check_id}")


def decode_check(value: bytes) -> ContactCheck:
    """The record in a Kafka value, resolved from its writer schema to the newest reader."""
    return ContactCheck(**_CODEC.decode(value))


def check_headers(check: ContactCheck) -> list[tuple[str, bytes]]:
    return [
        (SCHEMA_HEADER, schema_name().encode("ascii")),
        ("check_id", str(check.check_id).encode("ascii")),
    ]
