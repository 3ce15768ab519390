"""The webhook receivers of docs/integrators/examples/, run as a reader would run them and sent
deliveries signed by the Standard Webhooks package, with the webhook-ids the ledger sends: a
genuine delivery is applied once, and a tampered, stale, unknown-secret or malformed one is
refused and changes nothing. What the ledger's own dispatcher builds and signs:
test_receiver_ledger_deliveries.py."""

from __future__ import annotations

import base64
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.unit.project.receiver_examples import (
    NEW,
    OLD,
    START_DEADLINE_S,
    SUBSCRIPTION,
    Receiver,
    body_of,
    event,
    post,
    signed,
)

WITHDRAWAL = {"purpose": "newsletter", "channel": "email", "reason": None}


def test_a_signed_delivery_is_applied_and_its_redelivery_changes_nothing(
    receiver: Receiver,
) -> None:
    payload = event("ConsentWithdrawn", WITHDRAWAL, subject="cust-once")
    body = body_of(payload)
    headers = signed(body)

    first = post(receiver, body, headers)
    # a retry carries the same webhook-id, signed again at its own time
    again = post(receiver, body, signed(body, webhook_id=headers["webhook-id"]))

    assert (first.status_code, first.text) == (200, "applied")
    assert (again.status_code, again.text) == (200, "already applied")
    assert receiver.processed(headers["webhook-id"]) == 1
    assert receiver.rows(
        "SELECT scope, reason, event_id FROM suppressions WHERE subject_id = 'cust-once'"
    ) == [("newsletter", "withdrawn", payload["event_id"])]


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (lambda body, headers: (body.replace(b"newsletter", b"nEwsletter"), headers), "body"),
        (
            lambda body, headers: (
                body,
                {**headers, "webhook-id": f"{uuid.uuid4()}_{SUBSCRIPTION}"},
            ),
            "webhook-id",
        ),
        (
            lambda body, headers: (
                body,
                {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)},
            ),
            "timestamp",
        ),
    ],
    ids=["body", "webhook-id", "timestamp"],
)
def test_a_tampered_delivery_is_refused_and_changes_nothing(
    receiver: Receiver, change: Any, what: str
) -> None:
    payload = event("ConsentWithdrawn", WITHDRAWAL, subject=f"cust-tampered-{what}")
    body = body_of(payload)
    headers = signed(body)
    tampered_body, tampered_headers = change(body, headers)

    response = post(receiver, tampered_body, tampered_headers)

    assert response.status_code == 401, response.text
    assert receiver.processed(tampered_headers["webhook-id"]) == 0
    assert (
        receiver.rows("SELECT * FROM suppressions WHERE subject_id = ?", payload["subject_id"])
        == []
    )


@pytest.mark.parametrize(
    ("age", "status"),
    [
        (timedelta(minutes=4), 200),
        (timedelta(minutes=6), 401),
        (timedelta(minutes=-4), 200),
        (timedelta(minutes=-6), 401),
    ],
    ids=["4-min-old", "6-min-old", "4-min-ahead", "6-min-ahead"],
)
def test_a_timestamp_more_than_five_minutes_off_is_refused(
    receiver: Receiver, age: timedelta, status: int
) -> None:
    body = body_of(event("DirectMarketingObjected", {"channel": None}))
    headers = signed(body, at=datetime.now(UTC) - age)

    response = post(receiver, body, headers)

    assert response.status_code == status, response.text
    assert receiver.processed(headers["webhook-id"]) == (1 if status == 200 else 0)


def test_a_delivery_signed_with_another_secret_is_refused(receiver: Receiver) -> None:
    body = body_of(event("DirectMarketingObjected", {"channel": "email"}))
    stranger = "whsec_" + base64.b64encode(b"s" * 32).decode()

    response = post(receiver, body, signed(body, secrets=(stranger,)))

    assert response.status_code == 401, response.text


def test_during_a_rotation_either_secret_verifies(receiver: Receiver) -> None:
    """The ledger signs with the old and the new secret for a day: a receiver that already
    holds only the new one accepts, and one signed by the retired secret alone is refused."""
    body = body_of(event("DirectMarketingObjected", {"channel": "email"}))
    both = post(receiver, body, signed(body, secrets=(OLD, NEW)))
    old_only = post(receiver, body, signed(body, secrets=(OLD,)))

    assert both.status_code == 200, both.text
    assert old_only.status_code == 401, old_only.text


