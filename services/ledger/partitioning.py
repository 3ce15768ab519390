"""Which partition holds a subject: the Kafka default partitioner (murmur2 of the key)."""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2


#: murmur2 in pure Python costs about 10 us a key; requests and sends for the same subjects
#: repeat (a command, then its decision), so recent answers are kept (a few MB at most)
@lru_cache(maxsize=1 << 15)
def partition_for(subject_id: str, partitions: int) -> int:
    """Same answer as the Java client and aiokafka's default partitioner for this key."""
    hashed: int = murmur2(subject_id.encode("utf-8"))
    return (hashed & 0x7FFFFFFF) % partitions
