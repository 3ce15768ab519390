"""Avro single-object encoding of ledger events: C3 01, the writer's fingerprint, the body.

The 8-byte fingerprint in every Kafka value names the exact writer schema, so any version ever
released can be found without a registry and resolved to the newest reader schema.
"""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypeVar
from uuid import UUID

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

from schemas.event_limits import limit_problem
from schemas.events import Actor, Event, Source

MAGIC: Final = b"\xc3\x01"
HEADER_SIZE: Final = len(MAGIC) + 8
NAMESPACE: Final = "ledger.events"
DEFAULT_SCHEMA_DIR: Final = Path(__file__).resolve().parent / "avro"
COMMON_FIELDS: Final = (
    "event_id",
    "subject_id",
    "occurred_at",
    "recorded_at",
    "source",
    "actor",
    "notice_version",
)
#: the optional data field of how an event was expressed (schemas/events.py `Context`)
CONTEXT: Final = "context"
CRC64_EMPTY: Final = 0xC15D213AA4D7A795
_SCHEMA_FILE_RE: Final = re.compile(r"(?P<type>[A-Za-z][A-Za-z0-9_]*)\.v(?P<version>[1-9][0-9]*)")


class CodecError(Exception):
    """Any failure to load a schema, encode or decode an event; wraps fastavro's own errors."""


def _crc64_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


_CRC64_TABLE: Final = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The Avro spec's 64-bit Rabin fingerprint (CRC-64-AVRO) of `data`."""
    fp = CRC64_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp


def schema_fingerprint(schema: Mapping[str, Any]) -> bytes:
    """CRC-64-AVRO of the Parsing Canonical Form, little-endian as single-object encoding wants."""
    canonical = to_parsing_canonical_form(dict(schema))
    return crc64_avro(canonical.encode("utf-8")).to_bytes(8, "little")


@dataclass(frozen=True, slots=True)
class _Version:
    """One schema file, parsed once: what encode and decode need on the hot path."""

    event_type: str
    version: int
    fingerprint: bytes
    parsed: dict[str, Any]
    data_fields: frozenset[str]
    array_fields: tuple[str, ...]


def _load(path: Path) -> _Version:
    match = _SCHEMA_FILE_RE.fullmatch(path.name.removesuffix(".avsc"))
    if match is None:
        raise CodecError(f"schema file {path.name!r} is not named <EventType>.v<N>.avsc")
    event_type = match["type"]
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        parsed = parse_schema(raw)
        fingerprint = schema_fingerprint(raw)
    except Exception as exc:
        raise CodecError(f"cannot load schema {path}: {exc}") from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise CodecError(f"schema {path.name} is not an Avro record")
    if parsed["name"] != f"{NAMESPACE}.{event_type}":
        raise CodecError(
            f"schema {path.name} names record {parsed['name']!r}; expected {NAMESPACE}.{event_type}"
        )
    fields = parsed["fields"]
    names = [field["name"] for field in fields]
    if tuple(names[: len(COMMON_FIELDS)]) != COMMON_FIELDS:
        raise CodecError(f"schema {path.name} must start with the common fields {COMMON_FIELDS}")
    arrays = tuple(
        field["name"]
        for field in fields[len(COMMON_FIELDS) :]
        if isinstance(field["type"], dict) and field["type"].get("type") == "array"
    )
    return _Version(
        event_type=event_type,
        version=int(match["version"]),
        fingerprint=fingerprint,
        parsed=parsed,
        data_fields=frozenset(names[len(COMMON_FIELDS) :]),
        array_fields=arrays,
    )


def _aware(name: str, value: object) -> object:
    if isinstance(value, datetime) and value.utcoffset() is None:
        raise CodecError(
            f"{name} is a naive datetime ({value.isoformat()}); pass a timezone-aware UTC datetime"
        )
    return value


