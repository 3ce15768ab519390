"""The coalescer: every caller gets its own key's answer, batches never exceed their bounds,
a lone request is sent at once, and a failure or a cancellation reaches only who waits on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.reads.coalescer import Coalescer
from tests.properties import examples


class Backend:
    """A fetch_many that records its batches and answers when the test lets it."""

    def __init__(self, *, missing: frozenset[int] = frozenset(), fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.missing = missing
        self.fail = fail

    async def fetch_many(self, keys: Sequence[int]) -> Mapping[int, str]:
        self.batches.append(list(keys))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.gate.wait()
            if self.fail:
                raise ConnectionError("the database went away")
            return {k: f"value-{k}" for k in keys if k not in self.missing}
        finally:
            self.in_flight -= 1


async def turns_until(condition: Callable[[], bool], turns: int = 100) -> None:
    """Let the event loop run until `condition` holds (no clock involved), bounded."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition did not hold within the loop turns allowed")


@settings(max_examples=examples(60), deadline=None)
@given(
    keys=st.lists(st.integers(0, 40), min_size=1, max_size=120),
    max_batch=st.integers(1, 16),
    max_in_flight=st.integers(1, 4),
)
def test_every_caller_gets_its_own_answer_within_the_bounds(
    keys: list[int], max_batch: int, max_in_flight: int
) -> None:
    async def scenario() -> None:
        backend = Backend()
        backend.gate.clear()  # hold the first batches, so later keys pile up
        reads = Coalescer(backend.fetch_many, max_batch=max_batch, max_in_flight=max_in_flight)
        tasks = [asyncio.create_task(reads.get(k)) for k in keys]
        await turns_until(lambda: backend.in_flight > 0)  # the first batches are held
        backend.gate.set()
        assert await asyncio.gather(*tasks) == [f"value-{k}" for k in keys]
        assert all(len(b) <= max_batch and len(b) == len(set(b)) for b in backend.batches)
        assert backend.most_in_flight <= max_in_flight
        assert set().union(*map(set, backend.batches)) == set(keys)

    asyncio.run(scenario())


async def test_a_lone_request_is_answered_without_waiting_for_company() -> None:
    backend = Backend()
    reads = Coalescer(backend.fetch_many)
    lone = asyncio.create_task(reads.get(7))
    # a few turns of the loop and no clock: a batcher that waited on a timer would fail here
    await turns_until(lone.done, turns=10)
    assert lone.result() == "value-7"
    assert backend.batches == [[7]]


async def test_requests_made_while_a_batch_runs_share_the_next_one() -> None:
    backend = Backend()
    backend.gate.clear()
    reads = Coalescer(backend.fetch_many, max_in_flight=1)
    first = asyncio.create_task(reads.get(1))
    await turns_until(lambda: backend.in_flight == 1)
    assert backend.batches == [[1]]
    later = [asyncio.create_task(reads.get(k)) for k in (2, 3, 2)]
    await turns_until(lambda: reads.queued == 3)
    backend.gate.set()
    assert await first == "value-1"
    assert await asyncio.gather(*later) == ["value-2", "value-3", "value-2"]
    assert backend.batches == [[1], [2, 3]]


async def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_runs() -> None:
    backend = Backend(fail=True)
    reads = Coalescer(backend.fetch_many)
    results = await asyncio.gather(reads.get(1), reads.get(2), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    backend.fail = False
    assert await reads.get(3) == "value-3"


async def test_a_key_the_answer_leaves_out_is_a_key_error_for_its_caller_only() -> None:
    backend = Backend(missing=frozenset({2}))
    reads = Coalescer(backend.fetch_many)
    one, two = await asyncio.gather(reads.get(1), reads.get(2), return_exceptions=True)
    assert one == "value-1"
    assert isinstance(two, KeyError)


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    backend = Backend()
    backend.gate.clear()
    reads = Coalescer(backend.fetch_many)
    gone, kept = asyncio.create_task(reads.get(1)), asyncio.create_task(reads.get(2))
    await turns_until(lambda: backend.in_flight == 1)
    gone.cancel()
    backend.gate.set()
    assert await kept == "value-2"
    with pytest.raises(asyncio.CancelledError):
        await gone
    await reads.close()


@pytest.mark.parametrize(("max_batch", "max_in_flight"), [(0, 1), (1, 0)])
def test_bounds_must_be_positive(max_batch: int, max_in_flight: int) -> None:
    with pytest.raises(ValueError):
        Coalescer(Backend().fetch_many, max_batch=max_batch, max_in_flight=max_in_flight)
