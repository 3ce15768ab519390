"""A token bucket per key (a client's network, a link, a subject), in memory and pure, for
the public /u/ and /p/ pages; its memory is bounded without forgetting the keys it holds back.

Design: docs/developers/design/public-pages.md
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from typing import Final

#: buckets kept before the full ones are forgotten (a full bucket is a fresh one)
MAX_BUCKETS: Final = 100_000
#: the prefix length an IPv6 client is keyed by
IPV6_PREFIX: Final = 64


def client_key(host: str) -> str:
    """The bucket key of a client address; a host that is not an IP address keys itself."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


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
        """Spend one request of `address` (any key) at `now` (seconds); returns 0 when
        allowed, else the seconds until one is available again (nothing is spent)."""
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
        bucket is still spending, the fullest half goes (ties: the least recently used):
        forgetting a bucket gives its key what it lacks of a full one, least for the fullest,
        so the keys held back stay held back while memory stays bounded under a flood."""
        levels = {a: self._level(b, now) for a, b in self._buckets.items()}
        for address, level in levels.items():
            if level >= self.per_minute:
                del self._buckets[address]
        if len(self._buckets) >= self.max_buckets:
            fullest = sorted(self._buckets, key=lambda a: (-levels[a], self._buckets[a].at))
            for address in fullest[: len(fullest) // 2 + 1]:
                del self._buckets[address]

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(seconds: float) -> int:
    """The Retry-After header's whole seconds: never 0, which would invite an instant retry."""
    return max(1, math.ceil(seconds))
