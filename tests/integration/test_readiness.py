"""GET /readyz against a real API, PostgreSQL and broker (security review M2): without a key
only the status, with any valid key the details, and one snapshot shared by concurrent callers
and kept about a second (the clock is the projection health's, frozen here), so a flood of
/readyz costs one read a second, not five statements a request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from services.api.app import create_app
from services.api.readiness import SNAPSHOT_S
from services.bootstrap import Ledger, open_ledger
from services.config import Settings
from services.identity.api_keys import DECIDE
from services.reads.projection_health import HealthSnapshot, ProjectionHealth
from services.stack.embedded import free_port
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.integration.access_support import bearer, made_key
from tests.integration.purpose_support import FILE_PURPOSES, seeded
from tests.integration.served_api import served
from tests.servers import Servers

pytestmark = pytest.mark.integration


class CountedHealth(ProjectionHealth):
    """The real projection health on a frozen clock, counting its snapshot reads (one per
    readiness read) and able to hold one open."""

    def __init__(self, ledger: Ledger) -> None:
        self.now = 1000.0
        super().__init__(
            ledger.pool,
            ledger.settings.topic,
            ledger.partitions,
            ledger.settings.max_staleness_ms,
            ledger.secrets.writers.current_id,
            clock=lambda: self.now,
        )
        self.reads = 0
        self.hold = asyncio.Event()
        self.hold.set()

    async def snapshot(self) -> HealthSnapshot:
        self.reads += 1
        await self.hold.wait()
        return await super().snapshot()


@pytest.fixture
async def counted(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, CountedHealth]]:
    """A real API whose projection health counts reads, with the projector running."""
    made: list[CountedHealth] = []

    async def open_counted(s: Settings) -> Ledger:
        ledger = await open_ledger(s)
        ledger.health = CountedHealth(ledger)
        made.append(ledger.health)
        return ledger

    base = f"http://{settings.host}:{settings.port}"
    async with (
        running_projector(settings),
        served(create_app(settings, open_counted), settings),
        httpx.AsyncClient(base_url=base, timeout=30) as anonymous,
    ):
        # the catalogue file's purposes are seeded at start through the write path, which
        # checks the projection's health too: count from then on, the readiness reads alone
        await seeded(settings)
        made[0].reads = 0
        yield anonymous, made[0]


@pytest.fixture
async def settings(real_servers: Servers) -> Settings:
    """A fresh database and topic, and a free port for the API this module serves itself."""
    return await make_settings(real_servers, LEDGER_PORT=str(free_port()))


async def test_without_a_key_readyz_answers_only_its_status(
    counted: tuple[httpx.AsyncClient, CountedHealth],
) -> None:
    anonymous, _ = counted
    ready = await anonymous.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}  # no positions, lag or dead-letter counts


async def test_any_valid_key_sees_the_details(
    counted: tuple[httpx.AsyncClient, CountedHealth], settings: Settings
) -> None:
    anonymous, _ = counted
    _, key = await made_key(settings, anonymous, DECIDE)  # the least-privileged scope
    detailed = await anonymous.get("/readyz", headers=bearer(key))
    assert detailed.status_code == 200
    body = detailed.json()
    # nothing written yet but the catalogue file's purposes, seeded at start
    assert body["status"] == "ready" and sum(body["projected"].values()) == FILE_PURPOSES
    assert body["catalogue"] == {"file_differs": False, "differences": []}
    projector = body["projector"]
    assert projector["fresh"] and set(projector["partitions"]) == {"0", "1", "2", "3"}
    assert {"lag", "position", "highwater"} <= set(projector["partitions"]["0"])
    assert projector["dead_letters"] == 0


async def test_concurrent_callers_share_one_snapshot_kept_about_a_second(
    counted: tuple[httpx.AsyncClient, CountedHealth], settings: Settings
) -> None:
    anonymous, health = counted
    health.hold.clear()
    first = asyncio.create_task(anonymous.get("/readyz"))

    async def read_begun() -> bool:
        return health.reads == 1

    await wait_until(read_begun, 30, "the first /readyz to begin its read")
    others = [asyncio.create_task(anonymous.get("/readyz")) for _ in range(31)]
    health.hold.set()
    answers = await asyncio.gather(first, *others)
    assert [a.json() for a in answers] == [{"status": "ready"}] * 32
    assert health.reads == 1  # today's code: 32 reads of five statements each
    # within the second, every caller (a keyed one too) is answered from the same snapshot
    _, key = await made_key(settings, anonymous, DECIDE)
    assert (await anonymous.get("/readyz", headers=bearer(key))).json()["status"] == "ready"
    assert health.reads == 1
    health.now += SNAPSHOT_S  # a second later: read again
    assert (await anonymous.get("/readyz")).status_code == 200
    assert health.reads == 2


async def test_not_ready_without_a_key_is_only_the_status(settings: Settings) -> None:
    """No projector has reported: 503 for both, the reason only with a key."""
    async with running_api(settings) as admin:
        async with httpx.AsyncClient(base_url=admin.base_url, timeout=30) as anonymous:
            plain = await anonymous.get("/readyz")
        assert plain.status_code == 503
        assert plain.json() == {"status": "not-ready"}
        assert int(plain.headers["retry-after"]) >= 1
        detailed = await admin.get("/readyz")
        assert detailed.status_code == 503
        assert detailed.headers["content-type"] == "application/problem+json"
        assert "no projector has reported" in detailed.json()["detail"]
        assert "partitions" in detailed.json()["projector"]


async def test_a_database_failure_is_a_not_ready_snapshot(settings: Settings) -> None:
    """An outage answers 503 at once from a kept snapshot, not a pool connection per call."""
    async with running_api(settings) as admin:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute("ALTER TABLE projector_partitions RENAME TO pp_away")
            async with httpx.AsyncClient(base_url=admin.base_url, timeout=30) as anonymous:
                plain = await anonymous.get("/readyz")
            assert (plain.status_code, plain.json()) == (503, {"status": "not-ready"})
            detailed = await admin.get("/readyz")
            assert detailed.status_code == 503
            assert detailed.json()["detail"] == "database not reachable: UndefinedTableError"
        finally:
            await conn.execute("ALTER TABLE pp_away RENAME TO projector_partitions")
            await conn.close()
