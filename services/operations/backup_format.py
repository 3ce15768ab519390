"""The backup file (pure): an Avro object container file of Kafka records, and its header.

Each record is kept as the broker returned it: the key, value and header bytes untouched, so
a backup never depends on decoding (undecodable records are kept too). The file's metadata
names the topics it holds, their partition counts and the offsets each partition was read
from and up to. A restore checks the header before it writes anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from fastavro import parse_schema

#: bumped when the record schema or the metadata change incompatibly
FORMAT_VERSION: Final = 1
#: the topics a backup holds, in file order: the events, then the contact-check evidence
ROLES: Final = ("events", "checks")
#: deflate: every Avro implementation reads it without an extra package
CODEC: Final = "deflate"

META_FORMAT: Final = "ledger.backup_format"
META_VERSION: Final = "ledger.version"
META_CREATED_AT: Final = "ledger.created_at"
META_TOPICS: Final = "ledger.topics"

SCHEMA: Final[dict[str, Any]] = {
    "type": "record",
    "name": "LogRecord",
    "namespace": "ledger.backup",
    "doc": "One Kafka record as the broker returned it.",
    "fields": [
        {"name": "topic", "type": "string", "doc": "the topic it was read from"},
        {"name": "partition", "type": "int"},
        {"name": "offset", "type": "long"},
        {"name": "timestamp", "type": "long", "doc": "record timestamp, ms since the epoch"},
        {"name": "key", "type": ["null", "bytes"]},
        {"name": "value", "type": ["null", "bytes"]},
        {
            "name": "headers",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Header",
                    "fields": [
                        {"name": "key", "type": "string"},
                        {"name": "value", "type": ["null", "bytes"]},
                    ],
                },
            },
        },
    ],
}
PARSED_SCHEMA: Final = parse_schema(SCHEMA)


class BackupFileError(Exception):
    """The file is not a usable backup; the message names the field and what was expected."""


Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()

    def as_avro(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "key": self.key,
            "value": self.value,
            "headers": [{"key": k, "value": v} for k, v in self.headers],
        }

    @classmethod
    def from_avro(cls, record: Mapping[str, Any]) -> LogRecord:
        return cls(
            topic=record["topic"],
            partition=record["partition"],
            offset=record["offset"],
            timestamp=record["timestamp"],
            key=record["key"],
            value=record["value"],
            headers=tuple((h["key"], h["value"]) for h in record["headers"]),
        )


@dataclass(frozen=True, slots=True)
class TopicExtent:
    """What a backup holds of one topic: partition p's records from start_offsets[p] up to
    (not including) end_offsets[p], the high-water mark seen when the backup started."""

    role: str
    topic: str
    start_offsets: tuple[int, ...]
    end_offsets: tuple[int, ...]

    @property
    def partitions(self) -> int:
        return len(self.end_offsets)

    @property
    def span(self) -> int:
        """Offsets covered: the record count when the log has no gaps (the ledger's topics)."""
        return sum(e - s for s, e in zip(self.start_offsets, self.end_offsets, strict=True))

    def as_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "topic": self.topic,
            "partitions": self.partitions,
            "start_offsets": list(self.start_offsets),
            "end_offsets": list(self.end_offsets),
        }


@dataclass(frozen=True, slots=True)
class BackupHeader:
    created_at: datetime
    ledger_version: str
    topics: tuple[TopicExtent, ...]

    def metadata(self) -> dict[str, str]:
        """The file's metadata (Avro keeps it as bytes; these are UTF-8 text)."""
        return {
            META_FORMAT: str(FORMAT_VERSION),
            META_VERSION: self.ledger_version,
            META_CREATED_AT: self.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            META_TOPICS: json.dumps([t.as_json() for t in self.topics], separators=(",", ":")),
        }

    def extent(self, role: str) -> TopicExtent | None:
        return next((t for t in self.topics if t.role == role), None)


def _text(meta: Mapping[str, Any], key: str) -> str:
    value = meta.get(key)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise BackupFileError(f"metadata {key} is not UTF-8 text") from None
    if not isinstance(value, str) or not value:
        raise BackupFileError(f"metadata {key} is missing: not a consent-ledger backup file")
    return value


def _offsets(found: Any, field: str, partitions: int) -> tuple[int, ...]:
    valid = (
        isinstance(found, list)
        and len(found) == partitions
        and all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in found)
    )
    if not valid:
        raise BackupFileError(
            f"metadata {META_TOPICS}: {field} must list {partitions} offsets (integers >= 0)"
        )
    return tuple(found)


