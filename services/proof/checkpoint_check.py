"""Checking checkpoints (pure): how they link up, and their digests recomputed from a stream of
(offset, value) records of one partition, read once from the topic or the database.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from projections.hash_chain import record_link
from schemas.checkpoint_codec import LogCheckpoint

OK: Final = "ok"
DIGEST_MISMATCH: Final = "digest_mismatch"
COUNT_MISMATCH: Final = "count_mismatch"
#: link problems between a partition's consecutive checkpoints
GAP: Final = "gap"
CHAIN_BROKEN: Final = "chain_broken"


@dataclass(frozen=True, slots=True)
class Finding:
    checkpoint: LogCheckpoint
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK


def by_partition(
    checkpoints: Iterable[LogCheckpoint], topic: str
) -> dict[int, list[LogCheckpoint]]:
    """The topic's checkpoints per partition, in offset order, exact repeats dropped (a
    checkpoint may be published twice)."""
    out: dict[int, list[LogCheckpoint]] = {}
    for checkpoint in set(checkpoints):
        if checkpoint.topic == topic:
            out.setdefault(checkpoint.partition, []).append(checkpoint)
    for found in out.values():
        found.sort(key=lambda c: (c.from_offset, c.to_offset, c.created_at, c.digest))
    return dict(sorted(out.items()))


def lanes(checkpoints: list[LogCheckpoint]) -> list[list[LogCheckpoint]]:
    """Split sorted checkpoints into runs whose ranges do not overlap, so each run is checked
    in one pass over the records. Normally one run; ranges overlap only when the log was
    restored and its offsets started again."""
    out: list[list[LogCheckpoint]] = []
    for checkpoint in checkpoints:
        for lane in out:
            if lane[-1].to_offset <= checkpoint.from_offset:
                lane.append(checkpoint)
                break
        else:
            out.append([checkpoint])
    return out


def link_findings(checkpoints: list[LogCheckpoint]) -> list[Finding]:
    """Problems between consecutive checkpoints of one partition (sorted, one lane): a range
    that does not start where the previous ended, or a digest that does not continue it."""
    out = []
    for before, after in itertools.pairwise(checkpoints):
        if after.from_offset != before.to_offset:
            out.append(
                Finding(
                    after,
                    GAP,
                    f"starts at offset {after.from_offset}, the previous checkpoint ended at"
                    f" {before.to_offset}",
                )
            )
        elif after.previous_digest != before.digest:
            out.append(Finding(after, CHAIN_BROKEN, "previous_digest is not the previous digest"))
    return out


class RangeChecker:
    """Recompute the digests of one lane of checkpoints from the partition's records, fed in
    offset order from the first checkpoint's from_offset."""

    def __init__(self, lane: list[LogCheckpoint]) -> None:
        self.lane = lane
        self.findings: list[Finding] = []
        self._index = 0
        self._digest = bytes.fromhex(lane[0].previous_digest) if lane else b""
        self._count = 0

    @property
    def start(self) -> int:
        return self.lane[0].from_offset

    @property
    def end(self) -> int:
        return self.lane[-1].to_offset

    @property
    def done(self) -> bool:
        return self._index >= len(self.lane)

    def feed(self, offset: int, value: bytes | None) -> None:
        while not self.done and offset >= self.lane[self._index].to_offset:
            self._close()
        if self.done or offset < self.lane[self._index].from_offset:
            return
        self._digest = record_link(self._digest, offset, value)
        self._count += 1

    def finish(self) -> list[Finding]:
        while not self.done:
            self._close()
        return self.findings

    def _close(self) -> None:
        checkpoint = self.lane[self._index]
        if self._count != checkpoint.records:
            self.findings.append(
                Finding(
                    checkpoint,
                    COUNT_MISMATCH,
                    f"{self._count} records found, the checkpoint says {checkpoint.records}",
                )
            )
        elif self._digest.hex() != checkpoint.digest:
            self.findings.append(
                Finding(checkpoint, DIGEST_MISMATCH, "the recomputed digest differs")
            )
        else:
            self.findings.append(Finding(checkpoint, OK))
        self._index += 1
        if not self.done:
            self._digest = bytes.fromhex(self.lane[self._index].previous_digest)
            self._count = 0


def check_records(
    lane: list[LogCheckpoint], records: Iterable[tuple[int, bytes | None]]
) -> list[Finding]:
    """One finding per checkpoint of the lane, from the partition's records in offset order."""
    checker = RangeChecker(lane)
    for offset, value in records:
        checker.feed(offset, value)
    return checker.finish()
