"""Fixtures of tests/unit/project: the example webhook receivers, started once per module
(tests/unit/project/receiver_examples.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.project.receiver_examples import NEW, OLD, RECEIVERS, Receiver, start


@pytest.fixture(scope="module", params=RECEIVERS)
def receiver(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Receiver]:
    """The example holding the new secret only, as after a receiver switched."""
    yield from start(request.param, [NEW], tmp_path_factory.mktemp("new"))


@pytest.fixture(scope="module", params=RECEIVERS)
def switching(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Receiver]:
    """The example holding both secrets, as while a receiver switches."""
    yield from start(request.param, [NEW, OLD], tmp_path_factory.mktemp("both"))
