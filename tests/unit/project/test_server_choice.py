"""How the integration fixture chooses its servers; the Docker path cannot run on machines
without an engine, so its imports and the calls it makes are checked here."""

from __future__ import annotations

import warnings

import pytest

from tests import servers


def test_testcontainers_modules_import_cleanly_with_the_calls_used() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from testcontainers.community.kafka import KafkaContainer
        from testcontainers.community.postgres import PostgresContainer
    assert callable(KafkaContainer.get_bootstrap_server)
    assert callable(PostgresContainer.get_connection_url)
    assert servers.POSTGRES_IMAGE.split(":")[1] and servers.KAFKA_IMAGE.split(":")[1]


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        (
            "postgresql://postgres:@/postgres?host=/tmp/pg",
            "postgresql://postgres:@/t1?host=/tmp/pg",
        ),
        ("postgresql://u:p@db:5432/ledger", "postgresql://u:p@db:5432/t1"),
    ],
)
def test_with_database_keeps_the_server(dsn: str, expected: str) -> None:
    assert servers.with_database(dsn, "t1") == expected


def test_environment_servers_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("LEDGER_KAFKA_IDEMPOTENCE", "false")
    with servers.servers() as chosen:
        assert (chosen.kind, chosen.bootstrap_servers, chosen.idempotence) == (
            "external",
            "k:9092",
            False,
        )


def test_no_engine_means_no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert servers._docker_reachable() is False
