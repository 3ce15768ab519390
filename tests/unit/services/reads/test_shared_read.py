"""A read shared by concurrent callers and kept a short while: how many reads run, for how long
a value is kept (measured from the read's start), failures and callers that go away. The
clock is injected; the integration tests count reads against real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from services.reads.shared_read import SharedRead


class Source:
    """A read that counts itself and can be held open."""

    def __init__(self, clock: list[float], read_takes: float = 0.0) -> None:
        self.clock = clock
        self.read_takes = read_takes
        self.reads = 0
        self.hold = asyncio.Event()
        self.hold.set()
        #: set once a read has begun (callers created before it have joined it by then)
        self.started = asyncio.Event()
        self.fail: Exception | None = None

    async def read(self) -> int:
        self.reads += 1
        self.started.set()
        await self.hold.wait()
        self.clock[0] += self.read_takes
        if self.fail is not None:
            raise self.fail
        return self.reads


def shared(source: Source, keep_s: float = 1.0) -> SharedRead[int]:
    return SharedRead(source.read, lambda _: keep_s, lambda: source.clock[0])


async def test_concurrent_callers_share_one_read() -> None:
    source = Source([0.0])
    reader = shared(source)
    source.hold.clear()
    callers = [asyncio.create_task(reader.get()) for _ in range(50)]
    await source.started.wait()
    source.hold.set()
    assert await asyncio.gather(*callers) == [1] * 50
    assert source.reads == 1


@pytest.mark.parametrize(
    ("read_takes", "asked_at", "reads"),
    [
        (0.0, 0.5, 1),  # kept
        (0.0, 0.999, 1),
        (0.0, 1.0, 2),  # a second old: read again
        (0.4, 0.9, 1),
        (0.4, 1.0, 2),  # kept from the read's start, not its end: never older than 1 s
    ],
)
async def test_a_value_is_kept_from_its_reads_start(
    read_takes: float, asked_at: float, reads: int
) -> None:
    clock = [0.0]
    source = Source(clock, read_takes)
    reader = shared(source)
    await reader.get()
    clock[0] = asked_at
    await reader.get()
    assert source.reads == reads


async def test_a_value_kept_for_no_time_is_read_again() -> None:
    source = Source([0.0])
    reader = shared(source, keep_s=0.0)
    assert [await reader.get() for _ in range(3)] == [1, 2, 3]


async def test_a_failed_read_reaches_every_waiter_and_is_not_kept() -> None:
    source = Source([0.0])
    reader = shared(source)
    source.fail = OSError("down")
    source.hold.clear()
    callers = [asyncio.create_task(reader.get()) for _ in range(3)]
    await source.started.wait()
    source.hold.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(o, OSError) for o in outcomes) and source.reads == 1
    source.fail = None
    assert await reader.get() == 2


async def test_a_caller_that_goes_away_leaves_the_read_to_the_others() -> None:
    source = Source([0.0])
    reader = shared(source)
    source.hold.clear()
    leaving = asyncio.create_task(reader.get())
    staying = asyncio.create_task(reader.get())
    await source.started.wait()
    leaving.cancel()
    source.hold.set()
    assert await staying == 1
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert source.reads == 1
