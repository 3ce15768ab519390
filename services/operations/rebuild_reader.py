"""The rebuild's reader of the event topic: every partition assigned directly (no consumer
group, so the live projectors' group never rebalances), read up to a cap per partition.

The cap is where the live tables stand: the replay never gets ahead of them, so at the switch
both are at the same offsets and every live projector's next batch starts exactly where the
switched-in tables end. Records at or beyond a cap are dropped and read again once it moves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Final

from aiokafka import TopicPartition

from projections.log_records import Record
from projections.rebuild_tables import split_at_caps
from projections.runner import ConsumerFactory

#: how long to wait for the topic's partitions in the broker's metadata
METADATA_TIMEOUT_S: Final = 30.0


class CappedReader:
    def __init__(
        self, new_consumer: ConsumerFactory, topic: str, *, batch_size: int, fetch_wait_ms: int
    ) -> None:
        self.topic = topic
        self.batch_size = batch_size
        self.consumer = new_consumer(
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=batch_size,
            fetch_max_wait_ms=fetch_wait_ms,
        )
        self.partitions: list[TopicPartition] = []
        #: per partition, every record below this offset has been read (0: from the start)
        self.positions: dict[int, int] = {}

    async def start(self, stored: Mapping[int, int]) -> None:
        """Assign every partition and continue from `stored` (the beginning where none)."""
        await self.consumer.start()
        deadline = time.monotonic() + METADATA_TIMEOUT_S
        found = self.consumer.partitions_for_topic(self.topic)
        while not found:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {self.topic} has no partitions in the broker's metadata")
            await self.consumer.topics()  # refreshes the metadata
            found = self.consumer.partitions_for_topic(self.topic)
            await asyncio.sleep(0.05)
        self.partitions = [TopicPartition(self.topic, p) for p in sorted(found)]
        self.consumer.assign(self.partitions)
        await self.rewind(stored)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def rewind(self, stored: Mapping[int, int]) -> None:
        """Continue from `stored` again (a switch attempt that applied records rolled back)."""
        for tp in self.partitions:
            if tp.partition in stored:
                self.consumer.seek(tp, stored[tp.partition])
            else:
                await self.consumer.seek_to_beginning(tp)
        self.positions = {tp.partition: stored.get(tp.partition, 0) for tp in self.partitions}

    def waiting(self, caps: Mapping[int, int]) -> bool:
        """True when no partition is below its cap (nothing to read until the caps move)."""
        return all(self.positions.get(p, 0) >= cap for p, cap in caps.items())

    async def read(self, caps: Mapping[int, int], timeout_ms: int) -> list[Record]:
        """The next records below the caps, in offset order per partition; [] if none came."""
        active = [
            tp for tp in self.partitions if self.positions[tp.partition] < caps.get(tp.partition, 0)
        ]
        idle = [tp for tp in self.partitions if tp not in active]
        if idle:
            self.consumer.pause(*idle)
        if not active:
            return []
        self.consumer.resume(*active)
        fetched = await self.consumer.getmany(
            *active, timeout_ms=timeout_ms, max_records=self.batch_size
        )
        records = [
            Record(m.partition, m.offset, m.key, m.value, m.headers)
            for msgs in fetched.values()
            for m in msgs
        ]
        kept, beyond = split_at_caps(records, caps)
        for record in kept:
            self.positions[record.partition] = max(
                self.positions[record.partition], record.offset + 1
            )
        for partition, offset in beyond.items():
            # everything below the cap was read; continue from the dropped record later
            self.consumer.seek(TopicPartition(self.topic, partition), offset)
            self.positions[partition] = max(self.positions[partition], caps.get(partition, 0))
        return kept

    def highwaters(self) -> dict[int, int | None]:
        """The high-water marks the fetches reported (None before a partition's first)."""
        return {tp.partition: self.consumer.highwater(tp) for tp in self.partitions}
