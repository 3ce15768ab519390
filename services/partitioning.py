"""Which partition holds a subject: the Kafka default partitioner (murmur2 of the key)."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for(subject_id: str, partitions: int) -> int:
    """Same answer as the Java client and aiokafka's default partitioner for this key."""
    hashed: int = murmur2(subject_id.encode("utf-8"))
    return (hashed & 0x7FFFFFFF) % partitions
