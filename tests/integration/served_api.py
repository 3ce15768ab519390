"""The real app under uvicorn, served the way `consent-ledger api` serves it (its options, and
with LEDGER_PUBLIC_PORT its two sockets), for tests that need a custom app or both listeners."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette

from services.cli.main import api_server_options
from services.config import Settings
from tests.conftest import wait_until


@contextlib.asynccontextmanager
async def served(
    app: Starlette, settings: Settings, sockets: list[socket.socket] | None = None
) -> AsyncIterator[uvicorn.Server]:
    """Serve `app` on LEDGER_HOST:LEDGER_PORT, or on `sockets`, until the block ends."""
    options = {**api_server_options(settings), "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    task = asyncio.create_task(server.serve(sockets=sockets))

    async def started() -> bool:
        if task.done():
            task.result()
            raise AssertionError("the API stopped during start-up")
        return bool(server.started)

    try:
        await wait_until(started, 30, "the API to start")
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
