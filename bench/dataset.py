"""The benchmark's data: a realistic mix of consent histories, generated once and cached.

The embedded broker keeps its log in memory only, so the cache is not a broker but a file: an
Avro object container (OCF) of the Kafka records exactly as the ledger writes them (key,
single-object-encoded value, partition from the same murmur2 partitioner). Each run produces
the file into a fresh topic; against an external broker a topic that already holds it is reused.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import fastavro

from schemas.codec import default_codec, headers_for
from schemas.events import Event, Source, grant_data
from schemas.record_mac import EVENTS, RecordMacs
from services.kafka_access import KafkaAccess
from services.ledger.kafka_clients import new_producer
from services.ledger.partitioning import partition_for

#: bump when the mix or the file layout changes, so old caches are not reused
VERSION: Final = 2
SUBJECT_PREFIX: Final = "s"
HISTORY_SUBJECT: Final = "history-0"
EPOCH: Final = datetime(2024, 1, 1, tzinfo=UTC)

RECORD_SCHEMA: Final = {
    "type": "record",
    "name": "BenchRecord",
    "namespace": "consent_ledger.bench",
    "fields": [
        {"name": "partition", "type": "int"},
        {"name": "key", "type": "bytes"},
        {"name": "value", "type": "bytes"},
        {"name": "event_type", "type": "string"},
        {"name": "event_id", "type": "string"},
        {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    ],
}
PARSED_SCHEMA: Final = fastavro.parse_schema(RECORD_SCHEMA)

Step = tuple[str, dict[str, Any], str]  # event type, data, collection method


def subject_steps(rnd: random.Random) -> list[Step]:
    """One subject's events in order: several purposes each, some withdrawals, objections,
    restrictions. About 2.5 events per subject on average."""
    steps: list[Step] = []
    if rnd.random() < 0.60:
        steps.append(
            (
                "RelationshipRecorded",
                {"basis": "contract", "purposes": [], "valid_until": None},
                "api",
            )
        )
    granted_newsletter = rnd.random() < 0.65
    if granted_newsletter:
        method = "double_opt_in" if rnd.random() < 0.7 else "form"
        steps.append(("ConsentGranted", _grant("newsletter", "email"), method))
    if rnd.random() < 0.30:
        partners = "email" if rnd.random() < 0.6 else "sms"
        steps.append(("ConsentGranted", _grant("marketing_partners", partners), "form"))
    if rnd.random() < 0.40:
        steps.append(("ConsentGranted", _grant("cookies_analytics", "web"), "form"))
    if rnd.random() < 0.25:
        steps.append(("ConsentGranted", _grant("cookies_marketing", "web"), "form"))
    if granted_newsletter and rnd.random() < 0.12:
        steps.append(("ConsentWithdrawn", _withdrawal("newsletter", "email"), "unsubscribe_link"))
    if rnd.random() < 0.03:
        steps.append(("ConsentWithdrawn", _withdrawal(None, None), "preference_center"))
    if rnd.random() < 0.06:
        channel = None if rnd.random() < 0.7 else "email"
        steps.append(
            (
                "DirectMarketingObjected",
                {"channel": channel, "campaign_id": None},
                "unsubscribe_link",
            )
        )
        if rnd.random() < 0.15:
            lifted = {"channel": channel, "evidence": f"ticket-{rnd.randrange(10**6)}"}
            steps.append(("DirectMarketingObjectionLifted", lifted, "support"))
    if rnd.random() < 0.02:
        steps.append(("ProcessingObjected", {"purpose": "profiling"}, "support"))
    if rnd.random() < 0.005:
        restricted = {"ground": "accuracy_contested", "purposes": []}
        steps.append(("ProcessingRestricted", restricted, "support"))
    return steps


def history_steps(count: int) -> list[Step]:
    """A long-lived subject's many changes of mind: grants and withdrawals over the marketing
    purposes, with an objection and its lift now and then."""
    cycle: list[Step] = [
        ("ConsentGranted", _grant("newsletter", "email"), "form"),
        ("ConsentGranted", _grant("marketing_partners", "sms"), "form"),
        ("ConsentWithdrawn", _withdrawal("marketing_partners", "sms"), "preference_center"),
        ("ConsentGranted", _grant("cookies_marketing", "web"), "form"),
        ("DirectMarketingObjected", {"channel": None, "campaign_id": None}, "unsubscribe_link"),
        ("DirectMarketingObjectionLifted", {"channel": None, "evidence": "ticket-1"}, "support"),
        ("ConsentWithdrawn", _withdrawal("newsletter", "email"), "unsubscribe_link"),
        ("ConsentWithdrawn", _withdrawal("cookies_marketing", "web"), "preference_center"),
    ]
    return [cycle[n % len(cycle)] for n in range(count)]


def _grant(purpose: str, channel: str) -> dict[str, Any]:
    return grant_data(purpose, channel)


def _withdrawal(purpose: str | None, channel: str | None) -> dict[str, Any]:
    return {"purpose": purpose, "channel": channel, "reason": None, "campaign_id": None}


def events_of(subject_id: str, steps: list[Step], rnd: random.Random) -> list[Event]:
    """The steps as events with reproducible ids and increasing times since EPOCH."""
    moment = EPOCH + timedelta(seconds=rnd.randrange(86_400 * 300))
    out = []
    for kind, data, method in steps:
        moment += timedelta(seconds=rnd.randrange(60, 86_400 * 30))
        event_id = uuid.UUID(int=rnd.getrandbits(128), version=4)
        out.append(Event(kind, event_id, subject_id, moment, moment, Source(method), data=data))
    return out


def subject_events(seed: int, prefix: str, count: int) -> Iterator[Event]:
    """The events of subjects `<prefix>0` .. `<prefix><count-1>`, subject by subject."""
    rnd = random.Random(f"{prefix}-{seed}")  # each prefix its own ids
    for n in range(count):
        yield from events_of(f"{prefix}{n}", subject_steps(rnd), rnd)


@dataclass(frozen=True, slots=True)
class Dataset:
    path: Path
    subjects: int
    events: int
    partitions: int
    history_subject: str
    history_events: int


def cache_path(root: Path, subjects: int, history: int, partitions: int, seed: int) -> Path:
    name = f"events-v{VERSION}-{subjects}s-{history}h-p{partitions}-seed{seed}.avro"
    return root / name


def ensure_dataset(
    root: Path, subjects: int, history: int, partitions: int, seed: int = 1
) -> Dataset:
    """The cached file for these sizes, generated first when it is not there yet."""
    path = cache_path(root, subjects, history, partitions, seed)
    meta = path.with_suffix(".json")
    if not (path.exists() and meta.exists()):
        root.mkdir(parents=True, exist_ok=True)
        counts = _write(path, subjects, history, partitions, seed)
        meta.write_text(json.dumps({"events": sum(counts), "per_partition": counts}))
    events = int(json.loads(meta.read_text())["events"])
    return Dataset(path, subjects, events, partitions, HISTORY_SUBJECT, history)


def _write(path: Path, subjects: int, history: int, partitions: int, seed: int) -> list[int]:
    codec = default_codec()
    counts = [0] * partitions

    def records() -> Iterator[dict[str, Any]]:
        history_events = events_of(
            HISTORY_SUBJECT, history_steps(history), random.Random(f"{HISTORY_SUBJECT}-{seed}")
        )
        everything = subject_events(seed, SUBJECT_PREFIX, subjects)
        for events in (everything, iter(history_events)):
            for event in events:
                partition = partition_for(event.subject_id, partitions)
                counts[partition] += 1
                yield {
                    "partition": partition,
                    "key": event.subject_id.encode("utf-8"),
                    "value": codec.encode(event),
                    "event_type": event.type,
                    "event_id": str(event.event_id),
                    "occurred_at": event.occurred_at,
                }

    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        fastavro.writer(out, PARSED_SCHEMA, records(), codec="deflate", codec_compression_level=1)
    partial.rename(path)
    return counts


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as stream:
        for record in fastavro.reader(stream):
            assert isinstance(record, dict)
            yield record


async def produce(
    dataset: Dataset,
    kafka: KafkaAccess,
    topic: str,
    macs: RecordMacs,
    *,
    idempotence: bool,
    chunk: int = 20_000,
) -> int:
    """Write the cached records to `topic`, each to its recorded partition, in file order (so
    every subject's events stay in order), MACed as the ledger writes them (the writer keys
    of the run); returns how many were acknowledged."""
    producer = new_producer(
        kafka,
        acks="all",
        enable_idempotence=idempotence,
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=8 * 1024 * 1024,
    )
    await producer.start()
    acknowledged = 0
    try:
        pending = []
        for rec in read_records(dataset.path):
            headers = macs.seal(
                EVENTS,
                rec["key"],
                rec["value"],
                headers_for(rec["event_type"], uuid.UUID(rec["event_id"])),
            )
            pending.append(
                await producer.send(
                    topic,
                    key=rec["key"],
                    value=rec["value"],
                    partition=rec["partition"],
                    headers=headers,
                )
            )
            if len(pending) >= chunk:
                acknowledged += len([await f for f in pending])
                pending = []
        acknowledged += len([await f for f in pending])
    finally:
        await producer.stop()
    return acknowledged


CopyRow = tuple[uuid.UUID, str, str, int, int, datetime, bytes]


def copy_rows(dataset: Dataset, limit: int) -> list[CopyRow]:
    """The first `limit` records as journal-like rows (id, subject, type, partition, offset,
    time, bytes): what the B-copy baseline writes."""
    offsets = [0] * dataset.partitions
    rows: list[CopyRow] = []
    for rec in read_records(dataset.path):
        if len(rows) >= limit:
            break
        partition = rec["partition"]
        rows.append(
            (
                uuid.UUID(rec["event_id"]),
                rec["key"].decode("utf-8"),
                rec["event_type"],
                partition,
                offsets[partition],
                rec["occurred_at"],
                rec["value"],
            )
        )
        offsets[partition] += 1
    return rows
