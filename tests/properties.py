"""The hypothesis profiles the suite runs under (registered and loaded by tests/conftest.py).

`repeatable`, the default (`make test`, plain pytest): derandomized, so every run draws the same
examples and a failure repeats; no example database, no timing-based checks. `fuzz` (`make
fuzz`, `--hypothesis-profile fuzz`): fresh random examples each run, FUZZ_FACTOR times as many,
a failure printed with the `@reproduce_failure` blob that replays it. A test that chooses its
own number of examples passes it through `examples()`, since a profile does not change what a
test sets itself.
"""

from __future__ import annotations

from typing import Final

from hypothesis import HealthCheck, settings

REPEATABLE: Final = "repeatable"
FUZZ: Final = "fuzz"
FUZZ_FACTOR: Final = 10
#: hypothesis' default number of examples, for the tests that do not choose one
DEFAULT_EXAMPLES: Final = 100


def register_profiles() -> None:
    # a deadline or a "too slow" health check fails a test on a busy machine, not a bug
    untimed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile(REPEATABLE, untimed, derandomize=True, database=None)
    settings.register_profile(
        FUZZ,
        untimed,
        max_examples=DEFAULT_EXAMPLES * FUZZ_FACTOR,
        derandomize=False,
        print_blob=True,
    )


def examples(n: int) -> int:
    """A test's own number of examples, FUZZ_FACTOR times as many under the fuzz profile."""
    return n * FUZZ_FACTOR if settings.get_current_profile_name() == FUZZ else n