def test_a_receiver_holding_both_secrets_accepts_the_old_signature(switching: Receiver) -> None:
    body = body_of(event("DirectMarketingObjected", {"channel": "email"}))

    response = post(switching, body, signed(body, secrets=(OLD,)))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (["not", "an", "event"], 400),
        ({"type": "ConsentWithdrawn", "subject_id": "cust-4711", "data": {}}, 400),
        ({**event("ConsentWithdrawn", {}), "data": "text"}, 400),
    ],
    ids=["array", "no-event-id", "data-not-object"],
)
def test_a_signed_body_that_is_no_event_is_a_400(
    receiver: Receiver, payload: object, status: int
) -> None:
    body = body_of(payload)
    headers = signed(body)

    response = post(receiver, body, headers)

    assert response.status_code == status, response.text
    assert receiver.processed(headers["webhook-id"]) == 0


@pytest.mark.parametrize(
    "drop", ["webhook-id", "webhook-timestamp", "webhook-signature"], ids=lambda d: f"no-{d}"
)
def test_a_delivery_without_a_webhook_header_is_refused(receiver: Receiver, drop: str) -> None:
    body = body_of(event("DirectMarketingObjected", {"channel": "email"}))
    headers = {name: value for name, value in signed(body).items() if name != drop}

    response = post(receiver, body, headers)

    assert response.status_code == 401, response.text


def test_an_empty_body_is_refused(receiver: Receiver) -> None:
    response = post(receiver, b"", signed(b""))

    assert response.status_code == 413, response.text


@pytest.mark.parametrize(
    ("kind", "data", "suppressions"),
    [
        ("ConsentWithdrawn", {"purpose": "newsletter", "channel": "email"}, [("newsletter",)]),
        ("ConsentWithdrawn", {"purpose": None, "channel": None}, [("*",)]),
        ("ConsentWithdrawn", {"purpose": "newsletter", "channel": "sms"}, []),
        ("DirectMarketingObjected", {"channel": None}, [("*",)]),
        ("DirectMarketingObjected", {"channel": "phone"}, []),
        ("ProcessingRestricted", {"ground": "accuracy", "purposes": []}, [("*",)]),
        (
            "ProcessingRestricted",
            {"ground": "accuracy", "purposes": ["newsletter", "offers"]},
            [("newsletter",), ("offers",)],
        ),
        ("ConsentGranted", {"purpose": "newsletter", "channel": "email"}, []),
        ("RestrictionLifted", {"ground": None, "purposes": []}, []),
        ("ProcessingObjected", {"purpose": "profiling"}, [("profiling",)]),
        (
            "ProcessingObjectionResolved",
            {"purpose": "profiling", "outcome": "upheld"},
            [("profiling",)],
        ),
        ("ProcessingObjectionResolved", {"purpose": "profiling", "outcome": "withdrawn"}, []),
        (
            "ProcessingObjectionResolved",
            {"purpose": "profiling", "outcome": "compelling_grounds"},
            [],
        ),
        ("RelationshipEnded", {"basis": None, "purposes": []}, [("*",)]),
        ("RelationshipEnded", {"basis": "contract", "purposes": ["offers"]}, [("offers",)]),
        ("RelationshipRecorded", {"basis": "contract", "purposes": [], "valid_until": None}, []),
    ],
    ids=[
        "withdrawn-email",
        "withdrawn-everything",
        "withdrawn-sms",
        "objected-all-channels",
        "objected-phone",
        "restricted-all",
        "restricted-two-purposes",
        "granted",
        "restriction-lifted",
        "processing-objected",
        "objection-upheld",
        "objection-withdrawn",
        "objection-overridden",
        "relationship-ended-all",
        "relationship-ended-one-purpose",
        "relationship-recorded",
    ],
)
def test_what_each_event_suppresses(
    receiver: Receiver, kind: str, data: dict[str, Any], suppressions: list[tuple[str]]
) -> None:
    subject = f"cust-{uuid.uuid4()}"
    body = body_of(event(kind, data, subject=subject))

    response = post(receiver, body, signed(body))

    assert response.status_code == 200, response.text
    query = "SELECT scope FROM suppressions WHERE subject_id = ? ORDER BY scope"
    assert receiver.rows(query, subject) == suppressions


def addresses_of(receiver: Receiver, subject: str) -> list[tuple[Any, ...]]:
    query = "SELECT type, value FROM contact_addresses WHERE subject_id = ? ORDER BY value"
    return receiver.rows(query, subject)


def deliver(receiver: Receiver, payload: dict[str, Any]) -> None:
    body = body_of(payload)
    response = post(receiver, body, signed(body))
    assert response.status_code == 200, response.text


