"""Sample events shared by the codec tests, and the default codec they are checked against."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from schemas import events
from schemas.codec import default_codec
from schemas.events import Actor, Event, Source, grant_data

CODEC = default_codec()


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


GRANTED = Event(
    type=events.CONSENT_GRANTED,
    event_id=UUID("6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"),
    subject_id="sub-0001",
    occurred_at=at(2024, 5, 1, 12, 0, 0, 123456),
    recorded_at=at(2024, 5, 1, 12, 0, 1),
    source=Source("form", "web-shop", "footer-newsletter"),
    actor=Actor("subject"),
    notice_version="2024-03",
    data=grant_data("newsletter", "email", at(2026, 5, 1)),
)
WITHDRAWN = Event(
    type=events.CONSENT_WITHDRAWN,
    event_id=UUID("00000000-0000-4000-8000-000000000002"),
    subject_id="crm:42",
    occurred_at=at(2024, 6, 30, 23, 59, 59, 999999),
    recorded_at=at(2024, 7, 1),
    data={"purpose": None, "channel": None, "reason": None, "campaign_id": None},
)
RESTRICTED = Event(
    type=events.PROCESSING_RESTRICTED,
    event_id=UUID("a3b4c5d6-e7f8-4a9b-8c0d-1e2f3a4b5c6d"),
    subject_id="sub-0003",
    occurred_at=at(2025, 1, 15, 9, 30),
    recorded_at=at(2025, 1, 15, 9, 30, 0, 500),
    source=Source("support", "helpdesk", None),
    actor=Actor("staff", "agent-17"),
    data={"ground": "accuracy_contested", "purposes": ["analytics", "profiling"]},
)

REVOKED = Event(
    type=events.LINKS_REVOKED,
    event_id=UUID("5e1f0c2a-9b8d-4e7f-a6c5-b4d3e2f1a0b9"),
    subject_id="sub-0004",
    occurred_at=at(2026, 12, 8, 10, 15),
    recorded_at=at(2026, 12, 8, 10, 15, 0, 250),
    source=Source("support", "helpdesk", None),
    actor=Actor("staff", "agent-17"),
    data={"reason": "preference link forwarded to a colleague"},
)


def event_fields(event: Event) -> dict[str, Any]:
    return {name: getattr(event, name) for name in Event.__dataclass_fields__}
