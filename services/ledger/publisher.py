"""Appending events to the log: keyed by subject, acks=all, answered only after the ack; each
record MACed under the current writer key (services/ledger/record_producer.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.codec import kafka_headers
from schemas.events import Event
from schemas.record_mac import EVENTS, RecordMacs
from services.kafka_access import KafkaAccess
from services.ledger.errors import BrokerUnavailable
from services.ledger.kafka_clients import new_producer
from services.ledger.partitioning import partition_for
from services.ledger.record_producer import RecordProducer


def make_producer(kafka: KafkaAccess, *, idempotence: bool, timeout_ms: int) -> AIOKafkaProducer:
    return new_producer(
        kafka,
        acks="all",
        enable_idempotence=idempotence,
        request_timeout_ms=max(1000, timeout_ms),
        linger_ms=0,  # every send is awaited by a caller: lingering only adds latency
    )


class Publisher:
    def __init__(
        self, producer: AIOKafkaProducer, topic: str, timeout_s: float, macs: RecordMacs
    ) -> None:
        self.producer = producer
        self.records = RecordProducer(producer, macs)
        self.topic = topic
        self.timeout_s = timeout_s
        #: the event topic's partitions, once known (`partition_count`): events are then sent
        #: to `partition_for` their subject, the same partition as the producer's own
        #: partitioner would pick, without hashing the key again on every send
        self.partitions: int | None = None

    async def publish(self, records: Sequence[tuple[Event, bytes]]) -> list[tuple[int, int]]:
        """Send the records in order and wait for every ack; returns (partition, offset) each."""
        try:
            async with asyncio.timeout(self.timeout_s):  # in this task: no task per command
                return await self._send(records)
        except (TimeoutError, KafkaError) as exc:
            raise BrokerUnavailable(str(exc) or type(exc).__name__) from exc

    async def _send(self, records: Sequence[tuple[Event, bytes]]) -> list[tuple[int, int]]:
        futures = [
            await self.records.produce(
                self.topic,
                EVENTS,
                key=event.subject_id.encode("utf-8"),
                value=value,
                headers=kafka_headers(event),
                partition=partition_for(event.subject_id, self.partitions)
                if self.partitions
                else None,
            )
            for event, value in records
        ]
        if len(futures) == 1:  # most commands: one event, no gather
            only = await futures[0]
            return [(only.partition, only.offset)]
        metadata = await asyncio.gather(*futures)
        return [(m.partition, m.offset) for m in metadata]

    async def publish_record(
        self, topic: str, role: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> tuple[int, int]:
        """Send one already-encoded record of `role` to another topic (e.g. contact-check
        evidence) and wait for its ack, under the same timeout; returns its (partition, offset)."""

        async def send() -> tuple[int, int]:
            future = await self.records.produce(topic, role, key=key, value=value, headers=headers)
            metadata = await future
            return metadata.partition, metadata.offset

        try:
            return await asyncio.wait_for(send(), self.timeout_s)
        except (TimeoutError, KafkaError) as exc:
            raise BrokerUnavailable(str(exc) or type(exc).__name__) from exc

    async def partition_count(self) -> int:
        self.partitions = len(await self.producer.partitions_for(self.topic))
        return self.partitions
