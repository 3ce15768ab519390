"""Failed API-key attempts per client address: past a limit, the address gets 429 for every key
it sends, right or wrong, so keys cannot be guessed online at speed (services/api/guard.py lets
a key with 256 random bits through, which no one guesses).

Pure: the clock is an argument. Each failure spends one request of the address's bucket in a
services/http/rate_limit.py RateLimiter (LEDGER_FAILED_KEY_RATE_PER_MIN at once, refilled at that
rate a minute). The failure that finds the bucket empty blocks the address until one request
is back; while blocked, nothing is spent. A valid key is never counted.
Like the pages' limit, it is per API process and forgotten on restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.http.rate_limit import MAX_BUCKETS, RateLimiter


@dataclass(slots=True)
class FailedKeyLimit:
    limiter: RateLimiter
    max_blocked: int = MAX_BUCKETS
    #: address -> when (clock seconds) it may present a key again
    _blocked: dict[str, float] = field(default_factory=dict)

    def wait(self, address: str, now: float) -> float:
        """Seconds until `address` may present a key again; 0 when it may now."""
        until = self._blocked.get(address)
        if until is None:
            return 0.0
        if now >= until:
            del self._blocked[address]
            return 0.0
        return until - now

    def failed(self, address: str, now: float) -> float:
        """Count a refused key of `address`; returns 0 while within the limit, else the seconds
        it is blocked for (this attempt is over the limit too)."""
        wait = self.limiter.take(address, now)
        if wait:
            if address not in self._blocked and len(self._blocked) >= self.max_blocked:
                self._forget(now)
            self._blocked[address] = now + wait
        return wait

    def _forget(self, now: float) -> None:
        """Drop the blocks that have run out; if all still hold, the half that ends soonest
        (memory stays bounded under a flood from many addresses)."""
        for address in [a for a, until in self._blocked.items() if until <= now]:
            del self._blocked[address]
        if len(self._blocked) >= self.max_blocked:
            ending = sorted(self._blocked, key=self._blocked.__getitem__)
            for address in ending[: len(ending) // 2 + 1]:
                del self._blocked[address]

    def __len__(self) -> int:
        return len(self._blocked)
