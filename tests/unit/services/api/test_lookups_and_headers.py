"""Identifier lookups in a POST body take their fields from the body only and need the scopes of
their GET routes; every /v1 answer is no-store; the pages forbid framing; no route redirects on
a trailing slash. Against the app in-process; the answers that look an address up in
PostgreSQL are in tests/integration/test_lookups_and_headers.py."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.events import rfc3339
from services.identity.api_keys import AUDIT, DECIDE
from tests.unit.services.api.in_process import InProcess, bearer

EMAIL = "ada.lookup@example.com"
LOOKUP = {"email": EMAIL}


async def test_a_post_lookup_takes_its_fields_from_the_body_only(served: InProcess) -> None:
    in_url = await served.api.post(
        "/v1/decision", params={"email": EMAIL}, json={"purpose": "newsletter", "channel": "email"}
    )
    assert in_url.status_code == 400, in_url.text
    assert [e["field"] for e in in_url.json()["errors"]] == ["email"]
    typed = await served.api.post(
        "/v1/subjects/by-identifier/events", json={"email": EMAIL, "limit": 10}
    )
    assert typed.status_code == 422, typed.text
    assert [e["field"] for e in typed.json()["errors"]] == ["limit"]
    not_json = await served.api.post(
        "/v1/decision",
        content=b"email=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert not_json.status_code == 415


async def test_post_twins_need_the_scopes_of_their_get_routes(served: InProcess) -> None:
    decide = bearer(served.key(DECIDE, name="newsletter-tool"))
    for path in ("/v1/subjects/by-identifier/export", "/audit/subjects/by-identifier"):
        assert (await served.api.get(path, params=LOOKUP, headers=decide)).status_code == 403
        assert (await served.api.post(path, json=LOOKUP, headers=decide)).status_code == 403
    live = {"email": EMAIL, "purpose": "newsletter", "channel": "email"}
    as_of = {**live, "at": rfc3339(datetime.now(UTC))}
    refused = await served.api.post("/v1/decision", json=as_of, headers=decide)
    assert refused.status_code == 403, refused.text
    assert 'scope="audit"' in refused.headers["www-authenticate"]
    # an audit-only key may ask what was known (`at`: tests/integration), but not decide live
    auditor = bearer(served.key(AUDIT, name="auditor"))
    assert (await served.api.get("/v1/decision", params=live, headers=auditor)).status_code == 403
    assert (await served.api.post("/v1/decision", json=live, headers=auditor)).status_code == 403


async def test_a_decide_only_key_that_names_the_subject_id_is_shown_it(served: InProcess) -> None:
    """A caller that names the subject id already knows it: only a lookup by address hides it
    from a decide-only key (tests/integration/test_lookups_and_headers.py)."""
    granted = await served.api.post("/v1/subjects/s-1/consents", json={"purpose": "newsletter"})
    fields = {"subject_id": "s-1", "purpose": "newsletter", "channel": "email"}
    decide = bearer(served.key(DECIDE, name="newsletter-tool"))
    for answer in (
        await served.api.get("/v1/decision", params=fields, headers=decide),
        await served.api.post("/v1/decision", json=fields, headers=decide),
    ):
        assert answer.status_code == 200, answer.text
        assert answer.json()["subject_id"] == "s-1"
        assert answer.json()["evidence"] == [granted.json()["event_id"]]


async def test_every_v1_answer_is_no_store(served: InProcess) -> None:
    answers = [
        await served.api.get("/v1/purposes"),
        await served.api.get("/v1/decision"),  # 422
        await served.api.get("/v1/nowhere"),  # 404
        await served.api.get("/v1/purposes", headers={"Authorization": "Bearer nope"}),  # 401
        await served.api.post("/v1/decision", json={"subject_id": "s-1"}),  # 422
        await served.api.post("/v1/subjects/s-1/withdrawals", json={"purpose": "research"}),
        # answered by the request limits before anything else: no-store is outside them
        await served.api.get("/v1/decision", params={"subject_id": "a" * 9000}),  # 414
        await served.api.get("/v1/purposes", headers={"x-filler": "v" * 17_000}),  # 431
    ]
    assert [a.status_code for a in answers] == [200, 422, 404, 401, 422, 201, 414, 431]
    for answer in answers:
        assert answer.headers.get_list("cache-control") == ["no-store"], answer.request.url


async def test_pages_forbid_framing_and_no_route_redirects_on_a_trailing_slash(
    served: InProcess,
) -> None:
    missing = await served.api.get("/u/not-a-token")
    assert missing.status_code == 404 and missing.headers["x-frame-options"] == "DENY"
    for path in ("/u/some-token/", "/v1/purposes/", "/v1/subjects/s-1/consent/"):
        answer = await served.api.get(path, follow_redirects=False)
        assert answer.status_code == 404, path
        assert "location" not in answer.headers
