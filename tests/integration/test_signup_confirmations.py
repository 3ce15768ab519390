"""The confirmation link of a sign-up against the real servers: every refusal (altered,
erased, expired, a form it never sends) records nothing, its page says no more than the
decision answers, and no API caller can take its key first. The sign-up itself:
tests/integration/test_signups.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from schemas import events as ev
from schemas.codec import default_codec, kafka_headers
from schemas.events import Actor, Event, Source
from services.config import Settings
from services.identity import links
from services.ledger.partitioning import partition_for
from tests.conftest import wait_until
from tests.integration.signup_support import (
    CONFIRM,
    NL,
    decide,
    events_of,
    page,
    sign_up,
)
from tests.integration.topic_records import produce_raw
from tests.integration.unsubscribe_support import FORM, ONE_CLICK, new_subject
from tests.writer_macs import sealed

pytestmark = pytest.mark.integration


async def test_a_tampered_link_is_404_and_records_nothing(module_api: httpx.AsyncClient) -> None:
    subject = new_subject()
    signup = await sign_up(module_api, subject)
    path = page(signup["confirm_url"])
    flipped = path[:-2] + ("A" if path[-2] != "A" else "B") + path[-1]
    for method in ("GET", "POST"):
        answer = await module_api.request(method, flipped, data=CONFIRM)
        assert answer.status_code == 404 and "This link cannot be used" in answer.text
    # a token of another kind for the same subject opens no confirmation page
    links_answer = await module_api.post(
        "/v1/unsubscribe-links", json={"subject_id": subject, **NL}
    )
    other = page(links_answer.json()["preferences_url"]).replace("/p/", "/c/")
    assert (await module_api.post(other, data=CONFIRM)).status_code == 404
    history = await events_of(module_api, subject, signup["token"])
    assert [e["type"] for e in history] == ["ConsentRequested"]


async def test_an_erased_subject_gets_the_erased_page_and_nothing_is_recorded(
    module_api: httpx.AsyncClient,
) -> None:
    subject = new_subject()
    signup = await sign_up(module_api, subject)
    erased = await module_api.post(
        f"/v1/subjects/{subject}/erasure", json={"ground": "consent_withdrawn"}
    )
    assert erased.status_code == 201, erased.text
    await events_of(module_api, subject, erased.json()["token"])
    for method in ("GET", "POST"):
        answer = await module_api.request(method, page(signup["confirm_url"]), data=CONFIRM)
        assert answer.status_code == 410, answer.text
        assert "Your details have been erased" in answer.text
    refused = await module_api.post(f"/v1/subjects/{subject}/signups", json=NL)
    assert refused.status_code == 409 and refused.json()["type"].endswith("subject-erased")
    history = await events_of(module_api, subject, erased.json()["token"])
    assert [e["type"] for e in history] == ["ConsentRequested", "SubjectErased"]


async def _expired_request(settings: Settings, subject: str) -> Event:
    """A ConsentRequested whose expiry has passed, in the log as the ledger writes it (no
    setting makes a request expire within a test: the shortest is a day)."""
    past = datetime.now(UTC) - timedelta(days=8)
    event = Event(
        type=ev.CONSENT_REQUESTED,
        event_id=uuid.uuid4(),
        subject_id=subject,
        occurred_at=past,
        recorded_at=past,
        source=Source("double_opt_in", "website"),
        actor=Actor("subject"),
        data={**NL, "expires_at": past + timedelta(days=7), "language": None},
    )
    value = default_codec().encode(event)
    key = subject.encode()
    headers = sealed(key, value, kafka_headers(event))
    partition = partition_for(subject, settings.topic_partitions)
    await produce_raw(settings.kafka, settings.topic, [(partition, key, value, headers)])
    return event


async def test_an_expired_request_no_longer_counts_and_its_link_is_410(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    subject = new_subject()
    request = await _expired_request(module_settings, subject)
    token = links.issue(
        module_settings.secrets().links,
        kind=links.CONFIRM,
        subject_id=subject,
        purpose="newsletter",
        channel="email",
        campaign_id=None,
        now=request.recorded_at,
        ttl=timedelta(days=7),
        link_id=request.event_id.bytes,
    )
    for method in ("GET", "POST"):
        answer = await module_api.request(method, f"/c/{token}", data=CONFIRM)
        assert answer.status_code == 410, answer.text
        assert "This confirmation link has expired" in answer.text

    async def applied() -> bool:
        listed = await module_api.get(f"/v1/subjects/{subject}/events")
        return listed.status_code == 200 and len(listed.json()["events"]) == 1

    await wait_until(applied, 30, "the request to be projected")
    answer = await decide(module_api, subject)
    assert (answer["allowed"], answer["reason"]) == (False, "no_consent")
    history = (await module_api.get(f"/v1/subjects/{subject}/events")).json()["events"]
    assert [e["type"] for e in history] == ["ConsentRequested"]


async def test_the_confirmation_form_takes_only_its_button(module_api: httpx.AsyncClient) -> None:
    subject = new_subject()
    signup = await sign_up(module_api, subject)
    path = page(signup["confirm_url"])
    empty = await module_api.post(path, data={}, headers={"content-type": FORM})
    assert empty.status_code == 400 and "text/html" in empty.headers["content-type"]
    history = await events_of(module_api, subject, signup["token"])
    assert [e["type"] for e in history] == ["ConsentRequested"]


async def test_the_page_never_says_more_than_the_decision(module_api: httpx.AsyncClient) -> None:
    """A confirmation does not lift an objection to all marketing, and a second press after an
    unsubscribe records nothing: each page says what the decision answers."""
    objector = new_subject()
    objected = await module_api.post(
        f"/v1/subjects/{objector}/objections", json={"kind": "direct_marketing"}
    )
    assert objected.status_code == 201
    signup = await sign_up(module_api, objector)
    held = await module_api.post(page(signup["confirm_url"]), data=CONFIRM)
    assert held.status_code == 200 and "Your confirmation is recorded" in held.text
    assert "an earlier request" in held.text and "You will receive" not in held.text
    assert (await decide(module_api, objector))["reason"] == "objected_direct_marketing"

    subject = new_subject()
    signup = await sign_up(module_api, subject)
    confirmed = await module_api.post(page(signup["confirm_url"]), data=CONFIRM)
    assert "You will receive" in confirmed.text
    links_answer = await module_api.post(
        "/v1/unsubscribe-links", json={"subject_id": subject, **NL}
    )
    unsubscribed = await module_api.post(page(links_answer.json()["url"]), data=ONE_CLICK)
    assert unsubscribed.status_code == 200
    again = await module_api.post(page(signup["confirm_url"]), data=CONFIRM)
    assert again.status_code == 200 and "You have unsubscribed since you confirmed" in again.text
    assert (await decide(module_api, subject))["reason"] == "consent_withdrawn"
    history = await events_of(module_api, subject, again.headers["ledger-token"])
    assert [e["type"] for e in history] == [
        "ConsentRequested",
        "ConsentGranted",
        "ConsentWithdrawn",
    ]


async def test_no_api_caller_can_take_the_confirmation_key_first(
    module_api: httpx.AsyncClient,
) -> None:
    subject = new_subject()
    signup = await sign_up(module_api, subject)
    taken = await module_api.post(
        f"/v1/subjects/{subject}/withdrawals",
        json=NL,
        headers={"Idempotency-Key": f"confirm:{signup['event_id']}"},
    )
    assert taken.status_code == 201
    shown = await module_api.get(page(signup["confirm_url"]))
    assert 'name="confirm"' in shown.text  # not "confirmed": nothing was
    confirmed = await module_api.post(page(signup["confirm_url"]), data=CONFIRM)
    assert confirmed.status_code == 200 and "You will receive" in confirmed.text
    assert (await decide(module_api, subject))["reason"] == "consent_given"
