"""The one place the ledger produces Kafka records
(tests/unit/services/ledger/test_record_producer.py fails for a send anywhere else in services/
or projections/).

A record the ledger writes for the first time gets the MAC header of its topic's role
(schemas/record_mac.py) under the current writer key. A record produced again, from a backup
file (`restore`) or from the database (`restore-log`), keeps exactly the headers it was first
written with, MAC or none: nothing is MACed after the fact, so a forged record kept in a
backup or in `rejected_records` never comes back genuine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas.record_mac import Header, RecordMacs
from services.identity.secrets import KeyRing


def writer_macs(ring: KeyRing) -> RecordMacs:
    """The MACs of a writer key ring (LEDGER_WRITER_KEYS)."""
    return RecordMacs(ring.keys, ring.current_id)


async def produce_as_written(
    producer: AIOKafkaProducer,
    topic: str,
    *,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[Header],
    partition: int | None = None,
    timestamp_ms: int | None = None,
) -> asyncio.Future[Any]:
    """Send one record with exactly these headers; returns the acknowledgement's future."""
    if key is None and value is None:
        # send() refuses a record with neither; a batch of its own carries it, in order
        if partition is None:
            raise ValueError("a record with neither key nor value needs its partition")
        batch = producer.create_batch()
        batch.append(key=None, value=None, timestamp=timestamp_ms, headers=list(headers))
        batch.close()
        future: asyncio.Future[Any] = await producer.send_batch(batch, topic, partition=partition)
        return future
    future = await producer.send(
        topic,
        value=value,
        key=key,
        partition=partition,
        timestamp_ms=timestamp_ms,
        headers=list(headers),
    )
    return future


class RecordProducer:
    """A started producer and the writer keys: every record sent through `send` is MACed."""

    def __init__(self, producer: AIOKafkaProducer, macs: RecordMacs) -> None:
        self.producer = producer
        self.macs = macs

    async def produce(
        self,
        topic: str,
        role: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header] = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> asyncio.Future[Any]:
        """Send a new record of `role` (schemas/record_mac.py ROLES) with its MAC header."""
        return await produce_as_written(
            self.producer,
            topic,
            key=key,
            value=value,
            headers=self.macs.seal(role, key, value, headers),
            partition=partition,
            timestamp_ms=timestamp_ms,
        )
