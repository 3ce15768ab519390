"""The checkpoint record (`avro/checkpoints/LogCheckpoint.v<N>.avsc`), and its JSON line form.

Avro single-object encoding like the events (C3 01, the writer schema's 8-byte fingerprint,
the body), so a record names its schema version without a registry. Writes use the newest
version; reads resolve any loaded one. The JSON line form is what an auditor keeps outside the
ledger (`consent-ledger checkpoint-verify --save`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from schemas.codec import CodecError
from schemas.events import rfc3339
from schemas.record_codec import RecordCodec

CHECKPOINT_SCHEMA_DIR: Final = Path(__file__).resolve().parent / "avro" / "checkpoints"
RECORD_NAME: Final = "LogCheckpoint"
#: Kafka header naming the value's schema, for consumers that route without decoding
SCHEMA_HEADER: Final = "schema"
_HEX64: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class LogCheckpoint:
    """One checkpoint; field names as in the schema, digests as 64 lowercase hex digits."""

    topic: str
    partition: int
    from_offset: int
    to_offset: int
    records: int
    previous_digest: str
    digest: str
    created_at: datetime

    @property
    def key(self) -> bytes:
        """The Kafka key: one partition's checkpoints stay in order on the checkpoint topic."""
        return f"{self.topic}:{self.partition}".encode()

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": rfc3339(self.created_at)}

    @classmethod
    def from_json(cls, data: Any) -> LogCheckpoint:
        """A checkpoint from its JSON form; CodecError names the field that is wrong."""
        if not isinstance(data, dict):
            raise CodecError("a checkpoint must be a JSON object")
        fields: dict[str, Any] = {name: data.get(name) for name in cls.__dataclass_fields__}
        for name, kind in (("topic", str), ("previous_digest", str), ("digest", str)):
            if not isinstance(fields[name], kind):
                raise CodecError(f"checkpoint field {name} must be a string")
        for name in ("partition", "from_offset", "to_offset", "records"):
            value = fields[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise CodecError(f"checkpoint field {name} must be a whole number >= 0")
        try:
            created = datetime.fromisoformat(str(fields["created_at"]))
        except ValueError:
            created = None
        if created is None or created.utcoffset() is None:
            raise CodecError("checkpoint field created_at must be an RFC 3339 time with offset")
        fields["created_at"] = created
        checkpoint = cls(**fields)
        checkpoint.check()
        return checkpoint

    def check(self) -> None:
        for name in ("previous_digest", "digest"):
            if not _HEX64.fullmatch(getattr(self, name)):
                raise CodecError(f"checkpoint field {name} must be 64 lowercase hex digits")
        if self.to_offset < self.from_offset:
            raise CodecError("checkpoint to_offset must not be below from_offset")


_CODEC: Final = RecordCodec(RECORD_NAME, "ledger.checkpoints", CHECKPOINT_SCHEMA_DIR)


def schema_name() -> str:
    """`LogCheckpoint.v<N>` of the version `encode_checkpoint` writes."""
    return _CODEC.schema_name()


def encode_checkpoint(checkpoint: LogCheckpoint) -> bytes:
    if checkpoint.created_at.utcoffset() is None:
        raise CodecError("created_at is a naive datetime; pass a timezone-aware UTC datetime")
    checkpoint.check()
    return _CODEC.encode(asdict(checkpoint), "a checkpoint")


def decode_checkpoint(value: bytes) -> LogCheckpoint:
    """The checkpoint in a Kafka value, resolved from its writer schema to the newest reader."""
    checkpoint = LogCheckpoint(**_CODEC.decode(value))
    checkpoint.check()
    return checkpoint


def checkpoint_headers() -> list[tuple[str, bytes]]:
    return [(SCHEMA_HEADER, schema_name().encode("ascii"))]
