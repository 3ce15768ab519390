"""`consent-ledger api` and `consent-ledger projector` as real subprocesses the fault tests kill
with SIGKILL: no handler runs, nothing is flushed, as when a machine loses power."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from services.config import Settings
from services.stack.embedded import die_with_parent, free_port
from tests.conftest import ADMIN_HEADERS, TEST_ADMIN_KEY, wait_until


class LedgerProcess:
    """One ledger process; `start` again after `kill` runs a new one with the same settings
    (an API keeps its port, so clients reconnect to where it was)."""

    def __init__(self, role: str, settings: Settings, log: Path) -> None:
        assert role in ("api", "projector")
        self.role = role
        self.settings = settings
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self._log_mark = 0

    def start(self) -> None:
        """Start the process (from the event loop's thread: the child dies with this one)."""
        assert self.process is None or self.process.poll() is not None
        env = {
            **os.environ,
            **self.settings.as_environment(),
            "LEDGER_PORT": str(self.port),
            "LEDGER_ADMIN_KEY": TEST_ADMIN_KEY,
        }
        self._log_mark = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli.main", self.role],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )

    def kill(self) -> None:
        """SIGKILL: the fault."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> int:
        """SIGTERM, as an operator stops it; the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def close(self) -> None:
        """Teardown: whatever state it is in, it is gone afterwards."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """What this run (since the last start) wrote."""
        with open(self.log, "rb") as f:
            f.seek(self._log_mark)
            return f.read().decode("utf-8", "replace")

    def assigned(self) -> list[int] | None:
        """The partitions of this run's latest 'partitions assigned' line, None before one."""
        found = re.findall(r"partitions assigned: \[([0-9, ]*)\]", self.output())
        return [int(p) for p in found[-1].split(",") if p.strip()] if found else None

    def revoked(self) -> int:
        """How many times this run has had its partitions revoked (a rebalance began)."""
        return self.output().count("partitions revoked")

    def _check_alive(self) -> None:
        if not self.running():
            tail = self.output()[-3000:]
            raise AssertionError(f"the {self.role} process exited:\n{tail}")

    async def ready(self, timeout_s: float = 90) -> None:
        """An API answers /readyz; a projector has been assigned its partitions."""

        async def api_ready() -> bool:
            self._check_alive()
            try:
                async with httpx.AsyncClient(headers=ADMIN_HEADERS, timeout=5) as client:
                    return (await client.get(f"{self.url}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        async def projector_ready() -> bool:
            self._check_alive()
            return self.assigned() is not None

        check = api_ready if self.role == "api" else projector_ready
        await wait_until(check, timeout_s, f"the {self.role} process to be ready")
