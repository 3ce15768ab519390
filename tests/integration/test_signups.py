"""Sign-ups and double opt-in against the real servers: the request, the pending decision, the
confirmation page (GET changes nothing, POST grants once), retries, bad requests and asserted
contexts. The confirmation link's refusals: tests/integration/test_signup_confirmations.py; the
rule's precedence is table-tested in tests/unit/services/rules/test_decisions.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.config import Settings
from services.identity import links
from tests.integration.signup_support import (
    CONFIRM,
    NL,
    decide,
    events_of,
    opened_history,
    page,
    sign_up,
)
from tests.integration.unsubscribe_support import new_subject

pytestmark = pytest.mark.integration


async def test_a_sign_up_is_pending_until_confirmed_then_granted_once(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    subject = new_subject()
    signup = await sign_up(
        module_api,
        subject,
        notice_version="2026-06",
        language="sv",
        source={"system": "website", "collection_point": "footer-form"},
    )
    assert signup["type"] == "ConsentRequested" and signup["subject_id"] == subject
    url = signup["confirm_url"]
    assert url.startswith(module_settings.public_base_url + "/c/") and subject not in url
    claims = links.open_token(
        module_settings.secrets().links, page(url)[3:], datetime.now(UTC), kind=links.CONFIRM
    )
    assert uuid.UUID(claims.link_id) == uuid.UUID(signup["event_id"])
    expires = datetime.fromisoformat(signup["expires_at"])
    assert claims.expires_at == expires
    assert timedelta(days=7) - timedelta(seconds=2) <= expires - datetime.now(UTC) <= timedelta(7)

    pending = await decide(module_api, subject, signup["token"])
    assert (pending["allowed"], pending["reason"]) == (False, "confirmation_pending")
    assert pending["evidence"] == [signup["event_id"]]
    batch = await module_api.post("/v1/decisions/batch", json={**NL, "subjects": [subject]})
    assert batch.status_code == 200, batch.text
    assert batch.json()["denied"] == [{"recipient": subject, "reason": "confirmation_pending"}]

    shown = await module_api.get(page(url))
    assert shown.status_code == 200 and 'name="confirm" value="yes"' in shown.text
    assert subject not in shown.text
    before = await events_of(module_api, subject, signup["token"])
    assert [e["type"] for e in before] == ["ConsentRequested"]
    assert before[0]["payload"]["source"]["method"] == "double_opt_in"

    confirmed = await module_api.post(page(url), data=CONFIRM)
    assert confirmed.status_code == 200, confirmed.text
    # the page speaks the language the sign-up sealed in the link
    assert '<html lang="sv">' in confirmed.text and "Prenumerationen är bekräftad" in confirmed.text
    assert "ledger-token" in confirmed.headers
    # the page answered once applied: a decision without a token sees the grant
    allowed = await decide(module_api, subject)
    assert (allowed["allowed"], allowed["reason"]) == (True, "consent_given")
    history = await events_of(module_api, subject, confirmed.headers["ledger-token"])
    grant = history[-1]["payload"]
    assert grant["type"] == "ConsentGranted" and allowed["evidence"] == [grant["event_id"]]
    assert grant["source"]["method"] == "double_opt_in" and grant["actor"]["type"] == "subject"
    assert grant["request_event_id"] == signup["event_id"]
    assert grant["notice_version"] == "2026-06"
    # what the confirmation page saw, captured by the ledger; the address only as its /24
    (opened,) = [
        e for e in await opened_history(module_api, subject) if e["type"] == "ConsentGranted"
    ]
    context = opened["payload"]["context"]
    assert (context["page"], context["language"], context["one_click"]) == (
        "confirmation",
        "sv",
        False,
    )
    assert context["client_address"] == "127.0.0.0/24" and context["page_version"]
    assert {"client_address", "page", "page_version", "language"} <= set(context["captured"])

    reopened = await module_api.get(page(url))
    assert reopened.status_code == 200 and "Prenumerationen är bekräftad" in reopened.text
    assert 'name="confirm"' not in reopened.text
    again = await module_api.post(page(url), data=CONFIRM)
    assert again.status_code == 200 and "Prenumerationen är bekräftad" in again.text
    assert again.headers["ledger-token"] == confirmed.headers["ledger-token"]
    after = await events_of(module_api, subject, again.headers["ledger-token"])
    assert len(after) == len(history) == 2

    receipt = await module_api.get(f"/v1/receipts/{grant['event_id']}")
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["receipt"]["collection_method"]["confirmation"] == {
        "request_event_id": signup["event_id"],
        "confirmation_event_id": grant["event_id"],
        "confirmed_at": grant["occurred_at"],
    }
    kantara = await module_api.get(f"/v1/receipts/{grant['event_id']}?format=kantara")
    method = kantara.json()["receipt"]["collectionMethod"]
    assert signup["event_id"] in method and grant["event_id"] in method


async def test_a_sign_up_never_takes_a_standing_grant_away(
    module_api: httpx.AsyncClient,
) -> None:
    subject = new_subject()
    granted = await module_api.post(f"/v1/subjects/{subject}/consents", json=NL)
    assert granted.status_code == 201
    signup = await sign_up(module_api, subject)
    answer = await decide(module_api, subject, signup["token"])
    assert (answer["allowed"], answer["reason"]) == (True, "consent_given")
    withdrawn = await module_api.post(f"/v1/subjects/{subject}/withdrawals", json=NL)
    assert withdrawn.status_code == 201
    answer = await decide(module_api, subject, withdrawn.json()["token"])
    assert answer["reason"] == "consent_withdrawn"


async def test_an_identifier_is_linked_and_unlinking_it_revokes_the_link(
    module_api: httpx.AsyncClient,
) -> None:
    subject = new_subject()
    email = f"{subject}@example.org"
    signup = await sign_up(module_api, subject, identifier={"type": "email", "value": email})
    assert [e["type"] for e in signup["events"]] == ["IdentifierLinked", "ConsentRequested"]
    assert email not in signup["confirm_url"]
    found = await module_api.post(
        "/v1/subjects/by-identifier/consent", json={"email": email, "min_token": signup["token"]}
    )
    assert found.status_code == 200 and found.json()["subject_id"] == subject
    unlinked = await module_api.request(
        "DELETE", f"/v1/subjects/{subject}/identifiers", json={"type": "email", "value": email}
    )
    assert unlinked.status_code == 201, unlinked.text
    await events_of(module_api, subject, unlinked.json()["token"])
    refused = await module_api.post(page(signup["confirm_url"]), data=CONFIRM)
    assert refused.status_code == 404 and "This link cannot be used" in refused.text
    history = await events_of(module_api, subject, unlinked.json()["token"])
    assert [e["type"] for e in history][-1] == "IdentifierUnlinked"


async def test_a_retried_sign_up_answers_the_same_request(module_api: httpx.AsyncClient) -> None:
    subject = new_subject()
    headers = {"Idempotency-Key": f"signup-{subject}"}
    first = await module_api.post(f"/v1/subjects/{subject}/signups", json=NL, headers=headers)
    again = await module_api.post(f"/v1/subjects/{subject}/signups", json=NL, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    for name in ("event_id", "expires_at", "token"):
        assert again.json()[name] == first.json()[name]
    other = await module_api.post(
        f"/v1/subjects/{subject}/signups", json={**NL, "language": "fi"}, headers=headers
    )
    assert other.status_code == 422, other.text
    # the replay's link opens the same request
    confirmed = await module_api.post(page(again.json()["confirm_url"]), data=CONFIRM)
    assert confirmed.status_code == 200
    history = await events_of(module_api, subject, confirmed.headers["ledger-token"])
    assert [e["type"] for e in history] == ["ConsentRequested", "ConsentGranted"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"purpose": "customer_relationship", "channel": "email"}, "purpose"),
        ({"purpose": "marketing_own", "channel": "email"}, "purpose"),
        ({"purpose": "cookies_analytics", "channel": "web"}, "purpose"),
        ({"purpose": "newsletter", "channel": "sms"}, "channel"),
        ({"purpose": "newsletter"}, "channel"),
        ({**NL, "language": "de"}, "language"),
        ({**NL, "identifier": {"type": "email", "value": "not an address"}}, "identifier.value"),
        ({**NL, "method": "form"}, "method"),
    ],
)
async def test_a_bad_sign_up_is_a_422_naming_the_field(
    module_api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    subject = new_subject()
    answer = await module_api.post(f"/v1/subjects/{subject}/signups", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in answer.json()["errors"]}


async def test_only_the_confirmation_records_double_opt_in(module_api: httpx.AsyncClient) -> None:
    subject = new_subject()
    body = {**NL, "method": "double_opt_in"}
    refused = await module_api.post(f"/v1/subjects/{subject}/consents", json=body)
    assert refused.status_code == 422, refused.text
    (error,) = refused.json()["errors"]
    assert error["field"] == "method" and "/signups" in error["detail"]


async def test_a_sign_up_keeps_the_context_its_caller_asserts(
    module_api: httpx.AsyncClient,
) -> None:
    subject = new_subject()
    context = {"client_address": "203.0.113.0/24", "user_agent": "Mozilla/5.0", "page": "footer"}
    signup = await sign_up(module_api, subject, context=context)
    await events_of(module_api, subject, signup["token"])
    (event,) = await opened_history(module_api, subject)
    recorded = event["payload"]["context"]
    assert {k: recorded[k] for k in context} == context
    assert sorted(recorded["asserted"]) == sorted(context) and recorded["captured"] == []
    full = await module_api.post(
        f"/v1/subjects/{subject}/signups",
        json={**NL, "context": {"client_address": "203.0.113.7"}},
    )
    assert full.status_code == 422
    assert full.json()["errors"][0]["field"] == "context.client_address"
