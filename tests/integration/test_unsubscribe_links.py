"""Unsubscribe links against the real servers: issue, one-click, repeat, refuse, metric. Link
requests refused before any lookup (bad fields, campaign ids, no public URL) are checked
in-process: tests/unit/services/api/test_unsubscribe_link_input.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.config import Settings
from services.identity import links
from tests.conftest import wait_until
from tests.integration.unsubscribe_support import (
    ONE_CLICK,
    decision,
    grant,
    history,
    issue,
    metric_count,
    new_subject,
    path_of,
)

pytestmark = pytest.mark.integration


async def test_link_answer_has_the_url_and_the_two_header_values(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    subject = new_subject()
    before = datetime.now(UTC)
    answer = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    assert set(answer) == {
        "url",
        "preferences_url",
        "headers",
        "expires_at",
        "preferences_expires_at",
        "link_ids",
    }
    url, preferences_url = answer["url"], answer["preferences_url"]
    assert url.startswith(module_settings.public_base_url + "/u/")
    assert preferences_url.startswith(module_settings.public_base_url + "/p/")
    assert path_of(url).removeprefix("/u/") != path_of(preferences_url).removeprefix("/p/")
    assert answer["headers"] == {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    expires = datetime.fromisoformat(answer["expires_at"])
    assert expires - before >= timedelta(days=module_settings.link_ttl_days) - timedelta(seconds=1)
    # a preference link, which can grant, lives LEDGER_PREFERENCE_LINK_TTL_DAYS (90) only
    ends = datetime.fromisoformat(answer["preferences_expires_at"]) - before
    assert timedelta(days=90) - timedelta(seconds=1) <= ends <= timedelta(days=90)
    keys = module_settings.secrets().links
    for kind, link in ((links.UNSUBSCRIBE, url), (links.PREFERENCES, preferences_url)):
        token = path_of(link)[3:]
        claims = links.open_token(keys, token, datetime.now(UTC), kind=kind)
        assert claims.link_id == answer["link_ids"][kind]
        assert claims.expires_at == datetime.fromisoformat(
            answer["expires_at" if kind == links.UNSUBSCRIBE else "preferences_expires_at"]
        )
    assert subject not in url


async def test_link_by_email(module_api: httpx.AsyncClient) -> None:
    subject = new_subject()
    email = f"{subject}@example.org"
    linked = await module_api.post(
        f"/v1/subjects/{subject}/identifiers", json={"type": "email", "value": email}
    )
    assert linked.status_code == 201, linked.text

    async def projected() -> bool:
        seen = await module_api.get("/v1/subjects/by-identifier/consent", params={"email": email})
        return seen.status_code == 200

    await wait_until(projected, 30, "the identifier to be projected")
    answer = await issue(module_api, email=email.upper(), purpose="newsletter", channel="email")
    assert email not in answer["url"]
    page = await module_api.get(path_of(answer["url"]))
    assert page.status_code == 200


async def test_a_link_for_an_address_nobody_holds_is_a_404(module_api: httpx.AsyncClient) -> None:
    body = {"email": "no@example.org", "purpose": "newsletter", "channel": "email"}
    response = await module_api.post("/v1/unsubscribe-links", json=body)
    assert response.status_code == 404, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["email"]


async def test_one_click_denies_at_once_for_a_reader_with_the_token(
    module_api: httpx.AsyncClient,
) -> None:
    subject = new_subject()
    granted = await grant(module_api, subject, "newsletter", "email")
    assert (await decision(module_api, subject, "newsletter", "email", granted))["allowed"]
    answer = await issue(
        module_api,
        subject_id=subject,
        purpose="newsletter",
        channel="email",
        campaign_id="spring-2026",
    )
    counted = await metric_count(module_api)

    response = await module_api.post(path_of(answer["url"]), data=ONE_CLICK)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "set-cookie" not in response.headers and "location" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    token = response.headers["ledger-token"]
    denied = await decision(module_api, subject, "newsletter", "email", token)
    assert (denied["allowed"], denied["reason"]) == (False, "consent_withdrawn")
    assert await metric_count(module_api) == counted + 1
    events = await history(module_api, subject, token)
    withdrawal = events[-1]["payload"]
    assert withdrawal["type"] == "ConsentWithdrawn"
    assert withdrawal["source"]["method"] == "unsubscribe_link"
    assert withdrawal["actor"]["type"] == "subject"
    assert withdrawal["campaign_id"] == "spring-2026"
    assert (withdrawal["purpose"], withdrawal["channel"]) == ("newsletter", "email")


async def test_repeating_the_post_records_nothing_new(module_api: httpx.AsyncClient) -> None:
    subject = new_subject()
    await grant(module_api, subject, "newsletter", "email")
    answer = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    path = path_of(answer["url"])
    # at once (not yet projected) and again later (projected): both find the first withdrawal
    first, second = [await module_api.post(path, data=ONE_CLICK) for _ in range(2)]
    assert first.status_code == second.status_code == 200
    token = first.headers["ledger-token"]
    assert second.headers["ledger-token"] == token
    await history(module_api, subject, token)
    third = await module_api.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert third.status_code == 200, third.text
    assert third.headers["ledger-token"] == token
    types = [e["type"] for e in await history(module_api, subject, token)]
    assert types == ["ConsentGranted", "ConsentWithdrawn"]


async def test_an_old_link_still_unsubscribes_after_a_new_consent(
    module_api: httpx.AsyncClient,
) -> None:
    subject = new_subject()
    await grant(module_api, subject, "newsletter", "email")
    answer = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    first = await module_api.post(path_of(answer["url"]), data=ONE_CLICK)
    await history(module_api, subject, first.headers["ledger-token"])
    regranted = await grant(module_api, subject, "newsletter", "email")
    await history(module_api, subject, regranted)
    again = await module_api.post(path_of(answer["url"]), data=ONE_CLICK)
    token = again.headers["ledger-token"]
    assert not (await decision(module_api, subject, "newsletter", "email", token))["allowed"]
    types = [e["type"] for e in await history(module_api, subject, token)]
    assert types == ["ConsentGranted", "ConsentWithdrawn", "ConsentGranted", "ConsentWithdrawn"]


async def test_get_changes_nothing(module_api: httpx.AsyncClient) -> None:
    subject = new_subject()
    granted = await grant(module_api, subject, "newsletter", "email")
    answer = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    for url in (answer["url"], answer["preferences_url"]):
        page = await module_api.get(path_of(url))
        assert page.status_code == 200 and "set-cookie" not in page.headers
        assert page.headers["cache-control"] == "no-store"
        head = await module_api.head(path_of(url))
        assert head.status_code == 200
    assert (await decision(module_api, subject, "newsletter", "email", granted))["allowed"]
    assert len(await history(module_api, subject, granted)) == 1


async def test_stop_all_direct_marketing_objects_on_every_channel(
    module_api: httpx.AsyncClient,
) -> None:
    subject = new_subject()
    await grant(module_api, subject, "marketing_partners", "sms")
    answer = await issue(
        module_api, subject_id=subject, purpose="newsletter", channel="email", campaign_id="c7"
    )
    form = {**ONE_CLICK, "scope": "all_direct_marketing"}
    response = await module_api.post(path_of(answer["url"]), data=form)
    assert response.status_code == 200, response.text
    token = response.headers["ledger-token"]
    denied = await decision(module_api, subject, "marketing_partners", "sms", token)
    assert (denied["allowed"], denied["reason"]) == (False, "objected_direct_marketing")
    objection = (await history(module_api, subject, token))[-1]["payload"]
    assert objection["type"] == "DirectMarketingObjected"
    assert (objection["channel"], objection["campaign_id"]) == (None, "c7")


async def test_unusable_links_get_one_page_that_says_nothing(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    subject = new_subject()
    keys = module_settings.secrets().links
    valid = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    token = path_of(valid["url"]).removeprefix("/u/")
    old = datetime.now(UTC) - timedelta(days=module_settings.link_ttl_days + 1)
    expired = links.issue(
        keys,
        kind=links.UNSUBSCRIBE,
        subject_id=subject,
        purpose="newsletter",
        channel="email",
        campaign_id=None,
        now=old,
        ttl=timedelta(days=module_settings.link_ttl_days),
    )
    preferences = path_of(valid["preferences_url"]).removeprefix("/p/")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BA")
    bodies = set()
    for bad in (expired, tampered, "nonsense", "A" * 2000):
        for method in ("GET", "POST"):
            for page in ("u", "p"):
                response = await module_api.request(method, f"/{page}/{bad}", data=ONE_CLICK)
                assert response.status_code == 404, (bad, method, page)
                assert response.headers["content-type"].startswith("text/html")
                assert response.headers["cache-control"] == "no-store"
                assert subject not in response.text
                bodies.add(response.text)
    for method in ("GET", "POST"):  # each kind of token at the other kind's page
        for page, other in (("p", token), ("u", preferences)):
            response = await module_api.request(method, f"/{page}/{other}", data=ONE_CLICK)
            assert response.status_code == 404, (method, page)
            bodies.add(response.text)
    assert len(bodies) == 1
