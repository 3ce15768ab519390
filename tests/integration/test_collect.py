"""A website's banner against the real servers: choices recorded for `device:<id>` with the
site's publishable key from the site's origin, CORS, GPC, the repeat window, the rate limits,
and every refusal recording nothing. The pure rules are table-tested in
tests/unit/services/rules/test_site_collection.py."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from services.config import Settings
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.servers import Servers

pytestmark = pytest.mark.integration

ORIGIN = "https://www.example.com"
PATH = "/v1/collect/consents"
ANALYTICS = "cookies_analytics"
MARKETING = "cookies_marketing"


async def register(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await api.post("/v1/sites", json={"name": "shop", "origins": [ORIGIN], **body})
    assert answer.status_code == 201, answer.text
    site: dict[str, Any] = answer.json()
    return site


def banner(key: str, origin: str | None = ORIGIN, **extra: str) -> dict[str, str]:
    """A banner's headers: the site key, and the Origin a browser adds."""
    headers = {"Authorization": f"Bearer {key}", **extra}
    if origin is not None:
        headers["Origin"] = origin
    return headers


async def events_of(api: httpx.AsyncClient, subject: str, token: str) -> list[dict[str, Any]]:
    answer = await api.get(f"/v1/subjects/{subject}/history", params={"min_token": token})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["events"]
    return found


@pytest.fixture(scope="module")
async def site(module_api: httpx.AsyncClient) -> dict[str, Any]:
    return await register(module_api)


