"""The HTTP baselines: the least a Starlette endpoint can do for each kind of ledger request,
served by uvicorn with the same options as `consent-ledger api` (services/cli/main.py `run_api`:
uvloop, httptools, no access log, one process) against the same servers.

    B-http   GET  /b/http                 a constant JSON answer
    B-read   GET  /b/read?id=<subject>    one asyncpg SELECT by the state table's primary key
    B-write  POST /b/write/<subject>      Avro-encode a ConsentGranted, await its acks=all send

The pool and the producer are made as the ledger makes them (same sizes, no reset query,
acks=all, no linger, idempotence as configured), so a ratio shows what the ledger adds.
Run as `python -m bench.baselines_app` with the ledger's variables; LEDGER_TOPIC is the topic
B-write sends to.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from schemas.codec import default_codec, kafka_headers
from schemas.events import Event, grant_data
from services.config import Settings
from services.ledger.publisher import make_producer

READ = (
    "SELECT kind, scope_a, scope_b, event_type, event_id FROM subject_facts WHERE subject_id = $1"
)


async def _no_reset(conn: asyncpg.Connection) -> None:
    """As the ledger's pool: connections go back without asyncpg's reset round trip."""


async def http(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def read(request: Request) -> JSONResponse:
    pool: asyncpg.Pool = request.app.state.pool
    rows = await pool.fetch(READ, request.query_params["id"])
    return JSONResponse({"rows": len(rows)})


async def write(request: Request) -> JSONResponse:
    state = request.app.state
    body = await request.json()
    now = datetime.now(UTC)
    data = grant_data(body["purpose"], body.get("channel"))
    subject_id = request.path_params["subject_id"]
    event = Event("ConsentGranted", uuid.uuid4(), subject_id, now, now, data=data)
    future = await state.producer.send(
        state.topic,
        key=subject_id.encode("utf-8"),
        value=state.codec.encode(event),
        headers=kafka_headers(event),
    )
    metadata = await future
    return JSONResponse({"partition": metadata.partition, "offset": metadata.offset}, 201)


def create_baseline_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(
            settings.database_url, min_size=2, max_size=10, reset=_no_reset
        )
        app.state.producer = make_producer(
            settings.kafka,
            idempotence=settings.kafka_idempotence,
            timeout_ms=settings.produce_timeout_ms,
        )
        app.state.topic = settings.topic
        app.state.codec = default_codec()
        await app.state.producer.start()
        try:
            yield
        finally:
            await app.state.producer.stop()
            await app.state.pool.close()

    return Starlette(
        routes=[
            Route("/b/http", http, methods=["GET"]),
            Route("/b/read", read, methods=["GET"]),
            Route("/b/write/{subject_id}", write, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    settings = Settings.from_env()
    uvicorn.run(
        create_baseline_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
