"""Single-object encoding for the records of the ledger's other topics (contact checks,
checkpoints): framed like the events (C3 01, the writer schema's 8-byte fingerprint, the
body), so any reader can tell a record's schema version without a registry.

Each record type keeps its versions in a folder of its own (`avro/<folder>/<Name>.v<N>.avsc`),
since the event codec loads every `.avsc` of `avro/` as an event type. Writes use the newest
version; reads resolve any loaded version to the newest.
"""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from schemas.codec import HEADER_SIZE, MAGIC, CodecError, schema_fingerprint


@dataclass(frozen=True, slots=True)
class RecordVersion:
    number: int
    fingerprint: bytes
    parsed: dict[str, Any]


class RecordCodec:
    """Encodes and decodes one record type, `<namespace>.<name>`, from the schemas of `folder`."""

    def __init__(self, name: str, namespace: str, folder: Path) -> None:
        self.name = name
        self.namespace = namespace
        self.folder = folder

    @functools.cached_property
    def versions(self) -> tuple[RecordVersion, ...]:
        """Every schema version in the folder, oldest first."""
        file_re = re.compile(rf"{self.name}\.v([1-9][0-9]*)\.avsc")
        full_name = f"{self.namespace}.{self.name}"
        found = []
        for path in sorted(self.folder.glob("*.avsc")):
            match = file_re.fullmatch(path.name)
            if match is None:
                raise CodecError(f"schema file {path.name!r} is not named {self.name}.v<N>.avsc")
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                parsed = parse_schema(raw)
                fingerprint = schema_fingerprint(raw)
            except Exception as exc:
                raise CodecError(f"cannot load schema {path}: {exc}") from exc
            if not isinstance(parsed, dict) or parsed.get("name") != full_name:
                raise CodecError(f"schema {path.name} is not the record {full_name}")
            found.append(RecordVersion(int(match[1]), fingerprint, parsed))
        if not found:
            raise CodecError(f"no {self.name} schema in {self.folder}")
        return tuple(sorted(found, key=lambda v: v.number))

    def schema_name(self) -> str:
        """`<Name>.v<N>` of the version `encode` writes."""
        return f"{self.name}.v{self.versions[-1].number}"

    def encode(self, record: Mapping[str, Any], what: str) -> bytes:
        """The Kafka value for `record`; `what` names it in an error."""
        writer = self.versions[-1]
        buffer = io.BytesIO()
        buffer.write(MAGIC)
        buffer.write(writer.fingerprint)
        try:
            schemaless_writer(buffer, writer.parsed, dict(record), disable_tuple_notation=True)
        except Exception as exc:
            raise CodecError(f"cannot encode {what}: {exc}") from exc
        return buffer.getvalue()

    def decode(self, value: bytes) -> dict[str, Any]:
        """The record in a Kafka value, resolved from its writer schema to the newest reader."""
        if len(value) < HEADER_SIZE or value[:2] != MAGIC:
            raise CodecError("not single-object encoded: expected c301 and an 8-byte fingerprint")
        fingerprint = bytes(value[2:HEADER_SIZE])
        writer = next((v for v in self.versions if v.fingerprint == fingerprint), None)
        if writer is None:
            raise CodecError(f"unknown {self.name} schema fingerprint 0x{fingerprint.hex()}")
        reader = self.versions[-1]
        buffer = io.BytesIO(value)
        buffer.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(
                buffer, writer.parsed, None if reader is writer else reader.parsed
            )
        except Exception as exc:
            raise CodecError(f"cannot decode a {self.name} body: {exc!r}") from exc
        if buffer.tell() != len(value) or not isinstance(record, dict):
            raise CodecError(f"a {self.name} record has trailing bytes or is not a record")
        return record
