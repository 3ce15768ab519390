"""The preference page against the real servers: what it can grant and how it records it."""

from __future__ import annotations

import hashlib
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
        assert "<a " not in response.text
    types = [e["type"] for e in await history(module_api, subject, done.headers["ledger-token"])]
    assert types == ["ConsentWithdrawn"]


async def test_preference_page_grants_name_the_link_and_keep_the_campaign(
    module_api: httpx.AsyncClient,
) -> None:
    subject = new_subject()
    granted = await grant(module_api, subject, "newsletter", "email")
    answer = await issue(
        module_api, subject_id=subject, purpose="newsletter", channel="email", campaign_id="c11"
    )
    path = path_of(answer["preferences_url"])
    fingerprint = hashlib.sha256(path.removeprefix("/p/").encode()).hexdigest()[:16]
    page = await module_api.get(path, params={"after": granted})
    saved = await module_api.post(
        path, data={"shown": shown(page), "choice": "profiling.web", "object": []}
    )
    assert saved.status_code == 200, saved.text
    events = (await history(module_api, subject, saved.headers["ledger-token"]))[1:]
    assert [e["type"] for e in events] == ["ConsentWithdrawn", "ConsentGranted"]
    assert {e["payload"]["source"]["collection_point"] for e in events} == {
        f"preference_page:{fingerprint}"
    }
    assert {e["payload"]["actor"]["type"] for e in events} == {"subject"}
    assert events[0]["payload"]["campaign_id"] == "c11"


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
