"""Link lifetimes and revocation against the real API, projector, broker and PostgreSQL
(security review finding M3): a preference link older than its lifetime, and the links issued
before a revocation, an erasure or an unlink, answer the invalid-link page and record nothing,
while a link issued afterwards works."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.config import Settings
from services.identity import links
from tests.integration.unsubscribe_support import (
    ONE_CLICK,
    grant,
    history,
    issue,
    new_subject,
    path_of,
    shown,
)
from tests.link_tokens import version2_token

pytestmark = pytest.mark.integration


async def invalid_page(api: httpx.AsyncClient) -> str:
    """The page any unusable link gets (an altered one here)."""
    response = await api.get("/p/AwJsMQnotatoken")
    assert response.status_code == 404
    return response.text


async def refused_everywhere(
    api: httpx.AsyncClient, answer: dict[str, Any], form: dict[str, Any], *, unsubscribe: bool
) -> None:
    """Both methods of the link's preference page (and, with `unsubscribe`, of its unsubscribe
    page) answer exactly the invalid-link page."""
    expected = await invalid_page(api)
    pages = [(path_of(answer["preferences_url"]), form)]
    if unsubscribe:
        pages.append((path_of(answer["url"]), ONE_CLICK))
    for path, data in pages:
        for method in ("GET", "POST"):
            response = await api.request(method, path, data=data)
            assert response.status_code == 404, (method, path, response.text)
            assert response.headers["content-type"].startswith("text/html")
            assert response.text == expected
            assert "ledger-token" not in response.headers


async def page_form(api: httpx.AsyncClient, answer: dict[str, Any], after: str) -> dict[str, Any]:
    """A form as the link's own page would post it: the newsletter kept, partners' SMS ticked
    (a grant: what a revoked link must never record)."""
    page = await api.get(path_of(answer["preferences_url"]), params={"after": after})
    assert page.status_code == 200, page.text
    return {"shown": shown(page), "choice": ["newsletter.email", "marketing_partners.sms"]}


async def types_after(api: httpx.AsyncClient, subject: str, response: httpx.Response) -> list[str]:
    token = response.headers.get("ledger-token") or response.json()["token"]
    return [e["type"] for e in await history(api, subject, token)]


async def test_a_preference_link_older_than_the_preference_lifetime_is_refused(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    """Preference links sealed for two years, by this release or the one before, stop opening
    once LEDGER_PREFERENCE_LINK_TTL_DAYS has passed since their issue; an unsubscribe link
    sealed as long ago keeps working."""
    subject = new_subject()
    granted = await grant(module_api, subject, "newsletter", "email")
    keys = module_settings.secrets().links
    now = datetime.now(UTC)
    lifetime = timedelta(days=module_settings.preference_link_ttl_days)
    assert lifetime == timedelta(days=90)
    two_years = timedelta(days=730)
    too_old = now - lifetime - timedelta(days=1)
    old_v2 = version2_token(
        keys, links.PREFERENCES, subject_id=subject, issued=too_old, ttl=two_years
    )
    old_v3 = links.issue(
        keys,
        kind=links.PREFERENCES,
        subject_id=subject,
        purpose="newsletter",
        channel="email",
        campaign_id=None,
        now=too_old,
        ttl=two_years,
    )
    recent_v2 = version2_token(
        keys, links.PREFERENCES, subject_id=subject, issued=now - timedelta(days=10), ttl=two_years
    )
    old_unsubscribe = version2_token(
        keys, links.UNSUBSCRIBE, subject_id=subject, issued=now - timedelta(days=400), ttl=two_years
    )
    current = await page_form(module_api, {"preferences_url": f"/p/{recent_v2}"}, granted)
    expected = await invalid_page(module_api)
    for token in (old_v2, old_v3):
        for method in ("GET", "POST"):
            response = await module_api.request(method, f"/p/{token}", data=current)
            assert response.status_code == 404 and response.text == expected

    saved = await module_api.post(f"/p/{recent_v2}", data=current)
    assert saved.status_code == 200, saved.text
    events = (await history(module_api, subject, saved.headers["ledger-token"]))[1:]
    assert [(e["type"], e["payload"]["channel"]) for e in events] == [("ConsentGranted", "sms")]
    # a version 2 link is named by its fingerprint, as before link ids
    assert {e["payload"]["actor"]["id"] for e in events} == {f"link:{links.fingerprint(recent_v2)}"}
    unsubscribed = await module_api.post(f"/u/{old_unsubscribe}", data=ONE_CLICK)
    assert unsubscribed.status_code == 200, unsubscribed.text


async def test_the_revoke_route_revokes_the_earlier_preference_links_only(
    module_api: httpx.AsyncClient,
) -> None:
    subject = new_subject()
    granted = await grant(module_api, subject, "newsletter", "email")
    before = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    form = await page_form(module_api, before, granted)

    revoked = await module_api.post(
        f"/v1/subjects/{subject}/links/revoke",
        json={"reason": "preference link forwarded", "method": "support"},
    )
    assert revoked.status_code == 201, revoked.text
    assert revoked.json()["type"] == "LinksRevoked"
    after = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    assert await types_after(module_api, subject, revoked) == ["ConsentGranted", "LinksRevoked"]

    await refused_everywhere(module_api, before, form, unsubscribe=False)
    form = await page_form(module_api, after, revoked.json()["token"])
    saved = await module_api.post(path_of(after["preferences_url"]), data=form)
    assert saved.status_code == 200, saved.text
    # an unsubscribe link issued before the revocation still withdraws
    unsubscribed = await module_api.post(path_of(before["url"]), data=ONE_CLICK)
    assert unsubscribed.status_code == 200, unsubscribed.text
    events = await history(module_api, subject, unsubscribed.headers["ledger-token"])
    assert [e["type"] for e in events] == [
        "ConsentGranted",
        "LinksRevoked",
        "ConsentGranted",  # the save through the later link
        "ConsentWithdrawn",  # the one-click unsubscribe of the earlier link
    ]
    assert events[1]["payload"]["reason"] == "preference link forwarded"
    assert events[1]["payload"]["actor"]["type"] == "staff"
    assert events[2]["payload"]["actor"]["id"] == f"link:{after['link_ids']['preferences']}"


async def test_erasure_revokes_every_earlier_link(module_api: httpx.AsyncClient) -> None:
    subject = new_subject()
    granted = await grant(module_api, subject, "newsletter", "email")
    before = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    form = await page_form(module_api, before, granted)
    erased = await module_api.post(
        f"/v1/subjects/{subject}/erasure", json={"ground": "consent_withdrawn"}
    )
    assert erased.status_code == 201, erased.text
    assert await types_after(module_api, subject, erased) == ["ConsentGranted", "SubjectErased"]

    await refused_everywhere(module_api, before, form, unsubscribe=True)
    after = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    assert (await module_api.get(path_of(after["preferences_url"]))).status_code == 200
    unsubscribed = await module_api.post(path_of(after["url"]), data=ONE_CLICK)
    assert unsubscribed.status_code == 200, unsubscribed.text
    assert await types_after(module_api, subject, unsubscribed) == [
        "ConsentGranted",
        "SubjectErased",
        "ConsentWithdrawn",
    ]


async def test_unlinking_an_address_revokes_the_preference_links_issued_for_it(
    module_api: httpx.AsyncClient,
) -> None:
    """Unlinking home@ revokes the preference links issued for home@ and those issued by
    subject id (nobody knows where they went); those for work@, and every unsubscribe link,
    keep working."""
    subject = new_subject()
    home, work = f"{subject}@home.example", f"{subject}@work.example"
    for address in (home, work):
        linked = await module_api.post(
            f"/v1/subjects/{subject}/identifiers", json={"type": "email", "value": address}
        )
        assert linked.status_code == 201, linked.text
    granted = await grant(module_api, subject, "newsletter", "email")
    await history(module_api, subject, granted)
    question = {"purpose": "newsletter", "channel": "email"}
    by_home = await issue(module_api, email=home, **question)
    by_work = await issue(module_api, email=work, **question)
    by_id = await issue(module_api, subject_id=subject, **question)
    form = await page_form(module_api, by_home, granted)

    unlinked = await module_api.request(
        "DELETE", f"/v1/subjects/{subject}/identifiers", json={"type": "email", "value": home}
    )
    assert unlinked.status_code == 201, unlinked.text
    await history(module_api, subject, unlinked.json()["token"])

    await refused_everywhere(module_api, by_home, form, unsubscribe=False)
    await refused_everywhere(module_api, by_id, form, unsubscribe=False)
    assert (await module_api.get(path_of(by_work["preferences_url"]))).status_code == 200
    later = await issue(module_api, subject_id=subject, **question)
    saved = await module_api.post(path_of(later["preferences_url"]), data=form)
    assert saved.status_code == 200, saved.text
    unsubscribed = await module_api.post(path_of(by_home["url"]), data=ONE_CLICK)
    assert unsubscribed.status_code == 200, unsubscribed.text
    types = await types_after(module_api, subject, unsubscribed)
    assert types[-3:] == [
        "IdentifierUnlinked",
        "ConsentGranted",  # the save through the link issued after the unlink
        "ConsentWithdrawn",  # the unsubscribe through the link for the unlinked address
    ]
