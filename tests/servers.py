"""Which real servers the integration tests talk to.

KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL when set (with the KAFKA_* security settings of the
environment); else testcontainers when a Docker engine answers; else the embedded PostgreSQL and
broker that pip installed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from services.kafka_access import KAFKA_SECURITY_VARIABLES
from services.stack.embedded import EmbeddedKafka, EmbeddedPostgres

KAFKA_IMAGE = "confluentinc/cp-kafka:7.7.1"
POSTGRES_IMAGE = "postgres:18.1"


@dataclass(frozen=True, slots=True)
class Servers:
    kind: str
    bootstrap_servers: str
    database_url: str
    #: the embedded broker lacks idempotent producers
    idempotence: bool
    #: KAFKA_* security settings (SASL, TLS) of an external cluster, for every test's settings
    kafka_security: Mapping[str, str] = field(default_factory=dict)


def with_database(dsn: str, database: str) -> str:
    """The same server DSN pointing at another database (unix-socket DSNs included)."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def _docker_reachable() -> bool:
    """True when a Docker engine answers /_ping on its socket (DOCKER_HOST or the default)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: Any = host.removeprefix("unix://")
        elif host.startswith("tcp://"):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            name, _, port = host.removeprefix("tcp://").partition(":")
            address = (name, int(port or 2375))
        else:
            return False
        with sock:
            sock.settimeout(2)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(64)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _external() -> Iterator[Servers]:
    yield Servers(
        "external",
        os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        os.environ["DATABASE_URL"],
        os.environ.get("LEDGER_KAFKA_IDEMPOTENCE", "true").lower() in ("1", "true", "yes", "on"),
        {name: os.environ[name] for name in KAFKA_SECURITY_VARIABLES if os.environ.get(name)},
    )


@contextlib.contextmanager
def _containers() -> Iterator[Servers]:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer

    with (
        KafkaContainer(KAFKA_IMAGE) as kafka,
        PostgresContainer(POSTGRES_IMAGE, driver=None) as pg,
    ):
        yield Servers("testcontainers", kafka.get_bootstrap_server(), pg.get_connection_url(), True)


@contextlib.contextmanager
def _embedded() -> Iterator[Servers]:
    with tempfile.TemporaryDirectory(prefix="ledger-test-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg", delete_on_stop=True)
        kafka = EmbeddedKafka(log_file=Path(tmp) / "broker.log")
        try:
            dsn = postgres.start()
            bootstrap = kafka.start()
            yield Servers("embedded", bootstrap, dsn, False)
        finally:
            kafka.stop()
            postgres.stop()


def servers() -> contextlib.AbstractContextManager[Servers]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("DATABASE_URL"):
        return _external()
    if _docker_reachable():
        return _containers()
    return _embedded()
