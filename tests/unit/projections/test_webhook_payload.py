"""What a webhook delivery row keeps of its event (projections/webhook_fanout.py
delivery_payload): the event's own fields, never the blind index, an identifier's ciphertext
or the context's sealed client address and user agent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from projections.webhook_fanout import delivery_payload
from schemas import events as ev
from schemas.events import Event, Source

AT = datetime(2026, 3, 2, 9, 14, 7, tzinfo=UTC)
SEALED = bytes.fromhex("01" + "00" * 12 + "aa" * 16)
CONTEXT = {
    "client_address": SEALED,
    "user_agent": SEALED,
    "page": "unsubscribe",
    "page_version": "0123456789ab",
    "language": "en",
    "one_click": True,
    "captured": ["client_address", "user_agent", "page"],
    "asserted": [],
}


def event(event_type: str, data: dict[str, Any]) -> Event:
    return Event(event_type, uuid.uuid4(), "s-1", AT, AT, Source(method="api"), data=data)


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        (
            event(
                ev.IDENTIFIER_LINKED,
                {"identifier_type": "email", "blind_index": b"\x01" * 32, "ciphertext": SEALED},
            ),
            {"identifier_type": "email"},
        ),
        (
            event(
                ev.IDENTIFIER_UNLINKED, {"identifier_type": "phone", "blind_index": b"\x02" * 32}
            ),
            {"identifier_type": "phone"},
        ),
        (
            event(
                ev.CONSENT_WITHDRAWN,
                {
                    "purpose": "newsletter",
                    "channel": "email",
                    "reason": None,
                    "campaign_id": None,
                    "context": CONTEXT,
                },
            ),
            {
                "purpose": "newsletter",
                "channel": "email",
                "reason": None,
                "campaign_id": None,
                "context": {
                    "page": "unsubscribe",
                    "page_version": "0123456789ab",
                    "language": "en",
                    "one_click": True,
                    "captured": ["client_address", "user_agent", "page"],
                    "asserted": [],
                },
            },
        ),
        (
            event(ev.CONSENT_GRANTED, {"purpose": "newsletter", "channel": None, "context": None}),
            {"purpose": "newsletter", "channel": None, "context": None},
        ),
    ],
)
def test_the_data_keeps_no_sealed_value_or_blind_index(
    made: Event, expected: dict[str, Any]
) -> None:
    payload = delivery_payload(made)
    data = payload.pop("data")
    assert {k: data[k] for k in expected} == expected
    assert set(data) - set(expected) == {"source", "actor", "notice_version"}
    assert payload == {
        "type": made.type,
        "event_id": str(made.event_id),
        "subject_id": "s-1",
        "occurred_at": "2026-03-02T09:14:07Z",
        "recorded_at": "2026-03-02T09:14:07Z",
    }
