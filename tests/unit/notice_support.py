"""Helpers shared by the privacy-notice unit tests."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from projections.outdating import Notice
from projections.state import Position
from schemas import events as ev
from schemas.events import Event
from services.rules.catalogue import Purpose
from tests.unit.event_log import (
    CATALOGUE,
)

DAY = timedelta(days=1)
NL, MO, CA = "newsletter", "marketing_own", "cookies_analytics"


def purpose(pid: str, **changes: Any) -> Purpose:
    found = CATALOGUE.get(pid)
    assert found is not None
    return dataclasses.replace(found, **changes)


def notice(
    version: str,
    effective_from: datetime,
    *,
    material: bool = True,
    purposes: tuple[str, ...] = (),
    n: int = 0,
) -> Notice:
    return Notice(
        version,
        effective_from,
        "0" * 64,
        f"https://example.com/privacy/{version}",
        material,
        purposes,
        "fi",
        event_id=UUID(int=1000 + n),
    )


def under(version: str | None, pairs: list[tuple[Event, Position]]) -> list[tuple[Event, Position]]:
    """The log with every grant given under `version`."""
    return [
        (dataclasses.replace(e, notice_version=version) if e.type == ev.CONSENT_GRANTED else e, p)
        for e, p in pairs
    ]
