"""The preference page against the real servers: what it can grant and how it records it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.integration.unsubscribe_support import (
    FORM,
    ONE_CLICK,
    decision,
    grant,
    history,
    issue,
    new_subject,
    path_of,
    shown,
)

pytestmark = pytest.mark.integration


async def test_the_list_unsubscribe_url_can_never_grant(module_api: httpx.AsyncClient) -> None:
    """Whoever sees the List-Unsubscribe URL (a mailbox provider, anyone a message is forwarded
    to) can unsubscribe the person, but cannot open the preference page with it to consent in
    their name, and no /u/ page hands out a preference link."""
    subject = new_subject()
    answer = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    header_url = answer["headers"]["List-Unsubscribe"].strip("<>")
    token = path_of(header_url).removeprefix("/u/")
    preferences = path_of(answer["preferences_url"]).removeprefix("/p/")
    for method in ("GET", "POST"):
        response = await module_api.request(
            method, f"/p/{token}", data={"choice": ["newsletter.email", "profiling.web"]}
        )
        assert response.status_code == 404, response.text
        assert "This link cannot be used" in response.text
    page = await module_api.get(f"/u/{token}")
    done = await module_api.post(f"/u/{token}", data=ONE_CLICK)
    assert page.status_code == done.status_code == 200
    for response in (page, done):
        assert "/p/" not in response.text and preferences not in response.text
        # its only links are its language switch, back to the same page
        assert re.findall(r'<a href="([^"]*)"', response.text) == [
            "?lang=fi",
            "?lang=sv",
            "?lang=en",
        ]
        assert response.text.count("<a ") == 3
    types = [e["type"] for e in await history(module_api, subject, done.headers["ledger-token"])]
    assert types == ["ConsentWithdrawn"]


async def test_preference_page_grants_name_the_link_and_keep_the_campaign(
    module_api: httpx.AsyncClient,
) -> None:
    """A grant made through a preference link says so, and which link, in its event, its
    history and both receipt formats (security review finding M3): the ledger knows the link
    was used, not who used it."""
    subject = new_subject()
    granted = await grant(module_api, subject, "newsletter", "email")
    answer = await issue(
        module_api, subject_id=subject, purpose="newsletter", channel="email", campaign_id="c11"
    )
    link_id = answer["link_ids"]["preferences"]
    assert re.fullmatch(r"[0-9a-f]{32}", link_id) and link_id != answer["link_ids"]["unsubscribe"]
    path = path_of(answer["preferences_url"])
    page = await module_api.get(path, params={"after": granted})
    saved = await module_api.post(
        path, data={"shown": shown(page), "choice": "profiling.web", "object": []}
    )
    assert saved.status_code == 200, saved.text
    events = (await history(module_api, subject, saved.headers["ledger-token"]))[1:]
    assert [e["type"] for e in events] == ["ConsentWithdrawn", "ConsentGranted"]
    for event in events:
        assert event["payload"]["source"] == {
            "method": "preference_center",
            "system": "consent-ledger",
            "collection_point": f"preference_link:{link_id}",
        }
        assert event["payload"]["actor"] == {"type": "subject", "id": f"link:{link_id}"}
    assert events[0]["payload"]["campaign_id"] == "c11"
    receipt = await module_api.get(f"/v1/receipts/{events[1]['event_id']}")
    assert receipt.status_code == 200, receipt.text
    iso = receipt.json()["receipt"]
    assert iso["expressed_by"] == {"type": "subject", "id": f"link:{link_id}"}
    assert iso["collection_method"]["collection_point"] == f"preference_link:{link_id}"
    kantara = await module_api.get(f"/v1/receipts/{events[1]['event_id']}?format=kantara")
    assert link_id in kantara.json()["receipt"]["collectionMethod"]
    csv = await module_api.get(f"/v1/subjects/{subject}/history", params={"format": "csv"})
    assert csv.status_code == 200 and f"link:{link_id}" in csv.text


async def test_a_lift_through_the_preference_page_names_the_link(
    module_api: httpx.AsyncClient,
) -> None:
    subject = new_subject()
    objected = await module_api.post(
        f"/v1/subjects/{subject}/objections", json={"kind": "direct_marketing", "method": "support"}
    )
    assert objected.status_code == 201, objected.text
    answer = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    link_id = answer["link_ids"]["preferences"]
    path = path_of(answer["preferences_url"])
    page = await module_api.get(path, params={"after": objected.json()["token"]})
    assert 'value="all_direct_marketing" checked' in page.text
    saved = await module_api.post(path, data={"shown": shown(page), "choice": "newsletter.email"})
    assert saved.status_code == 200, saved.text
    events = (await history(module_api, subject, saved.headers["ledger-token"]))[1:]
    assert [e["type"] for e in events] == ["DirectMarketingObjectionLifted", "ConsentGranted"]
    assert {e["payload"]["actor"]["id"] for e in events} == {f"link:{link_id}"}
    assert f"link:{link_id}" in events[0]["payload"]["evidence"]


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": {"List-Unsubscribe": "Yes"}}, 400),
        ({"content": b"", "headers": {"content-type": FORM}}, 400),
        ({"data": {}}, 415),
        ({"data": {**ONE_CLICK, "scope": "everything"}}, 400),
        ({"json": ONE_CLICK}, 415),
        ({"files": {"f": ("a.txt", b"x")}, "data": ONE_CLICK}, 400),
    ],
    ids=["wrong-value", "empty", "no-body", "wrong-scope", "json", "file"],
)
async def test_bad_forms_get_an_html_400(
    module_api: httpx.AsyncClient, kwargs: dict[str, Any], status: int
) -> None:
    answer = await issue(
        module_api, subject_id=new_subject(), purpose="newsletter", channel="email"
    )
    response = await module_api.post(path_of(answer["url"]), **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")


async def test_preference_form_records_the_differences(module_api: httpx.AsyncClient) -> None:
    subject = new_subject()
    granted = await grant(module_api, subject, "newsletter", "email")
    answer = await issue(
        module_api, subject_id=subject, purpose="newsletter", channel="email", campaign_id="c9"
    )
    path = path_of(answer["preferences_url"])
    page = await module_api.get(path, params={"after": granted})
    assert re.search(r'value="newsletter\.email" checked', page.text)
    form = {"shown": shown(page), "choice": ["marketing_partners.sms", "profiling.web"]}
    saved = await module_api.post(path, data=form)
    assert saved.status_code == 200, saved.text
    assert "Your choices are saved" in saved.text
    token = saved.headers["ledger-token"]
    events = (await history(module_api, subject, token))[1:]
    assert [(e["type"], e["payload"]["purpose"], e["payload"]["channel"]) for e in events] == [
        ("ConsentWithdrawn", "newsletter", "email"),
        ("ConsentGranted", "marketing_partners", "sms"),
        ("ConsentGranted", "profiling", "web"),
    ]
    assert {e["payload"]["source"]["method"] for e in events} == {"preference_center"}
    assert events[0]["payload"]["campaign_id"] == "c9"
    assert (await decision(module_api, subject, "profiling", "web", token))["allowed"]
    again = await module_api.post(path, data=form)
    assert "Nothing changed" in again.text and "ledger-token" not in again.headers
    bad = await module_api.post(path, data={"choice": "newsletter.sms"})
    assert bad.status_code == 400


async def test_a_stale_preference_page_does_not_undo_an_unsubscribe(
    module_api: httpx.AsyncClient,
) -> None:
    """Open the preference page, unsubscribe through another message, then save the old page
    as it was: nothing is recorded (it would grant the newsletter again), and the page comes
    back with the current choices and says so."""
    subject = new_subject()
    granted = await grant(module_api, subject, "newsletter", "email")
    first = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    other = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    path = path_of(first["preferences_url"])
    opened = await module_api.get(path, params={"after": granted})
    assert re.search(r'value="newsletter\.email" checked', opened.text)
    old_form = {"shown": shown(opened), "choice": "newsletter.email"}

    unsubscribed = await module_api.post(path_of(other["url"]), data=ONE_CLICK)
    token = unsubscribed.headers["ledger-token"]
    await history(module_api, subject, token)

    stale = await module_api.post(path, data=old_form)

    assert stale.status_code == 409, stale.text
    assert "ledger-token" not in stale.headers
    assert "your choices changed since you opened this page" in stale.text
    assert 'role="alert"' in stale.text
    assert not re.search(r'value="newsletter\.email" checked', stale.text)
    assert shown(stale) != shown(opened)
    assert not (await decision(module_api, subject, "newsletter", "email", token))["allowed"]
    types = [e["type"] for e in await history(module_api, subject, token)]
    assert types == ["ConsentGranted", "ConsentWithdrawn"]
    # a form without the digest (a page from before it) is treated as out of date as well
    undated = await module_api.post(path, data={"choice": "newsletter.email"})
    assert undated.status_code == 409
    # the page as shown again saves normally
    fresh = await module_api.post(path, data={"shown": shown(stale), "choice": "newsletter.email"})
    assert fresh.status_code == 200 and "Your choices are saved" in fresh.text
    assert (
        await decision(module_api, subject, "newsletter", "email", fresh.headers["ledger-token"])
    )["allowed"]
