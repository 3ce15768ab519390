"""Which tables `consent-ledger rebuild` replaces, the schemas it works in, and the arithmetic of
its positions. Pure: the SQL is in projections/rebuild_schema.py.

Design: docs/developers/design/rebuild.md
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final

from projections.log_records import Record

REBUILT: Final = "rebuilt"
REPLAYED: Final = "replayed"
KEPT: Final = "kept"

TABLES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "journal": REBUILT,
        "subject_facts": REBUILT,
        "identifiers": REBUILT,
        "erasures": REBUILT,
        "suppressed_identifiers": REBUILT,
        "notices": REBUILT,
        "purpose_versions": REBUILT,
        "rights_requests": REBUILT,
        "link_revocations": REBUILT,
        "rejected_records": REBUILT,
        "duplicate_records": REBUILT,
        "projector_offsets": REBUILT,
        # every subject is queued again: the state feed republishes all (compacted topic)
        "state_feed_outbox": REBUILT,
        "checkpoint_state": REPLAYED,
        "metric_histograms": REPLAYED,
        # the live outbox already queued every dead letter up to the live offsets
        "dead_letter_outbox": REPLAYED,
        # per-subject data keys exist only in PostgreSQL: losing one loses the identifiers
        "subject_keys": KEPT,
        "idempotency_keys": KEPT,
        # checkpoints cut from the live digests, not yet published
        "checkpoint_outbox": KEPT,
        "schema_migrations": KEPT,
        "api_keys": KEPT,
        # staff sessions of the auditor's pages: the API's own short-lived state
        "staff_sessions": KEPT,
        # registered websites and their publishable keys: configuration, like api_keys
        "sites": KEPT,
        "access_log": KEPT,
        # who pulled which audience when: an audit record, like the access log
        "audience_exports": KEPT,
        # the projector's own reports, written beside its batches, never by one
        "projector_partitions": KEPT,
        "projector_stops": KEPT,
        # an operator's record of where MACs start; a replay of the same log applies the same
        "record_mac_cutoffs": KEPT,
        # webhook subscriptions (configuration) and the dispatcher's own progress and
        # deliveries: it reads the log itself, so a rebuild of the projections leaves them be
        "webhook_subscriptions": KEPT,
        "webhook_secrets": KEPT,
        "webhook_deliveries": KEPT,
        "webhook_attempts": KEPT,
        "webhook_dispatch_offsets": KEPT,
        "webhook_outcome_counts": KEPT,
        "webhook_erasure_identifiers": KEPT,
    }
)

#: where a rebuild replays the log into
REBUILD_SCHEMA: Final = "ledger_rebuild"
#: where a switch moves the tables it replaced: PREVIOUS_PREFIX + the switch's UTC time
PREVIOUS_PREFIX: Final = "ledger_previous_"


def tables_of(kind: str) -> tuple[str, ...]:
    return tuple(sorted(name for name, k in TABLES.items() if k == kind))


def replayed_into() -> tuple[str, ...]:
    """The tables a schema the log is replayed into holds: the batch writes all of them."""
    return tables_of(REBUILT) + tables_of(REPLAYED)


def unclassified(names: Iterable[str]) -> list[str]:
    return sorted(set(names) - set(TABLES))


def previous_schema(at: datetime) -> str:
    """The schema a switch at `at` moves the replaced tables to; names sort by time."""
    return PREVIOUS_PREFIX + at.astimezone(UTC).strftime("%Y%m%d_%H%M%S_%f")


def newest_previous(schemas: Iterable[str]) -> str | None:
    kept = sorted(s for s in schemas if s.startswith(PREVIOUS_PREFIX))
    return kept[-1] if kept else None


def quote_ident(name: str) -> str:
    """An SQL identifier, quoted (schema and table names are interpolated into DDL)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def split_at_caps(
    records: Sequence[Record], caps: Mapping[int, int]
) -> tuple[list[Record], dict[int, int]]:
    """The records below their partition's cap, in the order given, and per partition the
    first offset at or beyond it (where the reader must continue once the cap moves)."""
    kept: list[Record] = []
    beyond: dict[int, int] = {}
    for record in records:
        if record.partition in beyond:
            continue
        if record.offset < caps.get(record.partition, 0):
            kept.append(record)
        else:
            beyond[record.partition] = record.offset
    return kept, beyond


def lag(caps: Mapping[int, int], positions: Mapping[int, int]) -> int:
    """Records the replay still has to read to reach the caps."""
    return sum(max(0, cap - positions.get(p, 0)) for p, cap in caps.items())


def total_records(
    highwaters: Mapping[int, int | None], caps: Mapping[int, int], positions: Mapping[int, int]
) -> int:
    """The log's size as far as known: each partition's high-water mark, or more if a cap or
    the replay is already past the last one seen."""
    partitions = set(highwaters) | set(caps) | set(positions)
    return sum(max(highwaters.get(p) or 0, caps.get(p, 0), positions.get(p, 0)) for p in partitions)


def digest_disagreements(
    rows: Iterable[tuple[int, int, bytes, int | None, bytes | None]],
) -> tuple[int, list[int]]:
    """From (partition, live next offset, live digest, replayed next offset, replayed digest):
    how many partitions agree, and those that do not (same position, other digest)."""
    agree = 0
    differ: list[int] = []
    for partition, live_next, live_digest, next_offset, digest in rows:
        if (live_next, live_digest) == (next_offset, digest):
            agree += 1
        else:
            differ.append(partition)
    return agree, sorted(differ)
