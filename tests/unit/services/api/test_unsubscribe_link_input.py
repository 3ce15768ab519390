"""Unsubscribe-link requests refused before any lookup, against the app in-process: bad
fields, campaign ids too long for the token (any text gives a link or a 422 naming
`campaign_id`), and no links without a public URL on a host nobody reaches (security review
L6). Issuing and using links is in tests/integration/test_unsubscribe_links.py."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.properties import examples
from tests.unit.services.api.in_process import InProcess, serving


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
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
    ids=["both", "not-marketing", "wrong-channel", "no-channel", "nobody",
         "unknown-field", "email-in-campaign"],
)  # fmt: skip
async def test_link_requests_that_are_refused(
    served: InProcess, body: dict[str, Any], status: int, field: str | None
) -> None:
    response = await served.api.post("/v1/unsubscribe-links", json=body)
    assert response.status_code == status, response.text
    fields = [e["field"] for e in response.json().get("errors", [])]
    assert (field or "purpose") in fields


async def test_a_campaign_id_too_long_for_the_token_is_a_422(
    served: InProcess,
) -> None:
    body = {"subject_id": "s-campaign", "purpose": "newsletter", "channel": "email"}
    emoji = "\N{GRINNING FACE}" * 70  # 70 characters, 280 bytes of UTF-8
    response = await served.api.post("/v1/unsubscribe-links", json={**body, "campaign_id": emoji})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["campaign_id"]
    assert "255 bytes" in response.text
    fits = "\N{GRINNING FACE}" * 63  # 252 bytes
    assert (
        await served.api.post("/v1/unsubscribe-links", json={**body, "campaign_id": fits})
    ).status_code == 200


#: any text, mostly multi-byte text near the 100-character limit, and lone surrogates
CAMPAIGN_IDS = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=120),
    st.text(st.characters(min_codepoint=0x800, exclude_categories=()), min_size=60, max_size=101),
    st.text(st.characters(categories=["Cs", "Ll"]), min_size=1, max_size=20),
)


@settings(
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(campaign_id=CAMPAIGN_IDS)
@example(campaign_id="\N{GRINNING FACE}" * 70)
@example(campaign_id="spring\ud800")
async def test_any_campaign_id_gives_a_link_or_a_422(served: InProcess, campaign_id: str) -> None:
    body = {
        "subject_id": "s-fuzz",
        "purpose": "newsletter",
        "channel": "email",
        "campaign_id": campaign_id,
    }
    response = await served.api.post(
        "/v1/unsubscribe-links",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code in (200, 422), (campaign_id, response.text)
    if response.status_code == 422:
        assert [e["field"] for e in response.json()["errors"]] == ["campaign_id"]


@pytest.mark.parametrize(
    ("overrides", "issued"),
    [
        ({"LEDGER_HOST": "0.0.0.0"}, False),
        ({"LEDGER_HOST": "consent.internal"}, False),
        ({"LEDGER_HOST": "0.0.0.0", "LEDGER_PUBLIC_URL": "https://consent.example.com"}, True),
        ({"LEDGER_HOST": "localhost"}, True),
    ],
    ids=["image-host", "host-name", "public-url-set", "loopback"],
)
async def test_links_are_refused_without_a_public_url_on_a_host_nobody_reaches(
    caplog: pytest.LogCaptureFixture,
    overrides: dict[str, str],
    issued: bool,
) -> None:
    """Security review finding L6: with LEDGER_PUBLIC_URL unset, links would point at
    http://0.0.0.0:8000 (plain http, unreachable) and one-click unsubscribes would silently
    fail; the route refuses and the API says so when it starts."""
    with caplog.at_level(logging.WARNING, logger="services.api.app"):
        async with serving(**overrides) as served:
            base_url = served.settings.public_base_url
            response = await served.api.post(
                "/v1/unsubscribe-links",
                json={"subject_id": "s-l6", "purpose": "newsletter", "channel": "email"},
            )
    warned = [r.getMessage() for r in caplog.records if "LEDGER_PUBLIC_URL" in r.getMessage()]
    if issued:
        assert response.status_code == 200, response.text
        assert response.json()["url"].startswith(base_url + "/u/")
        assert warned == []
        return
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:consent-ledger:problem:public-url-not-set"
    assert (
        "LEDGER_PUBLIC_URL" in problem["detail"] and overrides["LEDGER_HOST"] in problem["detail"]
    )
    assert len(warned) == 1 and "POST /v1/unsubscribe-links is refused" in warned[0]
