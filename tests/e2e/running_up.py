"""`consent-ledger up` run as a user runs it: a subprocess on a free port, its log, its
development admin key, and Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until


class Stack:
    def __init__(self, data_dir: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.env = env or {}
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = data_dir / "up.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        env = {
            **{k: v for k, v in os.environ.items() if k != "LEDGER_ADMIN_KEY"},
            **self.env,
            "LEDGER_DATA_DIR": str(self.data_dir),
            "LEDGER_PORT": str(self.port),
        }
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli.main", "up"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def ready(self) -> None:
        async def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"`up` exited early:\n{self.log.read_text()[-3000:]}")
            try:
                async with httpx.AsyncClient() as client:
                    return (await client.get(f"{self.url}/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(answers, 180, "`consent-ledger up` to be ready")

        async def banner() -> bool:
            return self.log.read_text().count("Press Ctrl-C to stop.") == self.starts

        await wait_until(banner, 30, "the start-up banner")

    def interrupt(self) -> int:
        """Ctrl-C: returns the exit code, which must come within the time a user waits."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(90)
        self.process = None
        return code

    def admin_headers(self) -> dict[str, str]:
        """The development admin key `up` made in the data directory."""
        key = (self.data_dir / "admin.key").read_text().strip()
        return {"Authorization": f"Bearer {key}"}

    def embedded_broker_port(self) -> int | None:
        found = re.findall(r"Kafka\s+127\.0\.0\.1:(\d+)\s+\(embedded", self.log.read_text())
        return int(found[-1]) if found else None

    def assert_nothing_left_running(self) -> None:
        """After Ctrl-C: PostgreSQL stopped, the broker's port closed, the API's port closed."""
        assert not (self.data_dir / "pg" / "postmaster.pid").exists()
        broker = self.embedded_broker_port()
        for port in (self.port,) if broker is None else (broker, self.port):
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()

    def kill(self) -> None:
        """Teardown after a failure: the children die with `up` (see die_with_parent)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        pid_file = self.data_dir / "pg" / "postmaster.pid"
        if pid_file.exists():  # PostgreSQL runs detached: a killed `up` leaves it for the next
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