async def test_a_banner_records_each_choice_for_the_device_with_its_evidence(
    module_api: httpx.AsyncClient, site: dict[str, Any]
) -> None:
    body = {
        "choices": {ANALYTICS: True, MARKETING: False},
        "notice_version": "2026-06",
        "page_url": f"{ORIGIN}/shop/item?email=someone@example.com#top",
        "banner_version": "b-3",
        "language": "fi",
    }
    headers = banner(site["key"], **{"User-Agent": "BannerCheck/1", "X-Forwarded-For": "1.2.3.4"})
    answer = await module_api.post(PATH, json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    found = answer.json()
    device = found["device_id"]
    assert str(uuid.UUID(device)) == device
    assert found["subject_id"] == f"device:{device}"
    assert found["choices"] == {ANALYTICS: True, MARKETING: False}

    events = await events_of(module_api, found["subject_id"], found["token"])
    payloads = {e["payload"]["purpose"]: e["payload"] for e in events}
    assert payloads[ANALYTICS]["type"] == "ConsentGranted"
    assert payloads[MARKETING]["type"] == "ConsentWithdrawn"
    for payload in payloads.values():
        assert payload["channel"] == "web" and payload["notice_version"] == "2026-06"
        assert payload["source"] == {
            "method": "banner",
            "system": f"site:{site['site_id']}",
            "collection_point": f"{ORIGIN}/shop/item",
        }
        context = payload["context"]
        assert context["page"] == "banner" and context["page_version"] == "b-3"
        assert context["language"] == "fi" and context["user_agent"] == "BannerCheck/1"

    decision = await module_api.get(
        "/v1/decision",
        params={"subject_id": found["subject_id"], "purpose": ANALYTICS, "channel": "web"},
    )
    assert decision.json()["allowed"] is True
    shown = await module_api.get(PATH, params={"device_id": device}, headers=banner(site["key"]))
    assert shown.status_code == 200, shown.text
    assert shown.json()["choices"] == {ANALYTICS: True, MARKETING: False}


async def test_a_repeat_within_the_window_records_nothing_new(
    module_api: httpx.AsyncClient, site: dict[str, Any]
) -> None:
    device = str(uuid.uuid4())
    body = {"device_id": device, "choices": {ANALYTICS: False}, "notice_version": "2026-06"}
    first = await module_api.post(PATH, json=body, headers=banner(site["key"]))
    again = await module_api.post(PATH, json=body, headers=banner(site["key"]))
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    changed = await module_api.post(
        PATH, json={**body, "choices": {ANALYTICS: True}}, headers=banner(site["key"])
    )
    assert changed.status_code == 201 and "idempotent-replayed" not in changed.headers
    events = await events_of(module_api, f"device:{device}", changed.json()["token"])
    assert [e["payload"]["type"] for e in events] == ["ConsentWithdrawn", "ConsentGranted"]


async def test_a_choice_changed_back_within_the_window_is_recorded(
    module_api: httpx.AsyncClient, site: dict[str, Any]
) -> None:
    """A, B, then A again within the repeat window: the third is a new choice, not a retry of
    the first (the device's latest event is part of the repeat key)."""
    device = str(uuid.uuid4())
    bodies = [{"device_id": device, "choices": {MARKETING: given}} for given in (False, True)]
    answers = [
        await module_api.post(PATH, json=body, headers=banner(site["key"]))
        for body in (*bodies, bodies[0])
    ]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert all("idempotent-replayed" not in a.headers for a in answers)
    # each answer came once applied: the banner's next read already sees it
    shown = await module_api.get(PATH, params={"device_id": device}, headers=banner(site["key"]))
    assert shown.json()["choices"][MARKETING] is False
    events = await events_of(module_api, f"device:{device}", answers[-1].json()["token"])
    assert [e["payload"]["type"] for e in events] == [
        "ConsentWithdrawn",
        "ConsentGranted",
        "ConsentWithdrawn",
    ]


async def test_gpc_never_undoes_the_visitors_own_earlier_grant(
    module_api: httpx.AsyncClient, site: dict[str, Any]
) -> None:
    device = str(uuid.uuid4())
    gpc = banner(site["key"], **{"Sec-GPC": "1"})
    granted = await module_api.post(
        PATH, json={"device_id": device, "choices": {MARKETING: True}}, headers=gpc
    )
    assert granted.status_code == 201
    later = await module_api.post(
        PATH, json={"device_id": device, "choices": {ANALYTICS: True}}, headers=gpc
    )
    assert later.status_code == 201 and later.json()["choices"] == {ANALYTICS: True}
    shown = await module_api.get(PATH, params={"device_id": device}, headers=banner(site["key"]))
    assert shown.json()["choices"] == {ANALYTICS: True, MARKETING: True}


async def test_a_refused_key_from_a_registered_origin_is_readable_by_its_banner(
    module_api: httpx.AsyncClient, site: dict[str, Any]
) -> None:
    wrong = "pk_" + "0" * 16 + "_" + "A" * 43
    answer = await module_api.post(PATH, json={"choices": {ANALYTICS: True}}, headers=banner(wrong))
    assert answer.status_code == 401
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    foreign = await module_api.post(
        PATH,
        json={"choices": {ANALYTICS: True}},
        headers=banner(wrong, origin="https://elsewhere.example"),
    )
    assert foreign.status_code in (401, 403)
    assert "access-control-allow-origin" not in foreign.headers


async def test_gpc_withdraws_the_marketing_purpose_the_request_does_not_choose(
    module_api: httpx.AsyncClient, site: dict[str, Any]
) -> None:
    gpc = banner(site["key"], **{"Sec-GPC": "1"})
    silent = await module_api.post(PATH, json={"choices": {ANALYTICS: True}}, headers=gpc)
    assert silent.status_code == 201, silent.text
    assert silent.json()["choices"] == {ANALYTICS: True, MARKETING: False}
    events = await events_of(module_api, silent.json()["subject_id"], silent.json()["token"])
    methods = {e["payload"]["purpose"]: e["payload"]["source"]["method"] for e in events}
    assert methods == {ANALYTICS: "banner", MARKETING: "gpc"}

    explicit = await module_api.post(PATH, json={"choices": {MARKETING: True}}, headers=gpc)
    assert explicit.json()["choices"] == {MARKETING: True}
    events = await events_of(module_api, explicit.json()["subject_id"], explicit.json()["token"])
    assert [(e["payload"]["type"], e["payload"]["source"]["method"]) for e in events] == [
        ("ConsentGranted", "banner")
    ]

    only_gpc = await module_api.post(PATH, json={"choices": {}}, headers=gpc)
    assert only_gpc.json()["choices"] == {MARKETING: False}
    nothing = await module_api.post(PATH, json={"choices": {}}, headers=banner(site["key"]))
    assert nothing.status_code == 422 and nothing.json()["errors"][0]["field"] == "choices"


async def test_the_preflight_names_the_origin_and_each_header(
    module_api: httpx.AsyncClient, site: dict[str, Any]
) -> None:
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x"}
    answer = await module_api.options(PATH, headers={"Origin": ORIGIN, **ask})
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert answer.headers["access-control-allow-headers"] == "authorization, content-type"
    assert answer.headers["access-control-allow-methods"] == "GET, POST"
    foreign = await module_api.options(PATH, headers={"Origin": "https://evil.example", **ask})
    assert foreign.status_code == 403
    assert not [h for h in foreign.headers if h.startswith("access-control-")]


REFUSALS = [
    ("no origin", {"origin": None}, {}, 403, None),
    ("foreign origin", {"origin": "https://evil.example"}, {}, 403, None),
    ("unknown purpose", {}, {"choices": {ANALYTICS: True, "nope": True}}, 422, "choices.nope"),
    ("not collected", {}, {"choices": {ANALYTICS: True, "newsletter": True}}, 422, None),
    ("not a boolean", {}, {"choices": {ANALYTICS: True, MARKETING: "yes"}}, 422, None),
    (
        "foreign page",
        {},
        {"choices": {ANALYTICS: True}, "page_url": "https://x.example/"},
        422,
        None,
    ),
    ("bad device", {}, {"choices": {ANALYTICS: True}, "device_id": "a@b.example"}, 422, None),
]


@pytest.mark.parametrize(("case", "how", "body", "status", "field"), REFUSALS)
async def test_a_refused_request_records_nothing(
    module_api: httpx.AsyncClient,
    site: dict[str, Any],
    case: str,
    how: dict[str, Any],
    body: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    device = str(uuid.uuid4())
    sent = {"choices": {ANALYTICS: True}, **body}
    sent.setdefault("device_id", device)
    headers = banner(site["key"], how.get("origin", ORIGIN))
    refused = await module_api.post(PATH, json=sent, headers=headers)
    assert refused.status_code == status, (case, refused.text)
    assert refused.headers["content-type"] == "application/problem+json"
    if status == 403:
        assert "access-control-allow-origin" not in refused.headers
    else:
        assert refused.headers["access-control-allow-origin"] == ORIGIN
    if field:
        assert field in [e["field"] for e in refused.json()["errors"]]
    # a valid request of the same device afterwards: only its event is in the log
    valid = await module_api.post(
        PATH, json={"device_id": device, "choices": {MARKETING: True}}, headers=banner(site["key"])
    )
    events = await events_of(module_api, f"device:{device}", valid.json()["token"])
    assert [e["payload"]["purpose"] for e in events] == [MARKETING]


async def test_a_site_key_works_nowhere_else_and_an_api_key_not_here(
    module_api: httpx.AsyncClient, site: dict[str, Any]
) -> None:
    for method, path in [("GET", "/v1/purposes"), ("GET", "/v1/sites"), ("GET", "/readyz")]:
        answer = await module_api.request(method, path, headers=banner(site["key"]))
        assert answer.status_code == 403, (path, answer.text)
    granted = await module_api.post(
        "/v1/subjects/device:x/consents",
        json={"purpose": ANALYTICS, "channel": "web"},
        headers=banner(site["key"]),
    )
    assert granted.status_code == 403
    with_api_key = await module_api.post(
        PATH, json={"choices": {ANALYTICS: True}}, headers={"Origin": ORIGIN}
    )
    assert with_api_key.status_code == 401


async def test_a_revoked_key_is_refused_and_records_nothing(module_api: httpx.AsyncClient) -> None:
    site = await register(module_api)
    device = str(uuid.uuid4())
    body = {"device_id": device, "choices": {ANALYTICS: True}}
    assert (await module_api.post(PATH, json=body, headers=banner(site["key"]))).status_code == 201
    revoked = await module_api.delete(f"/v1/sites/{site['site_id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]

    async def refused() -> bool:
        again = {**body, "choices": {ANALYTICS: False}}
        answer = await module_api.post(PATH, json=again, headers=banner(site["key"]))
        return answer.status_code == 401

    await wait_until(refused, 30, "the revoked site key to be refused")
    state = await module_api.get(PATH, params={"device_id": device}, headers=banner(site["key"]))
    assert state.status_code == 401


async def test_over_the_address_limit_is_429_with_retry_after(real_servers: Servers) -> None:
    settings: Settings = await make_settings(
        real_servers, LEDGER_COLLECT_RATE_PER_ADDRESS_PER_MIN="2"
    )
    async with running_projector(settings), running_api(settings) as api:
        site = await register(api)
        body = {"choices": {ANALYTICS: True}}
        answers = [await api.post(PATH, json=body, headers=banner(site["key"])) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert int(answers[2].headers["retry-after"]) >= 1
    assert answers[2].headers["access-control-allow-origin"] == ORIGIN
