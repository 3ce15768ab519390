"""The body a delivery posts (services/webhooks/deliverer.py body_of): the stored payload, with
`data.identifiers` only for a subscription with include_identifiers, and
`data.identifiers_withheld` in their place where the ledger does not hold an erasure's
addresses; never both, and never a change to the stored payload itself."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from projections.webhook_queue import Due
from services.webhooks.deliverer import WITHHELD, body_of, delivery_id_header
from services.webhooks.erasure_capture import Identifier

EVENT = uuid.UUID("11111111-2222-4333-8444-555555555555")
SUBSCRIPTION = uuid.UUID("66666666-7777-4888-9999-aaaaaaaaaaaa")
PAYLOAD: dict[str, Any] = {
    "type": "SubjectErased",
    "event_id": str(EVENT),
    "subject_id": "cust-1",
    "occurred_at": "2026-03-01T12:00:00Z",
    "recorded_at": "2026-03-01T12:00:00Z",
    "data": {"ground": "consent_withdrawn", "request_id": None},
}
ADDRESS: list[Identifier] = [{"type": "email", "value": "ääkkönen@example.fi"}]


def delivery() -> Due:
    return Due(
        uuid.uuid4(),
        SUBSCRIPTION,
        EVENT,
        "SubjectErased",
        "cust-1",
        json.loads(json.dumps(PAYLOAD)),
        0,
        datetime(2026, 3, 1, tzinfo=UTC),
        (0, 7),
        uuid.uuid4(),
        0,
    )


@pytest.mark.parametrize(
    ("identifiers", "withheld", "data"),
    [
        (None, False, PAYLOAD["data"]),
        ([], False, {**PAYLOAD["data"], "identifiers": []}),
        (ADDRESS, False, {**PAYLOAD["data"], "identifiers": ADDRESS}),
        (None, True, {**PAYLOAD["data"], WITHHELD: True}),
    ],
    ids=["without-identifiers", "none-linked", "captured", "withheld"],
)
def test_the_body(identifiers: list[Identifier] | None, withheld: bool, data: Any) -> None:
    due = delivery()
    body = body_of(due, identifiers, withheld=withheld)
    assert json.loads(body) == {**PAYLOAD, "data": data}
    assert due.payload == PAYLOAD  # the stored payload is left as it is
    assert "ääkkönen".encode() in body or identifiers != ADDRESS  # UTF-8, not \\u escapes
    assert b" " not in body.replace("ääkkönen".encode(), b"")  # compact


def test_the_webhook_id_is_the_event_and_the_subscription_without_a_dot() -> None:
    assert delivery_id_header(delivery()) == f"{EVENT}_{SUBSCRIPTION}"
    assert "." not in delivery_id_header(delivery())
