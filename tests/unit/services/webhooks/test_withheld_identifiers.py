"""A delivery with include_identifiers whose addresses the ledger no longer holds (an
erasure's capture forgotten, a subject's key destroyed) says `identifiers_withheld`, never
`identifiers: []`, which means the subject had none."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from projections.webhook_deliveries import Due
from schemas import events as ev
from services.webhooks.deliverer import body_of
from services.webhooks.delivery_identifiers import DeliveryIdentifiers
from services.webhooks.erasure_capture import Identifier

AT = datetime(2026, 3, 2, tzinfo=UTC)


def due(event_type: str) -> Due:
    payload = {"type": event_type, "subject_id": "s-1", "data": {"ground": "consent_withdrawn"}}
    return Due(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), event_type, "s-1", payload, 3, AT, (0, 7))


def identifiers(capture: list[Identifier] | None) -> DeliveryIdentifiers:
    async def open_capture(_: uuid.UUID) -> list[Identifier] | None:
        return capture

    unused: Any = None
    return DeliveryIdentifiers(unused, unused, "events", open_capture)


async def test_an_erasure_whose_capture_is_gone_says_identifiers_withheld() -> None:
    erased = due(ev.SUBJECT_ERASED)
    carried = await identifiers(None).of(erased)
    assert carried is None
    body = json.loads(body_of(erased, carried, withheld=True))
    assert body["data"] == {"ground": "consent_withdrawn", "identifiers_withheld": True}


async def test_a_capture_that_held_nothing_is_an_empty_list() -> None:
    erased = due(ev.SUBJECT_ERASED)
    carried = await identifiers([]).of(erased)
    body = json.loads(body_of(erased, carried, withheld=carried is None))
    assert body["data"] == {"ground": "consent_withdrawn", "identifiers": []}


def test_without_include_identifiers_neither_field() -> None:
    body = json.loads(body_of(due(ev.SUBJECT_ERASED), None))
    assert body["data"] == {"ground": "consent_withdrawn"}


async def test_a_subject_erased_since_has_its_identifiers_withheld() -> None:
    class Shredded:
        async def existing(self, _: str) -> bytes | None:
            return None

    async def no_capture(_: uuid.UUID) -> list[Identifier] | None:
        raise AssertionError("only an erasure opens a capture")

    unused: Any = None
    keys: Any = Shredded()
    withdrawn = due(ev.CONSENT_WITHDRAWN)
    carried = await DeliveryIdentifiers(unused, keys, "events", no_capture).of(withdrawn)
    assert carried is None
    body = json.loads(body_of(withdrawn, carried, withheld=True))
    assert body["data"]["identifiers_withheld"] is True
