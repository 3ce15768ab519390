"""Producing records back into an empty topic, each to the partition it names, in order.

Used by `restore` (from a backup file) and `restore-log` (from the database). Each record keeps the
headers it is given, its MAC or the lack of one included (services/ledger/record_producer.py). Every
acknowledgement is checked: the n-th record sent to a partition must land at offset n. Any other
offset means someone else wrote to the topic meanwhile, or a retry without an idempotent producer
wrote a record twice; the restore then stops instead of reporting positions that are not true.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final

from aiokafka import AIOKafkaProducer

from services.ledger.record_producer import produce_as_written

#: records sent before their acknowledgements are awaited
CHUNK: Final = 2000


class OffsetMismatch(Exception):
    """A record landed somewhere else than the next offset of its partition."""


class OrderedWriter:
    def __init__(self, producer: AIOKafkaProducer, topic: str, chunk: int = CHUNK) -> None:
        self.producer = producer
        self.topic = topic
        self.chunk = chunk
        #: records acknowledged per partition (= its high-water mark, if nobody else writes)
        self.written: dict[int, int] = {}
        self._queued: dict[int, int] = {}
        self._pending: list[tuple[int, int, asyncio.Future[Any]]] = []

    async def write(
        self,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]],
        timestamp_ms: int | None,
    ) -> int:
        """Queue one record; returns how many were acknowledged now (a chunk at a time)."""
        expected = self._queued.get(partition, 0)
        self._queued[partition] = expected + 1
        future = await produce_as_written(
            self.producer,
            self.topic,
            key=key,
            value=value,
            headers=headers,
            partition=partition,
            timestamp_ms=timestamp_ms,
        )
        self._pending.append((partition, expected, future))
        if len(self._pending) >= self.chunk:
            return await self.flush()
        return 0

    async def flush(self) -> int:
        """Wait for every queued acknowledgement and check where each record landed."""
        pending, self._pending = self._pending, []
        acks = await asyncio.gather(*(future for _, _, future in pending))
        for (partition, expected, _), meta in zip(pending, acks, strict=True):
            if (meta.partition, meta.offset) != (partition, expected):
                raise OffsetMismatch(
                    f"a record for {self.topic}[{partition}] offset {expected} landed at"
                    f" [{meta.partition}] offset {meta.offset}: another producer wrote to the"
                    " topic, or a retry wrote a record twice"
                )
            self.written[partition] = expected + 1
        return len(pending)
