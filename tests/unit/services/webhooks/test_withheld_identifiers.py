"""The identifiers a delivery with include_identifiers carries, where the ledger no longer
holds the addresses (an erasure's capture forgotten, a subject's key destroyed): None, which
the body turns into `identifiers_withheld` (tests/unit/services/webhooks/test_delivery_body.py),
never `[]`, which means the subject had none."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from projections.webhook_queue import Due
from schemas import events as ev
from services.webhooks.delivery_identifiers import DeliveryIdentifiers
from services.webhooks.erasure_capture import Identifier

AT = datetime(2026, 3, 2, tzinfo=UTC)
UNUSED: Any = None


def due(event_type: str) -> Due:
    payload = {"type": event_type, "subject_id": "s-1", "data": {"ground": "consent_withdrawn"}}
    return Due(
        uuid.uuid4(),
        uuid.uuid4(),
        uuid.uuid4(),
        event_type,
        "s-1",
        payload,
        3,
        AT,
        (0, 7),
        uuid.uuid4(),
        3,
    )


def capture_of(capture: list[Identifier] | None) -> DeliveryIdentifiers:
    async def open_capture(_: uuid.UUID) -> list[Identifier] | None:
        return capture

    return DeliveryIdentifiers(UNUSED, UNUSED, "events", open_capture)


async def test_an_erasure_whose_capture_is_gone_carries_none() -> None:
    assert await capture_of(None).of(due(ev.SUBJECT_ERASED)) is None


async def test_a_capture_that_held_nothing_is_an_empty_list() -> None:
    assert await capture_of([]).of(due(ev.SUBJECT_ERASED)) == []


async def test_a_subject_erased_since_carries_none() -> None:
    class Shredded:
        async def existing(self, _: str) -> bytes | None:
            return None

    async def no_capture(_: uuid.UUID) -> list[Identifier] | None:
        raise AssertionError("only an erasure opens a capture")

    keys: Any = Shredded()
    withdrawn = due(ev.CONSENT_WITHDRAWN)
    assert await DeliveryIdentifiers(UNUSED, keys, "events", no_capture).of(withdrawn) is None
