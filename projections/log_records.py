"""What the projector reads of a Kafka record: the protocol a consumed record meets, and a
record built by hand (a test, a restore) that meets it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from schemas.record_mac import Header


class LogRecord(Protocol):
    """What the projector needs of a consumed Kafka record (aiokafka's ConsumerRecord has it,
    so a fetched batch is applied without copying its records)."""

    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[Header]: ...


@dataclass(frozen=True, slots=True)
class Record:
    """A record built by hand (a test, a restore): what the projector needs of one."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[Header] = ()
