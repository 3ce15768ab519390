"""The two hash chains of the tamper-evident history (the subject chain and the checkpoint
digest), as pure functions.

Design: docs/developers/design/hash-chains.md
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

#: the start of every subject chain and of a partition's first checkpoint
GENESIS: Final = bytes(32)
#: the length written for a record without a value (no real value is that long)
NO_VALUE: Final = (2**64 - 1).to_bytes(8, "big")


def _u64(number: int) -> bytes:
    return number.to_bytes(8, "big")


def subject_link(previous: bytes, value: bytes) -> bytes:
    """The hash of a subject's next entry, chained onto the previous entry's hash."""
    return hashlib.sha256(previous + _u64(len(value)) + value).digest()


def subject_chain(values: Iterable[bytes], start: bytes = GENESIS) -> list[bytes]:
    """The hash of each entry, in order, continuing from `start`."""
    out = []
    for value in values:
        start = subject_link(start, value)
        out.append(start)
    return out


def record_link(previous: bytes, offset: int, value: bytes | None) -> bytes:
    """The checkpoint digest after one more record of the partition."""
    length = NO_VALUE if value is None else _u64(len(value))
    return hashlib.sha256(previous + _u64(offset) + length + (value or b"")).digest()


def records_digest(start: bytes, records: Iterable[tuple[int, bytes | None]]) -> bytes:
    """The digest after (offset, value) records, in offset order, continuing from `start`."""
    for offset, value in records:
        start = record_link(start, offset, value)
    return start
