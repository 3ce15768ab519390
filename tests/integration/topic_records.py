"""Helpers for the backup and restore tests: every record of a topic read straight from the
broker (not through the code under test), raw records, and the CLI as a subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import TopicPartition

from services.config import Settings
from services.kafka_access import KafkaAccess
from services.ledger.kafka_clients import new_consumer, new_producer
from services.ledger.topic import highwaters


@dataclass(frozen=True, slots=True)
class Seen:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp: int


async def all_records(kafka: KafkaAccess, topic: str, timeout_s: float = 60) -> list[Seen]:
    """Every record of every partition up to its high-water mark, in (partition, offset) order."""
    marks = await highwaters(kafka, topic)
    consumer = new_consumer(kafka, enable_auto_commit=False)
    await consumer.start()
    found: list[Seen] = []
    try:
        tps = [TopicPartition(topic, p) for p, end in sorted(marks.items()) if end]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        last = {tp: -1 for tp in tps}
        while any(last[tp] + 1 < marks[tp.partition] for tp in tps):
            assert time.monotonic() < deadline, f"timed out reading {topic}"
            for tp, messages in (await consumer.getmany(timeout_ms=200)).items():
                for m in messages:
                    if m.offset < marks[tp.partition]:
                        found.append(
                            Seen(
                                m.partition,
                                m.offset,
                                m.key,
                                m.value,
                                tuple(m.headers or ()),
                                m.timestamp,
                            )
                        )
                        last[tp] = m.offset
    finally:
        await consumer.stop()
    return sorted(found, key=lambda s: (s.partition, s.offset))


async def produce_raw(
    kafka: KafkaAccess,
    topic: str,
    records: Sequence[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]],
) -> None:
    """(partition, key, value, headers) records, exactly as given, acks awaited."""
    producer = new_producer(kafka, acks="all")
    await producer.start()
    try:
        futures = []
        for partition, key, value, headers in records:
            if key is None and value is None:  # send() refuses it; a batch of its own takes it
                batch = producer.create_batch()
                batch.append(key=None, value=None, timestamp=None, headers=headers)
                batch.close()
                futures.append(await producer.send_batch(batch, topic, partition=partition))
            else:
                futures.append(
                    await producer.send(topic, value, key=key, partition=partition, headers=headers)
                )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.as_environment()}
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