class EventCodec:
    """Encodes events with the newest schema of their type; decodes any version it has loaded."""

    def __init__(self, directory: Path | str | None = None) -> None:
        root = DEFAULT_SCHEMA_DIR if directory is None else Path(directory)
        versions = [_load(path) for path in sorted(root.glob("*.avsc"))]
        if not versions:
            raise CodecError(f"no .avsc schema files in {root}")
        self._by_fingerprint: dict[bytes, _Version] = {}
        self._writers: dict[str, _Version] = {}
        for version in versions:
            self._by_fingerprint[version.fingerprint] = version
            newest = self._writers.get(version.event_type)
            if newest is None or version.version > newest.version:
                self._writers[version.event_type] = version
        self._schemas = MappingProxyType({t: v.parsed for t, v in self._writers.items()})

    def fingerprint_of(self, event_type: str) -> bytes:
        """The 8-byte fingerprint that `encode` writes for `event_type`."""
        return self._writer(event_type).fingerprint

    def schemas(self) -> Mapping[str, dict[str, Any]]:
        """The parsed writer schema of each event type (read-only view; do not mutate)."""
        return self._schemas

    def encode(self, event: Event) -> bytes:
        """The Kafka value for `event`; refuses naive datetimes, data keys not in the schema and
        values outside schemas/event_limits.py."""
        writer = self._writer(event.type)
        data = event.data
        unknown = data.keys() - writer.data_fields
        if unknown:
            raise CodecError(
                f"{event.type} data has unknown field(s) {sorted(unknown)}; "
                f"accepted: {sorted(writer.data_fields)}"
            )
        for name in writer.array_fields:
            if name in data and not isinstance(data[name], list | tuple):
                raise CodecError(f"{event.type}.{name} must be a list of strings")
        record: dict[str, object] = event.envelope()
        _aware("occurred_at", event.occurred_at)
        _aware("recorded_at", event.recorded_at)
        for name, value in data.items():
            record[name] = _aware(f"{event.type}.{name}", value)
        problem = limit_problem(event.type, record)
        if problem:
            raise CodecError(f"cannot encode {event.type} {event.event_id}: {problem}")
        buffer = io.BytesIO()
        buffer.write(MAGIC)
        buffer.write(writer.fingerprint)
        try:
            schemaless_writer(buffer, writer.parsed, record, disable_tuple_notation=True)
        except Exception as exc:
            raise CodecError(f"cannot encode {event.type} {event.event_id}: {exc}") from exc
        return buffer.getvalue()

    def decode(self, value: bytes) -> Event:
        """The event in a Kafka value, resolved from its writer schema to the newest reader.

        Every failure is a CodecError (fastavro's EOFError, ValueError, UnicodeDecodeError...
        wrapped); a declared length past the value's end fails without allocating it."""
        if len(value) < HEADER_SIZE or value[:2] != MAGIC:
            raise CodecError(
                f"not single-object encoded: magic {bytes(value[:2]).hex() or 'missing'} "
                f"in {len(value)} bytes; expected c301 and an 8-byte fingerprint"
            )
        fingerprint = bytes(value[2:HEADER_SIZE])
        writer = self._by_fingerprint.get(fingerprint)
        if writer is None:
            raise CodecError(f"unknown schema fingerprint 0x{fingerprint.hex()}")
        reader = self._writers[writer.event_type]
        buffer = io.BytesIO(value)
        buffer.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(
                buffer, writer.parsed, None if reader is writer else reader.parsed
            )
        except Exception as exc:
            raise CodecError(
                f"cannot decode {writer.event_type} v{writer.version} body: {exc!r}"
            ) from exc
        if buffer.tell() != len(value):
            raise CodecError(
                f"{writer.event_type} body has {len(value) - buffer.tell()} trailing byte(s)"
            )
        if not isinstance(record, dict):
            raise CodecError(f"{writer.event_type} body is not a record")
        problem = limit_problem(writer.event_type, record)
        if problem:
            raise CodecError(f"decoded {writer.event_type} breaks a limit: {problem}")
        return _to_event(writer.event_type, record)

    def _writer(self, event_type: str) -> _Version:
        writer = self._writers.get(event_type)
        if writer is None:
            raise CodecError(f"unknown event type {event_type!r}; known: {sorted(self._writers)}")
        return writer


#: Source and Actor values seen recently, shared between events (both are frozen): most events
#: carry one of a few, and building the dataclasses was a visible share of every decode
_SOURCES: dict[tuple[Any, ...], Source] = {}
_ACTORS: dict[tuple[Any, ...], Actor] = {}
T = TypeVar("T")
#: each cache is emptied when it reaches this size (collection points may be unique per request)
_SHARED_MAX: Final = 1024


def _shared(cache: dict[tuple[Any, ...], T], key: tuple[Any, ...], make: Callable[..., T]) -> T:
    """The cached value for `key`, made (and kept, the cache emptied when full) if absent."""
    value = cache.get(key)
    if value is None:
        if len(cache) >= _SHARED_MAX:
            cache.clear()
        value = cache[key] = make(*key)
    return value


def _source(fields: dict[str, Any]) -> Source:
    return _shared(
        _SOURCES, (fields["method"], fields["system"], fields["collection_point"]), Source
    )


def _actor(fields: dict[str, Any]) -> Actor:
    return _shared(_ACTORS, (fields["type"], fields["id"]), Actor)


def _to_event(event_type: str, record: dict[str, Any]) -> Event:
    pop = record.pop
    if record.get(CONTEXT, True) is None:
        del record[CONTEXT]  # no context (a record older than the field): the key is absent
    return Event(
        event_type,
        pop("event_id"),
        pop("subject_id"),
        pop("occurred_at"),
        pop("recorded_at"),
        _source(pop("source")),
        _actor(pop("actor")),
        pop("notice_version"),
        record,
    )


@functools.lru_cache(maxsize=1)
def default_codec() -> EventCodec:
    """The codec over the packaged schemas, built once per process."""
    return EventCodec()


def kafka_headers(event: Event) -> list[tuple[str, bytes]]:
    """Headers that let consumers route or skip a record without decoding its value."""
    return headers_for(event.type, event.event_id)


def headers_for(event_type: str, event_id: UUID) -> list[tuple[str, bytes]]:
    """The same headers from the journal's columns, for re-producing a record undecoded."""
    return [("event_type", event_type.encode("utf-8")), ("event_id", str(event_id).encode("utf-8"))]