def test_an_address_the_subject_no_longer_holds_is_not_kept(receiver: Receiver) -> None:
    """With include_identifiers, data.identifiers is the subject's whole current set: each
    delivery replaces what the receiver held for the subject."""
    subject = f"cust-{uuid.uuid4()}"
    old = {"type": "email", "value": "old@example.com"}
    new = {"type": "email", "value": "new@example.com"}
    phone = {"type": "phone", "value": "+358401234567"}

    deliver(
        receiver,
        event("IdentifierLinked", {"identifier_type": "email", "identifiers": [old]}, subject),
    )
    deliver(
        receiver,
        event(
            "IdentifierLinked",
            {"identifier_type": "email", "identifiers": [old, new, phone]},
            subject,
        ),
    )
    assert addresses_of(receiver, subject) == [
        ("phone", "+358401234567"),
        ("email", "new@example.com"),
        ("email", "old@example.com"),
    ]

    deliver(
        receiver,
        event(
            "IdentifierUnlinked", {"identifier_type": "email", "identifiers": [new, phone]}, subject
        ),
    )
    assert addresses_of(receiver, subject) == [
        ("phone", "+358401234567"),
        ("email", "new@example.com"),
    ]

    # a delivery without include_identifiers says nothing about addresses: they stay
    deliver(receiver, event("IdentifierUnlinked", {"identifier_type": "phone"}, subject))
    assert len(addresses_of(receiver, subject)) == 2


def test_identifiers_that_are_no_list_of_addresses_are_a_400(receiver: Receiver) -> None:
    body = body_of(event("IdentifierLinked", {"identifiers": [{"type": "email"}]}))
    headers = signed(body)

    response = post(receiver, body, headers)

    assert response.status_code == 400, response.text
    assert receiver.processed(headers["webhook-id"]) == 0


def test_an_erasure_with_its_identifiers_withheld_erases_by_the_subject_id(
    receiver: Receiver,
) -> None:
    """A SubjectErased redelivered after the ledger deleted its capture carries
    identifiers_withheld instead of the addresses: the receiver erases what it keeps for the
    subject id, and leaves another subject alone."""
    subject, other = f"cust-{uuid.uuid4()}", f"cust-{uuid.uuid4()}"
    address = {"type": "email", "value": f"{subject}@example.com"}
    kept = {"type": "email", "value": f"{other}@example.com"}
    deliver(receiver, event("ConsentWithdrawn", {**WITHDRAWAL, "identifiers": [address]}, subject))
    deliver(receiver, event("ConsentWithdrawn", {**WITHDRAWAL, "identifiers": [kept]}, other))

    erasure = {"ground": "objection", "request_id": None, "identifiers_withheld": True}
    deliver(receiver, event("SubjectErased", erasure, subject))

    assert addresses_of(receiver, subject) == []
    assert receiver.rows("SELECT * FROM suppressions WHERE subject_id = ?", subject) == []
    assert addresses_of(receiver, other) == [("email", kept["value"])]


def test_a_client_that_sends_half_a_body_is_dropped(receiver: Receiver) -> None:
    """The handler's socket timeout (10 s) closes a stalled request; without one it would hold
    a server thread for good. The server still answers others meanwhile."""
    host, port = receiver.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=START_DEADLINE_S) as stalled:
        stalled.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"type": '
        )
        body = body_of(event("DirectMarketingObjected", {"channel": "email"}))
        assert post(receiver, body, signed(body)).status_code == 200

        # the condition: the server closes the connection (EOF), well within the deadline
        assert stalled.recv(1024) == b""


def test_an_erasure_forgets_the_subject_and_the_addresses_it_held(receiver: Receiver) -> None:
    identifiers = [{"type": "email", "value": "ada@example.com"}]
    withdrawal = event(
        "ConsentWithdrawn", {**WITHDRAWAL, "identifiers": identifiers}, subject="cust-erased"
    )
    erasure = event(
        "SubjectErased",
        {"ground": "consent_withdrawn", "request_id": None, "identifiers": identifiers},
        subject="cust-erased",
    )
    body = body_of(withdrawal)
    assert post(receiver, body, signed(body)).status_code == 200
    query = "SELECT subject_id FROM contact_addresses WHERE value = 'ada@example.com'"
    assert receiver.rows(query) == [("cust-erased",)]

    body = body_of(erasure)
    assert post(receiver, body, signed(body)).status_code == 200

    assert receiver.rows("SELECT * FROM suppressions WHERE subject_id = 'cust-erased'") == []
    assert receiver.rows("SELECT * FROM contact_addresses WHERE value = 'ada@example.com'") == []


# --- what the ledger itself sends ----------------------------------------------------------
