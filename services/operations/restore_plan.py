"""Which records `restore-log` produces (pure): every offset of every partition, the stored
record or a placeholder, so every record lands at its original offset.

Design: docs/developers/design/restore-log.md
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from schemas.codec import headers_for
from schemas.record_mac import MAC_HEADER, decode_headers
from services.operations.backup_format import Headers

JOURNAL: Final = "journal"
DUPLICATE: Final = "duplicate"
REJECTED: Final = "rejected"
PLACEHOLDER: Final = "placeholder"

PLACEHOLDER_HEADERS: Final[Headers] = (("restore_placeholder", b"1"),)
PLACEHOLDER_ERROR: Final = (
    "placeholder written by restore-log: the database held no record at this offset"
    " (purged by retention, or skipped before duplicate_records existed)"
)


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record to produce, at `offset` of `partition` (where it was in the lost log)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    #: ms since the epoch; None lets the producer stamp it
    timestamp: int | None
    source: str


#: a placeholder's key: empty, not null, as producers refuse a record with neither key nor value
PLACEHOLDER_KEY: Final = b""


def placeholder(partition: int, offset: int, headers: Headers = PLACEHOLDER_HEADERS) -> OutRecord:
    return OutRecord(partition, offset, PLACEHOLDER_KEY, None, headers, None, PLACEHOLDER)


def epoch_ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


class Row(Protocol):
    """A database row (asyncpg.Record) or a dict."""

    def __getitem__(self, key: str) -> Any: ...


def stored_record(row: Row) -> OutRecord:
    """A row of the stored records (projections/stored_log.py) as the record to produce.

    An event, first or repeated, gets what the API gave it: the subject id as key, the
    event_type and event_id headers and its stored MAC header; its timestamp is the event's
    recorded_at (the original timestamp is not stored, and the API sends an event as it
    records it). A rejected record gets its stored key, value and headers (none when kept
    before headers were stored) and the time of the restore. ValueError for stored headers
    that do not read back."""
    partition, offset, value = row["log_partition"], row["log_offset"], row["record_value"]
    value = None if value is None else bytes(value)
    source = row["source"]
    if source == REJECTED:
        key, stored = row["record_key"], row["record_headers"]
        headers = () if stored is None else decode_headers(bytes(stored))
        return OutRecord(
            partition, offset, None if key is None else bytes(key), value, headers, None, source
        )
    if row["subject_id"] is None:
        # a repeat whose first occurrence is no longer journaled: its key and type are gone,
        # so its MAC could not verify and is left out
        headers = (("event_id", str(row["event_id"]).encode("utf-8")),)
        return OutRecord(partition, offset, None, value, headers, None, source)
    mac = row["record_mac"]
    return OutRecord(
        partition,
        offset,
        row["subject_id"].encode("utf-8"),
        value,
        (
            *headers_for(row["event_type"], row["event_id"]),
            *(() if mac is None else ((MAC_HEADER, mac.encode("ascii")),)),
        ),
        epoch_ms(row["recorded_at"]),
        source,
    )


def gap_partitions(ends: Mapping[int, int], held: Mapping[int, int]) -> set[int]:
    """The partitions that get placeholders: the database holds fewer distinct offsets below
    their end than the end."""
    return {p for p, end in ends.items() if held.get(p, 0) < end}


def log_ends(stored_offsets: Mapping[int, int], last_offsets: Mapping[int, int]) -> dict[int, int]:
    """The end of each partition's restored log: the projector's stored next offset, or past
    the last record the database holds if that is further (offsets stored under another
    topic name)."""
    ends = dict(stored_offsets)
    for partition, last in last_offsets.items():
        ends[partition] = max(ends.get(partition, 0), last + 1)
    return {p: n for p, n in sorted(ends.items()) if n > 0}


class GapFiller:
    """Feed the stored records in (partition, offset) order; get back what to produce, with a
    placeholder at every offset the database lacks, up to each partition's end.

    At an offset held twice only the first fed counts (feed the journal's row first). Every
    placeholder gets `placeholder_headers`."""

    def __init__(
        self, ends: Mapping[int, int], placeholder_headers: Headers = PLACEHOLDER_HEADERS
    ) -> None:
        self.ends = dict(sorted(ends.items()))
        self.placeholder_headers = placeholder_headers
        self._next: dict[int, int] = {}
        self._current = -1

    def feed(self, record: OutRecord) -> list[OutRecord]:
        p = record.partition
        if p < self._current:
            raise ValueError(f"records out of order: partition {p} after {self._current}")
        if p not in self.ends or record.offset >= self.ends[p]:
            raise ValueError(f"record {p}@{record.offset} is beyond the end of its partition")
        out = self._close_before(p)
        self._current = p
        start = self._next.get(p, 0)
        if record.offset < start:
            return out  # the same offset again, or out of order: the first one fed stands
        out += [placeholder(p, o, self.placeholder_headers) for o in range(start, record.offset)]
        out.append(record)
        self._next[p] = record.offset + 1
        return out

    def finish(self) -> list[OutRecord]:
        """The placeholders after the last stored record of every partition."""
        return self._close_before(max(self.ends, default=-1) + 1)

    def _close_before(self, partition: int) -> list[OutRecord]:
        out: list[OutRecord] = []
        for p, end in self.ends.items():
            if p >= partition:
                break
            start = self._next.get(p, 0)
            out += [placeholder(p, o, self.placeholder_headers) for o in range(start, end)]
            self._next[p] = max(start, end)
        return out
