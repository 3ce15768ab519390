"""A token bucket per client address, in memory, for the public /u/ and /p/ pages.

Pure: the clock is an argument. Each address may spend `per_minute` requests at once and gets
them back at `per_minute` a minute. The limit is per API process (several processes each
allow as much), and a restart forgets it: it guards against floods, not careful abuse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

#: buckets kept before the full ones are forgotten (a full bucket is a fresh one)
MAX_BUCKETS: Final = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass(slots=True)
class RateLimiter:
    per_minute: int
    max_buckets: int = MAX_BUCKETS
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def _level(self, bucket: _Bucket, now: float) -> float:
        refill = max(0.0, now - bucket.at) * self.per_minute / 60
        return min(float(self.per_minute), bucket.tokens + refill)

    def take(self, address: str, now: float) -> float:
        """Spend one request of `address` at `now` (seconds); returns 0 when allowed, else
        the seconds until one is available again (nothing is spent)."""
        if not self.enabled:
            return 0.0
        bucket = self._buckets.get(address)
        tokens = self._level(bucket, now) if bucket else float(self.per_minute)
        if tokens < 1:
            self._buckets[address] = _Bucket(tokens, now)
            return (1 - tokens) * 60 / self.per_minute
        if bucket is None and len(self._buckets) >= self.max_buckets:
            self._forget_full(now)
        self._buckets[address] = _Bucket(tokens - 1, now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: forgetting one changes no answer. If every
        bucket is still spending, the oldest half goes (memory stays bounded under a flood)."""
        full = [a for a, b in self._buckets.items() if self._level(b, now) >= self.per_minute]
        for address in full:
            del self._buckets[address]
        if len(self._buckets) >= self.max_buckets:
            oldest = sorted(self._buckets, key=lambda a: self._buckets[a].at)
            for address in oldest[: len(oldest) // 2 + 1]:
                del self._buckets[address]

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(seconds: float) -> int:
    """The Retry-After header's whole seconds: never 0, which would invite an instant retry."""
    return max(1, math.ceil(seconds))
