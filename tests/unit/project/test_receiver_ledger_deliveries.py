"""The webhook receivers of docs/integrators/examples/ sent what the ledger's own dispatcher
builds and signs (services/webhooks/deliverer.py, signing.py): applied once, a retired secret
alone refused, an erasure whose addresses are withheld still forgets the subject."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from projections.webhook_fanout import delivery_payload
from projections.webhook_queue import Due
from schemas import events as ev
from schemas.codec import default_codec
from services.webhooks.deliverer import body_of as ledger_body
from services.webhooks.deliverer import delivery_id_header
from services.webhooks.erasure_capture import Identifier
from services.webhooks.signing import webhook_headers
from tests.unit.project.receiver_examples import (
    NEW,
    OLD,
    SUBSCRIPTION,
    Receiver,
    post,
)


def ledger_delivery(kind: str, data: dict[str, Any], subject: str) -> Due:
    """A delivery as the dispatcher holds it: the event through the log's codec, its payload
    stored as fan-out stores it (JSON text read back)."""
    now = datetime.now(UTC)
    codec = default_codec()
    logged = codec.decode(codec.encode(ev.Event(kind, uuid.uuid4(), subject, now, now, data=data)))
    stored = json.loads(json.dumps(delivery_payload(logged), separators=(",", ":")))
    return Due(
        id=uuid.uuid4(),
        subscription_id=SUBSCRIPTION,
        event_id=logged.event_id,
        event_type=kind,
        subject_id=subject,
        payload=stored,
        attempts=0,
        retry_from=now,
        position=(0, 0),
        claim=uuid.uuid4(),
        retry_attempts=0,
    )


def ledger_post(
    receiver: Receiver,
    delivery: Due,
    identifiers: list[Identifier] | None,
    secrets: tuple[str, ...] = (NEW,),
    *,
    withheld: bool = False,
) -> httpx.Response:
    """Build, sign and send a delivery with the ledger's own code: body_of (the body the
    dispatcher posts) and webhook_headers (services/webhooks/signing.py)."""
    body = ledger_body(delivery, identifiers, withheld=withheld)
    headers = webhook_headers(list(secrets), delivery_id_header(delivery), int(time.time()), body)
    return post(receiver, body, headers)


def test_the_ledgers_own_deliveries_are_applied_once(receiver: Receiver) -> None:
    subject = f"cust-ledger-{uuid.uuid4()}"
    address: list[Identifier] = [{"type": "email", "value": f"{subject}@example.com"}]
    withdrawal = ledger_delivery(
        ev.CONSENT_WITHDRAWN, {"purpose": "newsletter", "channel": "email"}, subject
    )
    webhook_id = f"{withdrawal.event_id}_{SUBSCRIPTION}"
    assert delivery_id_header(withdrawal) == webhook_id

    first = ledger_post(receiver, withdrawal, address)
    # a retry: the same webhook-id, signed again; during a rotation with both secrets
    again = ledger_post(receiver, withdrawal, address, secrets=(NEW, OLD))

    assert (first.status_code, first.text) == (200, "applied")
    assert (again.status_code, again.text) == (200, "already applied")
    assert receiver.processed(webhook_id) == 1
    assert receiver.rows(
        "SELECT scope, reason, event_id FROM suppressions WHERE subject_id = ?", subject
    ) == [("newsletter", "withdrawn", str(withdrawal.event_id))]
    assert receiver.rows(
        "SELECT type, value FROM contact_addresses WHERE subject_id = ?", subject
    ) == [("email", f"{subject}@example.com")]

    # the erasure carries the addresses the ledger captured before shredding the key
    erasure = ledger_delivery(
        ev.SUBJECT_ERASED, {"ground": "consent_withdrawn", "request_id": None}, subject
    )
    erased = ledger_post(receiver, erasure, address)

    assert (erased.status_code, erased.text) == (200, "applied")
    assert receiver.rows("SELECT * FROM suppressions WHERE subject_id = ?", subject) == []
    query = "SELECT * FROM contact_addresses WHERE value = ?"
    assert receiver.rows(query, f"{subject}@example.com") == []


def test_a_ledger_delivery_signed_with_a_retired_secret_alone_is_refused(
    receiver: Receiver,
) -> None:
    delivery = ledger_delivery(ev.DIRECT_MARKETING_OBJECTED, {"channel": None}, "cust-retired")

    response = ledger_post(receiver, delivery, None, secrets=(OLD,))

    assert response.status_code == 401, response.text
    assert receiver.processed(delivery_id_header(delivery)) == 0


def test_an_erasure_whose_addresses_are_withheld_still_forgets_the_subject(
    receiver: Receiver,
) -> None:
    """`identifiers_withheld`: the ledger no longer holds the erased addresses; the receiver
    forgets the subject by its id, and the addresses an earlier delivery gave with it."""
    subject = f"cust-withheld-{uuid.uuid4()}"
    address: list[Identifier] = [{"type": "email", "value": f"{subject}@example.com"}]
    linked = ledger_delivery(ev.CONSENT_WITHDRAWN, {"purpose": None, "channel": None}, subject)
    assert ledger_post(receiver, linked, address).status_code == 200
    erasure = ledger_delivery(ev.SUBJECT_ERASED, {"ground": "objection"}, subject)

    response = ledger_post(receiver, erasure, None, withheld=True)

    assert (response.status_code, response.text) == (200, "applied")
    assert receiver.rows("SELECT * FROM suppressions WHERE subject_id = ?", subject) == []
    assert receiver.rows("SELECT * FROM contact_addresses WHERE subject_id = ?", subject) == []
