"""Unsubscribe links against the real servers: issue, one-click, repeat, refuse, the two link
kinds, the preference page, and the metric."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services import links
from services.config import Settings
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
FORM = "application/x-www-form-urlencoded"
COUNT_RE = re.compile(r"^ledger_unsubscribe_to_projection_seconds_count (\d+)$", re.MULTILINE)
SHOWN_RE = re.compile(r'name="shown" value="([0-9a-f]{64})"')


def new_subject() -> str:
    return "s-" + uuid.uuid4().hex[:12]


async def grant(api: httpx.AsyncClient, subject: str, purpose: str, channel: str) -> str:
    body = {"purpose": purpose, "channel": channel, "method": "double_opt_in"}
    response = await api.post(f"/v1/subjects/{subject}/consents", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def issue(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await api.post("/v1/unsubscribe-links", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def path_of(url: str) -> str:
    return urlsplit(url).path


def shown(page: httpx.Response) -> str:
    """The digest of the choices a preference page shows, which its form sends back."""
    found = SHOWN_RE.search(page.text)
    assert found, page.text
    return found.group(1)


async def decision(
    api: httpx.AsyncClient, subject: str, purpose: str, channel: str, token: str
) -> dict[str, Any]:
    params = {"subject_id": subject, "purpose": purpose, "channel": channel, "min_token": token}
    response = await api.get("/v1/decision", params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def history(api: httpx.AsyncClient, subject: str, token: str) -> list[dict[str, Any]]:
    response = await api.get(f"/v1/subjects/{subject}/events", params={"min_token": token})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def metric_count(api: httpx.AsyncClient) -> int:
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = COUNT_RE.search(response.text)
    assert found, response.text
    return int(found.group(1))


async def test_link_answer_has_the_url_and_the_two_header_values(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    subject = new_subject()
    before = datetime.now(UTC)
    answer = await issue(module_api, subject_id=subject, purpose="newsletter", channel="email")
    assert set(answer) == {"url", "preferences_url", "headers", "expires_at"}
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


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"email": "no@example.org", "purpose": "newsletter", "channel": "email"}, 404, "email"),
        ({"subject_id": "s1", "email": "a@example.org", "purpose": "newsletter"}, 422, "email"),
        ({"subject_id": "s1", "purpose": "customer_relationship", "channel": "email"}, 422, None),
        ({"subject_id": "s1", "purpose": "newsletter", "channel": "sms"}, 422, "channel"),
        ({"subject_id": "s1", "purpose": "newsletter"}, 422, "channel"),
        ({"purpose": "newsletter", "channel": "email"}, 422, "subject_id"),
        ({"subject_id": "s1", "purpose": "newsletter", "channel": "email", "x": 1}, 422, "x"),
        (
            {
                "subject_id": "s1",
                "purpose": "newsletter",
                "channel": "email",
                "campaign_id": "to a@example.org",
            },
            422,
            "campaign_id",
        ),
    ],
    ids=["unknown-email", "both", "not-marketing", "wrong-channel", "no-channel", "nobody",
         "unknown-field", "email-in-campaign"],
)  # fmt: skip
async def test_link_requests_that_are_refused(
    module_api: httpx.AsyncClient, body: dict[str, Any], status: int, field: str | None
) -> None:
    response = await module_api.post("/v1/unsubscribe-links", json=body)
    assert response.status_code == status, response.text
    fields = [e["field"] for e in response.json().get("errors", [])]
    assert (field or "purpose") in fields


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


async def test_a_campaign_id_too_long_for_the_token_is_a_422(
    module_api: httpx.AsyncClient,
) -> None:
    body = {"subject_id": new_subject(), "purpose": "newsletter", "channel": "email"}
    emoji = "\N{GRINNING FACE}" * 70  # 70 characters, 280 bytes of UTF-8
    response = await module_api.post("/v1/unsubscribe-links", json={**body, "campaign_id": emoji})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["campaign_id"]
    assert "255 bytes" in response.text
    fits = "\N{GRINNING FACE}" * 63  # 252 bytes
    assert (
        await module_api.post("/v1/unsubscribe-links", json={**body, "campaign_id": fits})
    ).status_code == 200


#: any text, mostly multi-byte text near the 100-character limit, and lone surrogates
CAMPAIGN_IDS = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=120),
    st.text(st.characters(min_codepoint=0x800, exclude_categories=()), min_size=60, max_size=101),
    st.text(st.characters(categories=["Cs", "Ll"]), min_size=1, max_size=20),
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(campaign_id=CAMPAIGN_IDS)
@example(campaign_id="\N{GRINNING FACE}" * 70)
@example(campaign_id="spring\ud800")
async def test_any_campaign_id_gives_a_link_or_a_422(
    module_api: httpx.AsyncClient, campaign_id: str
) -> None:
    body = {
        "subject_id": "s-fuzz",
        "purpose": "newsletter",
        "channel": "email",
        "campaign_id": campaign_id,
    }
    response = await module_api.post(
        "/v1/unsubscribe-links",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code in (200, 422), (campaign_id, response.text)
    if response.status_code == 422:
        assert [e["field"] for e in response.json()["errors"]] == ["campaign_id"]
