"""The whole event topic read with a plain consumer, and checked against the client's tally.

Reading stops at high-water marks taken from fetch responses (never `end_offsets`). The check
is a pure function, so its rules are table-tested on their own (test_log_audit.py).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiokafka import TopicPartition

from schemas import events as ev
from schemas.codec import CodecError, EventCodec, default_codec
from services.kafka_access import KafkaAccess
from services.ledger.kafka_clients import new_consumer
from services.ledger.topic import highwaters
from tests.faults.workload import Command


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One record of the event topic, as far as the audit needs it."""

    partition: int
    offset: int
    event_id: str | None = None
    #: the Idempotency-Key the event carries in source.collection_point
    key: str | None = None
    type: str | None = None
    #: why the record could not be decoded, if it could not
    error: str | None = None


async def read_log(kafka: KafkaAccess, topic: str, timeout_s: float = 60) -> list[LoggedEvent]:
    """Every record of `topic`, up to the high-water marks of this moment."""
    marks = await highwaters(kafka, topic)
    codec = default_codec()
    out: list[LoggedEvent] = []
    consumer = new_consumer(kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(marks)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        next_offset = {p: 0 for p in marks}
        deadline = time.monotonic() + timeout_s
        while any(next_offset[p] < end for p, end in marks.items()):
            if time.monotonic() > deadline:
                raise AssertionError(f"read {next_offset} of {marks} of {topic} in {timeout_s}s")
            fetched = await consumer.getmany(timeout_ms=200)
            for tp, messages in fetched.items():
                for m in messages:
                    if m.offset < marks[tp.partition]:
                        out.append(_logged(codec, tp.partition, m.offset, m.value))
                    next_offset[tp.partition] = m.offset + 1
    finally:
        await consumer.stop()
    return out


def _logged(codec: EventCodec, partition: int, offset: int, value: bytes | None) -> LoggedEvent:
    try:
        if value is None:
            raise CodecError("record has no value")
        event = codec.decode(value)
    except CodecError as exc:
        return LoggedEvent(partition, offset, error=str(exc))
    return LoggedEvent(
        partition, offset, str(event.event_id), event.source.collection_point, event.type
    )


def audit(
    sent: Mapping[str, Command],
    acked: Mapping[str, Sequence[str]],
    logged: Sequence[LoggedEvent],
) -> list[str]:
    """What the log gets wrong against what the client sent and was told; empty when nothing.

    An acknowledged command's events are all in the log, under the event ids of its answer and
    no others; an unacknowledged one's are all there or none; nothing else is there. A record
    may be in the log more than once (a retry re-sends the same bytes): events count by id.
    The ledger's own events about no subject (the purpose catalogue an API start records, a
    published notice) are not the client's and are left out.
    """
    findings: list[str] = []
    ids_by_key: dict[str, dict[str, str | None]] = defaultdict(dict)
    key_of_id: dict[str, str] = {}
    for record in logged:
        where = f"partition {record.partition} offset {record.offset}"
        if record.error is not None:
            findings.append(f"undecodable record at {where}: {record.error}")
            continue
        assert record.event_id is not None
        if record.type in ev.NOT_ABOUT_A_SUBJECT:
            continue
        if record.key is None or record.key not in sent:
            findings.append(f"event {record.event_id} at {where} was never sent ({record.key})")
            continue
        if key_of_id.setdefault(record.event_id, record.key) != record.key:
            findings.append(f"event {record.event_id} is logged under two keys")
        ids_by_key[record.key][record.event_id] = record.type
    for key, command in sent.items():
        logged_ids = ids_by_key.get(key, {})
        if key in acked:
            missing = [i for i in acked[key] if i not in logged_ids]
            extra = sorted(set(logged_ids) - set(acked[key]))
            if missing:
                findings.append(f"acknowledged {key}: events {missing} are not in the log")
            if extra:
                findings.append(f"acknowledged {key}: other event ids in the log {extra}")
        elif logged_ids and len(logged_ids) != len(command.types):
            findings.append(
                f"unacknowledged {key} is half-applied: {len(logged_ids)} distinct events"
                f" in the log of the {len(command.types)} it appends"
            )
        if logged_ids and sorted(map(str, logged_ids.values())) != sorted(command.types):
            findings.append(f"{key}: logged types {sorted(map(str, logged_ids.values()))}")
    return findings


def distinct_event_ids(logged: Sequence[LoggedEvent]) -> set[str]:
    return {r.event_id for r in logged if r.event_id is not None}
