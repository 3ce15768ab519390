"""Fixtures shared by the integration and e2e tests: real servers, a fresh database and topic
per test, and the API and projector running against them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime

import asyncpg
import httpx
import pytest
import uvicorn
from hypothesis import settings as hypothesis_settings

from projections.migrate import migrate
from projections.runner import Projector
from schemas.codec import default_codec
from services.api.app import create_app
from services.bootstrap import database_connector
from services.config import Settings
from services.identity.secrets import new_key
from services.ledger import kafka_clients
from services.ledger.record_producer import writer_macs
from services.ledger.topic import ensure_topic
from services.stack.embedded import free_port
from tests.properties import REPEATABLE, register_profiles
from tests.servers import Servers, servers, with_database

# derandomized unless `--hypothesis-profile fuzz` (`make fuzz`) chooses otherwise
register_profiles()
hypothesis_settings.load_profile(REPEATABLE)

#: fresh keys per test session: tests never depend on a secret checked in anywhere
TEST_SECRETS: dict[str, str] = {
    "LEDGER_MASTER_KEYS": f"m1:{new_key()}",
    "LEDGER_BLIND_INDEX_KEY": new_key(),
    "LEDGER_LINK_KEYS": f"l1:{new_key()}",
    "LEDGER_RECEIPT_KEYS": f"r1:{new_key()}",
    "LEDGER_WRITER_KEYS": f"w1:{new_key()}",
    "LEDGER_API_KEY_HASH_KEY": new_key(),
}

#: the key API key hashes are computed under (LEDGER_API_KEY_HASH_KEY), as bytes
HASH_KEY: bytes = base64.urlsafe_b64decode(TEST_SECRETS["LEDGER_API_KEY_HASH_KEY"] + "=")

#: the admin API key every test API is started with (LEDGER_ADMIN_KEY) and every test client sends
TEST_ADMIN_KEY: str = f"cl_testadmin_{new_key()}"
ADMIN_HEADERS: dict[str, str] = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}


@pytest.fixture(scope="session")
def real_servers() -> Iterator[Servers]:
    with servers() as found:
        yield found


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout_s: float = 30, what: str = "condition"
) -> None:
    """Poll a condition until it holds or the deadline passes (never a bare sleep)."""
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


async def make_settings(real_servers: Servers, **overrides: str) -> Settings:
    """Settings for a fresh database and a fresh topic on the shared servers."""
    name = "t" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(real_servers.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": real_servers.bootstrap_servers,
        **real_servers.kafka_security,
        "DATABASE_URL": with_database(real_servers.database_url, name),
        "LEDGER_TOPIC": f"consent.events.{name}",
        "LEDGER_STATE_TOPIC": f"consent.state.{name}",
        "LEDGER_CHECKS_TOPIC": f"consent.checks.{name}",
        "LEDGER_CHECKPOINTS_TOPIC": f"consent.checkpoints.{name}",
        "LEDGER_DEAD_LETTER_TOPIC": f"consent.deadletter.{name}",
        "LEDGER_TOPIC_PARTITIONS": "4",
        "LEDGER_KAFKA_IDEMPOTENCE": "true" if real_servers.idempotence else "false",
        "LEDGER_PROJECTOR_GROUP": f"projector-{name}",
        "LEDGER_KAFKA_SESSION_TIMEOUT_MS": "2000" if real_servers.kind == "embedded" else "6000",
        "LEDGER_READ_WAIT_MS": "5000",
        "LEDGER_PROJECTOR_BATCH": "500",
        "LEDGER_ADMIN_KEY": TEST_ADMIN_KEY,
        **TEST_SECRETS,
        **overrides,
    }
    settings = Settings.from_env(env)
    await ensure_topic(settings)
    conn = await asyncpg.connect(settings.database_url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return settings


@pytest.fixture
async def settings(real_servers: Servers) -> Settings:
    return await make_settings(real_servers)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        yield conn
    finally:
        await conn.close()


def new_projector(settings: Settings, group: str | None = None) -> Projector:
    return Projector(
        new_consumer=functools.partial(kafka_clients.new_consumer, settings.kafka),
        connect=database_connector(settings),
        topic=settings.topic,
        group_id=group or settings.projector_group,
        codec=default_codec(),
        macs=writer_macs(settings.writer_key_ring()),
        batch_size=settings.projector_batch,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        fetch_wait_ms=settings.projector_fetch_wait_ms,
    )


@contextlib.asynccontextmanager
async def running_projector(settings: Settings) -> AsyncIterator[Projector]:
    projector = new_projector(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(stop))
    try:
        # decisions fail closed until the projector has reported every partition it owns
        await wait_until(_reported(projector, task), 60, "the projector to report its partitions")
        yield projector
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def running_api(
    settings: Settings, clock: Callable[[], datetime] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app under uvicorn on a free port, and a client talking to it over a socket;
    `clock` drives the staff sessions' timeouts."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, clock=clock) if clock else create_app(settings),
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_level="warning",
        access_log=False,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        limit_concurrency=settings.api_concurrency_limit,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(_started(server, task), 30, "the API to start")
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, headers=ADMIN_HEADERS
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def _reported(projector: Projector, task: asyncio.Task[None]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        if task.done():
            task.result()
            raise AssertionError("the projector stopped during start-up")
        return projector.monitor.reported_all

    return check


def _started(server: uvicorn.Server, task: asyncio.Task[None]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        if task.done():
            task.result()
            raise AssertionError("the API stopped during start-up")
        return bool(server.started)

    return check


async def wait_ready(client: httpx.AsyncClient) -> None:
    """Until /readyz answers 200: the projector has reported catching up with the log (the
    purpose catalogue the API recorded at start included), so decisions are not refused as
    stale."""

    async def ready() -> bool:
        return (await client.get("/readyz")).status_code == 200

    await wait_until(ready, 30, "the API to be ready")


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_projector(settings), running_api(settings) as client:
        await wait_ready(client)
        yield client


@pytest.fixture(scope="module")
async def module_settings(real_servers: Servers) -> Settings:
    """One database and topic for a module whose tests do not disturb each other."""
    return await make_settings(real_servers)


@pytest.fixture(scope="module")
async def module_api(module_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_projector(module_settings), running_api(module_settings) as client:
        await wait_ready(client)
        yield client
