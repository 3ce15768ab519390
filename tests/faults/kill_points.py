"""Random moments to inject a fault: after a random delay, or after a random amount of further
progress. Either way the moment comes no later than progress reaching `limit`, so a kill lands
while the workload still runs however fast the machine is."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Awaitable, Callable

from tests.conftest import wait_until

Progress = Callable[[], Awaitable[int]]


async def kill_point(
    rng: random.Random,
    progress: Progress,
    *,
    delay_s: tuple[float, float],
    steps: tuple[int, int],
    limit: int,
    stop: Callable[[], bool] = lambda: False,
    timeout_s: float = 120,
) -> str:
    """Wait for the next kill point and say which it was (for the failure message); any wait
    also ends once `stop()` holds."""
    started = time.monotonic()
    deadline, target = math.inf, limit
    if rng.random() < 0.5:
        deadline = started + rng.uniform(*delay_s)
        what = f"{deadline - started:.2f}s later"
    else:
        target = min(limit, await progress() + rng.randrange(*steps))
        what = f"at progress {target}"

    async def reached() -> bool:
        return stop() or time.monotonic() >= deadline or await progress() >= target

    await wait_until(reached, timeout_s, what)
    return f"{what} (after {time.monotonic() - started:.2f}s, progress {await progress()})"
