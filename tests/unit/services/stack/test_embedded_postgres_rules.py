"""The embedded PostgreSQL's pure checks: does a pg_hba.conf trust anyone, and does a socket
fit in the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.stack.embedded import (
    MAX_SOCKET_PATH,
    PASSWORD_HBA,
    SOCKET_NAME,
    socket_path_problem,
    trusts,
)


@pytest.mark.parametrize(
    ("hba", "trusted"),
    [
        ("local all all trust\n", True),
        ("host all all 127.0.0.1/32 trust\n", True),
        ("host all all 127.0.0.1 255.255.255.255 trust\n", True),
        ("# local all all trust\nlocal all all scram-sha-256\n", False),
        ("local all all scram-sha-256  # was trust\n", False),
        ("local all all peer\nhost all all ::1/128 md5\n", False),
        (PASSWORD_HBA, False),
        ("", False),
    ],
)
def test_trusts(hba: str, trusted: bool) -> None:
    assert trusts(hba) is trusted


@pytest.mark.parametrize(
    ("length", "fits"),
    [(MAX_SOCKET_PATH, True), (MAX_SOCKET_PATH + 1, False), (40, True)],
)
def test_socket_path_problem(length: int, fits: bool) -> None:
    directory = Path("/" + "d" * (length - len(SOCKET_NAME) - 2))
    assert len(str(directory / SOCKET_NAME)) == length
    problem = socket_path_problem(directory)
    assert (problem is None) is fits
    if problem:
        assert f"{length} bytes" in problem and "LEDGER_DATA_DIR" in problem