def _extent(entry: Any, index: int) -> TopicExtent:
    where = f"metadata {META_TOPICS}[{index}]"
    if not isinstance(entry, dict):
        raise BackupFileError(f"{where} is not an object")
    role, topic, partitions = entry.get("role"), entry.get("topic"), entry.get("partitions")
    if role not in ROLES:
        raise BackupFileError(f"{where}.role is {role!r}; accepted: {', '.join(ROLES)}")
    if not isinstance(topic, str) or not topic:
        raise BackupFileError(f"{where}.topic must be a topic name")
    if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
        raise BackupFileError(f"{where}.partitions must be an integer >= 1")
    starts = _offsets(entry.get("start_offsets"), f"[{index}].start_offsets", partitions)
    ends = _offsets(entry.get("end_offsets"), f"[{index}].end_offsets", partitions)
    if any(s > e for s, e in zip(starts, ends, strict=True)):
        raise BackupFileError(f"{where}: a start offset is beyond its end offset")
    return TopicExtent(role, topic, starts, ends)


def read_header(meta: Mapping[str, Any]) -> BackupHeader:
    """The header of a backup file from its Avro metadata; BackupFileError naming the field."""
    version = _text(meta, META_FORMAT)
    if version != str(FORMAT_VERSION):
        raise BackupFileError(
            f"metadata {META_FORMAT} is {version!r}; this ledger reads format {FORMAT_VERSION}"
        )
    try:
        created_at = datetime.fromisoformat(_text(meta, META_CREATED_AT))
    except ValueError:
        raise BackupFileError(f"metadata {META_CREATED_AT} is not an RFC 3339 time") from None
    try:
        entries = json.loads(_text(meta, META_TOPICS))
    except ValueError:
        raise BackupFileError(f"metadata {META_TOPICS} is not JSON") from None
    if not isinstance(entries, list) or not entries:
        raise BackupFileError(f"metadata {META_TOPICS} must be a non-empty list")
    topics = tuple(_extent(entry, i) for i, entry in enumerate(entries))
    roles = [t.role for t in topics]
    names = [t.topic for t in topics]
    if len(set(roles)) != len(roles) or len(set(names)) != len(names):
        raise BackupFileError(f"metadata {META_TOPICS} names a role or a topic twice")
    return BackupHeader(created_at, _text(meta, META_VERSION), topics)


def check_record(header: BackupHeader, record: LogRecord) -> TopicExtent:
    """The extent a record of the file belongs to; BackupFileError when it is outside them."""
    extent = next((t for t in header.topics if t.topic == record.topic), None)
    if extent is None:
        raise BackupFileError(f"a record names topic {record.topic!r}, not in the header")
    if not 0 <= record.partition < extent.partitions:
        raise BackupFileError(
            f"a record of {record.topic} names partition {record.partition};"
            f" the header says {extent.partitions} partitions"
        )
    p = record.partition
    if not extent.start_offsets[p] <= record.offset < extent.end_offsets[p]:
        raise BackupFileError(
            f"record {record.topic}[{p}]@{record.offset} is outside the backed-up range"
            f" [{extent.start_offsets[p]}, {extent.end_offsets[p]})"
        )
    return extent


def target_problems(
    extent: TopicExtent, target: str, partitions: int | None, highwaters: Mapping[int, int]
) -> list[str]:
    """Why `extent` cannot be restored into topic `target` (partitions None: it does not exist;
    `highwaters` of its partitions); empty when it can."""
    if partitions is None:
        return [
            f"topic {target} does not exist: create it with {extent.partitions} partitions,"
            " or pass --create-topic"
        ]
    problems = []
    if partitions != extent.partitions:
        problems.append(
            f"topic {target} has {partitions} partitions; the backup of {extent.topic} has"
            f" {extent.partitions}: records must go back to the partitions they came from"
        )
    filled = {p: n for p, n in sorted(highwaters.items()) if n}
    if filled:
        listed = ", ".join(f"partition {p}: {n}" for p, n in filled.items())
        problems.append(
            f"topic {target} is not empty ({listed} records): restore only into an empty topic"
        )
    return problems


def count_mismatches(
    restored: Mapping[int, int], highwaters: Mapping[int, int]
) -> list[tuple[int, int, int]]:
    """(partition, records restored, high-water mark) wherever the two differ."""
    partitions = sorted(set(restored) | set(highwaters))
    return [
        (p, restored.get(p, 0), highwaters.get(p, 0))
        for p in partitions
        if restored.get(p, 0) != highwaters.get(p, 0)
    ]


def roles_to_restore(header: BackupHeader, only: Sequence[str]) -> list[TopicExtent]:
    """The extents to restore, in file order: those of `only`, or all of the file's."""
    missing = [role for role in only if header.extent(role) is None]
    if missing:
        held = ", ".join(t.role for t in header.topics)
        raise BackupFileError(f"--only {missing[0]}: the file holds only {held}")
    return [t for t in header.topics if not only or t.role in only]
