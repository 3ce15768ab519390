"""Size and randomness of the fault tests.

LEDGER_FAULT_SCALE multiplies every workload (default 1: the suite fits in the normal test
run; `make faults` runs it larger). LEDGER_FAULT_SEED replays the random choices of a failed
run (its seed is in the failure message); without it each run draws a new seed.
"""

from __future__ import annotations

import os
import random

import pytest


def _scale() -> float:
    text = os.environ.get("LEDGER_FAULT_SCALE", "1")
    try:
        value = float(text)
    except ValueError:
        value = 0
    if not 0 < value <= 1000:
        raise pytest.UsageError(f"LEDGER_FAULT_SCALE={text!r}: must be a number from 0 to 1000")
    return value


SCALE = _scale()


def scaled(count: int, least: int = 1) -> int:
    """`count` at scale 1, grown (or shrunk) with LEDGER_FAULT_SCALE."""
    return max(least, round(count * SCALE))


@pytest.fixture
def fault_seed() -> int:
    text = os.environ.get("LEDGER_FAULT_SEED")
    seed = int(text) if text else random.SystemRandom().randrange(2**32)
    print(f"fault seed {seed} (replay the choices with LEDGER_FAULT_SEED={seed})")
    return seed
