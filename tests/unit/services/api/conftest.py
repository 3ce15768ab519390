"""The app served in-process on a fresh fake ledger, for each test that asks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.services.api.in_process import InProcess, serving


@pytest.fixture
async def served() -> AsyncIterator[InProcess]:
    async with serving() as app:
        yield app
