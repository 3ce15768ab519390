"""The checkpoint record (`avro/checkpoints/LogCheckpoint.v<N>.avsc`), and its JSON line form.

Avro single-object encoding like the events (C3 01, the writer schema's 8-byte fingerprint,
the body), so a record names its schema version without a registry. Writes use the newest
version; reads resolve any loaded one. The JSON line form is what an auditor keeps outside the
ledger (`consent-ledger checkpoint-verify --save`).
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

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from schemas.codec import HEADER_SIZE, MAGIC, CodecError, schema_fingerprint
from schemas.events import rfc3339

CHECKPOINT_SCHEMA_DIR: Final = Path(__file__).resolve().parent / "avro" / "checkpoints"
RECORD_NAME: Final = "LogCheckpoint"
#: Kafka header naming the value's schema, for consumers that route without decoding
SCHEMA_HEADER: Final = "schema"
_FILE_RE: Final = re.compile(rf"{RECORD_NAME}\.v([1-9][0-9]*)\.avsc")
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


@dataclass(frozen=True, slots=True)
class _Version:
    number: int
    fingerprint: bytes
    parsed: dict[str, Any]


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[_Version, ...]:
    """Every schema version in the folder, oldest first."""
    found = []
    for path in sorted(CHECKPOINT_SCHEMA_DIR.glob("*.avsc")):
        match = _FILE_RE.fullmatch(path.name)
        if match is None:
            raise CodecError(f"schema file {path.name!r} is not named {RECORD_NAME}.v<N>.avsc")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            parsed = parse_schema(raw)
            fingerprint = schema_fingerprint(raw)
        except Exception as exc:
            raise CodecError(f"cannot load schema {path}: {exc}") from exc
        if (
            not isinstance(parsed, dict)
            or parsed.get("name") != f"ledger.checkpoints.{RECORD_NAME}"
        ):
            raise CodecError(
                f"schema {path.name} is not the record ledger.checkpoints.{RECORD_NAME}"
            )
        found.append(_Version(int(match[1]), fingerprint, parsed))
    if not found:
        raise CodecError(f"no {RECORD_NAME} schema in {CHECKPOINT_SCHEMA_DIR}")
    return tuple(sorted(found, key=lambda v: v.number))


def schema_name() -> str:
    """`LogCheckpoint.v<N>` of the version `encode_checkpoint` writes."""
    return f"{RECORD_NAME}.v{_versions()[-1].number}"


def encode_checkpoint(checkpoint: LogCheckpoint) -> bytes:
    if checkpoint.created_at.utcoffset() is None:
        raise CodecError("created_at is a naive datetime; pass a timezone-aware UTC datetime")
    checkpoint.check()
    writer = _versions()[-1]
    buffer = io.BytesIO()
    buffer.write(MAGIC)
    buffer.write(writer.fingerprint)
    try:
        schemaless_writer(buffer, writer.parsed, asdict(checkpoint), disable_tuple_notation=True)
    except Exception as exc:
        raise CodecError(f"cannot encode a checkpoint: {exc}") from exc
    return buffer.getvalue()


def decode_checkpoint(value: bytes) -> LogCheckpoint:
    """The checkpoint in a Kafka value, resolved from its writer schema to the newest reader."""
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
    checkpoint = LogCheckpoint(**record)
    checkpoint.check()
    return checkpoint


def checkpoint_headers() -> list[tuple[str, bytes]]:
    return [(SCHEMA_HEADER, schema_name().encode("ascii"))]
