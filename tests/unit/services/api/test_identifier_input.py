"""Bad identifier links and lookups against the app in-process: a problem naming the field,
nothing sent and no data key made (the fake ledger has no database to make one in), and never
the address in the answer. Linking and finding by address are in
tests/integration/test_identifiers.py."""

from __future__ import annotations

from typing import Any

import pytest

from services.ledger.tokens import encode_token
from tests.unit.services.api.in_process import PROBLEM, InProcess


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/decision", {"purpose": "newsletter", "channel": "email"}, "subject_id"),
        (
            "/v1/decision",
            {
                "subject_id": "c",
                "email": "a@example.com",
                "purpose": "newsletter",
                "channel": "email",
            },
            "email",
        ),
        (
            "/v1/decision",
            {"email": "not an address", "purpose": "newsletter", "channel": "email"},
            "email",
        ),
        ("/v1/subjects/cust-1/consent", {"email": "a@example.com"}, "email"),
        ("/v1/subjects/by-identifier/consent", {}, "email"),
        ("/v1/subjects/by-identifier/events", {"phone": "12"}, "phone"),
    ],
)
async def test_bad_lookups_are_problems_naming_the_field(
    served: InProcess, path: str, params: dict[str, str], field: str
) -> None:
    response = await served.api.get(path, params=params)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert field in [e["field"] for e in response.json()["errors"]]
    assert "not an address" not in response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "email"}, "value"),
        ({"type": "fax", "value": "+49301234567"}, "type"),
        ({"type": "email", "value": "ada@"}, "value"),
        ({"type": "phone", "value": "0301234567"}, "value"),
        ({"type": "email", "value": 42}, "value"),
        ({"type": "email", "value": "ada@example.com", "extra": 1}, "extra"),
    ],
)
async def test_bad_links_are_refused_and_append_nothing(
    served: InProcess, body: dict[str, Any], field: str
) -> None:
    response = await served.api.post("/v1/subjects/cust-9/identifiers", json=body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert "ada@" not in response.text
    assert served.fake.publisher.sent == []


async def test_a_repeated_query_parameter_is_refused(served: InProcess) -> None:
    query = "email=bob%2Bnews@example.com&email=ada@example.com&purpose=newsletter&channel=email"
    response = await served.api.get(f"/v1/decision?{query}")
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["email"]
    consent = await served.api.get("/v1/subjects/by-identifier/consent?phone=1&phone=2")
    assert [e["field"] for e in consent.json()["errors"]] == ["phone"]


async def test_a_token_for_a_partition_the_topic_lacks_is_bad_input(served: InProcess) -> None:
    params = {"subject_id": "c", "purpose": "newsletter", "channel": "email"}
    response = await served.api.get(
        "/v1/decision", params={**params, "min_token": encode_token(9999, 1)}
    )
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["min_token"]
