"""The servers and processes a benchmark run talks to: the embedded PostgreSQL and broker (or
the external ones), databases, topics, and the API, projector and baseline app as child
processes whose memory can be read from /proc.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka.admin import NewTopic

from projections.migrate import migrate
from services.config import Settings
from services.identity.secrets import new_key
from services.kafka_access import KafkaAccess
from services.ledger.kafka_clients import new_admin
from services.stack.embedded import EmbeddedKafka, EmbeddedPostgres, die_with_parent, free_port


@dataclass(frozen=True, slots=True)
class Servers:
    kind: str  # "embedded" or "external"
    kafka: KafkaAccess
    database_url: str
    idempotence: bool


@contextlib.contextmanager
def servers(root: Path) -> Iterator[Servers]:
    """KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL when both are set; else the embedded servers,
    PostgreSQL kept in `root`/pg so that cached growth states survive between runs."""
    settings = Settings.from_env()
    if settings.kafka_bootstrap_servers and settings.database_url:
        yield Servers(
            "external",
            settings.kafka,
            settings.database_url,
            settings.kafka_idempotence,
        )
        return
    root.mkdir(parents=True, exist_ok=True)
    postgres = EmbeddedPostgres(root / "pg")
    kafka = EmbeddedKafka(log_file=root / "broker.log")
    try:
        dsn = postgres.start()
        bootstrap = kafka.start()
        yield Servers("embedded", KafkaAccess(bootstrap), dsn, False)
    finally:
        kafka.stop()
        postgres.stop()


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def database_exists(dsn: str, name: str) -> bool:
    admin = await asyncpg.connect(dsn)
    try:
        found = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        return found is not None
    finally:
        await admin.close()


async def fresh_database(dsn: str, name: str) -> str:
    """Drop `name` if it exists, create and migrate it; returns its DSN."""
    await drop_database(dsn, name)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(dsn, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url


async def drop_database(dsn: str, name: str) -> None:
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def create_topics(kafka: KafkaAccess, names: list[str], partitions: int) -> None:
    """Plain topics for the baselines (the ledger's own are made by ensure_topic)."""
    admin = new_admin(kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()


async def delete_topics(kafka: KafkaAccess, names: list[str]) -> None:
    admin = new_admin(kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


@dataclass(frozen=True, slots=True)
class LedgerNames:
    """Topics and consumer group of one run, so runs never share a log."""

    run: str

    def environment(self) -> dict[str, str]:
        return {
            "LEDGER_TOPIC": f"bench.events.{self.run}",
            "LEDGER_STATE_TOPIC": f"bench.state.{self.run}",
            "LEDGER_CHECKS_TOPIC": f"bench.checks.{self.run}",
            "LEDGER_CHECKPOINTS_TOPIC": f"bench.checkpoints.{self.run}",
        }

    @property
    def baseline_topic(self) -> str:
        return f"bench.baseline.{self.run}"

    def all_topics(self) -> list[str]:
        return [*self.environment().values(), self.baseline_topic]


def ledger_environment(
    found: Servers, database_url: str, names: LedgerNames, admin_key: str
) -> dict[str, str]:
    """The variables the ledger's processes run with: fresh secrets and admin key per run,
    the embedded broker's 6-second session timeout (as `up` uses), little logging."""
    return {
        **found.kafka.environment(),
        "DATABASE_URL": database_url,
        **names.environment(),
        "LEDGER_KAFKA_IDEMPOTENCE": "true" if found.idempotence else "false",
        "LEDGER_KAFKA_SESSION_TIMEOUT_MS": "6000" if found.kind == "embedded" else "10000",
        "LEDGER_LOG_LEVEL": "warning",
        "LEDGER_MASTER_KEYS": f"m1:{new_key()}",
        "LEDGER_BLIND_INDEX_KEY": new_key(),
        "LEDGER_LINK_KEYS": f"l1:{new_key()}",
        "LEDGER_RECEIPT_KEYS": f"r1:{new_key()}",
        "LEDGER_WRITER_KEYS": f"w1:{new_key()}",
        "LEDGER_API_KEY_HASH_KEY": new_key(),
        # access control: the API checks this key; every benchmark request sends it
        "LEDGER_ADMIN_KEY": admin_key,
    }


def new_admin_key() -> str:
    """A fresh admin key with an id of its own: the growth states are kept between runs, and
    each keeps the admin keys earlier runs registered there (an id is bound to one key)."""
    return f"cl_bench{secrets.token_hex(4)}_{new_key()}"


@dataclass(frozen=True, slots=True)
class Memory:
    rss_mb: float
    peak_mb: float


def memory_of(pid: int) -> Memory | None:
    """Resident and peak resident memory (VmRSS, VmHWM) of a live process, in MB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def mb(name: str) -> float:
        return int(fields.get(name, "0 kB").split()[0]) / 1024

    return Memory(mb("VmRSS"), mb("VmHWM"))


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds a live process has used (/proc/<pid>/stat)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Child:
    """One ledger or baseline process, its output kept in a log file."""

    def __init__(
        self, name: str, args: list[str], env: Mapping[str, str], log_dir: Path, port: int = 0
    ) -> None:
        self.name = name
        self.port = port
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, *args],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory(self) -> Memory | None:
        return memory_of(self.pid)

    def wait_ready(self, path: str, headers: Mapping[str, str], timeout_s: float = 120) -> None:
        """Poll `path` until it answers 200; raise with the log's tail if the process dies."""
        deadline = time.monotonic() + timeout_s
        request = urllib.request.Request(self.url + path, headers=dict(headers))
        while True:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the {self.name} process exited during start-up:\n{tail}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(request, timeout=2) as response,
            ):
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.url}{path} did not answer 200 within {timeout_s}s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_api(env: Mapping[str, str], log_dir: Path, name: str = "api") -> Child:
    port = free_port()
    child = Child(
        name, ["-m", "services.cli.main", "api"], {**env, "LEDGER_PORT": str(port)}, log_dir, port
    )
    # /healthz, not /readyz: before a replay no projector has reported yet, and the staleness
    # guard keeps /readyz at 503 until one has
    child.wait_ready("/healthz", auth_headers(env))
    return child


def start_projector(env: Mapping[str, str], log_dir: Path, group: str) -> Child:
    return Child(
        "projector",
        ["-m", "services.cli.main", "projector"],
        {**env, "LEDGER_PROJECTOR_GROUP": group},
        log_dir,
    )


def start_baselines(env: Mapping[str, str], log_dir: Path) -> Child:
    port = free_port()
    child = Child(
        "baselines", ["-m", "bench.baselines_app"], {**env, "LEDGER_PORT": str(port)}, log_dir, port
    )
    child.wait_ready("/b/http", {})
    return child


def auth_headers(env: Mapping[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {env['LEDGER_ADMIN_KEY']}"}
