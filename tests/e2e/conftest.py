"""The e2e tests' fixture: a `consent-ledger up` of their own, killed whatever happens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.stack.embedded import free_port
from tests.e2e.running_up import Stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path, free_port())
    try:
        yield s
    finally:
        s.kill()
