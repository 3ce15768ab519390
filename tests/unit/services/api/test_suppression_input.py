"""A bad GET /v1/suppressions query against the app in-process: a 422 naming the field (and
the channels accepted)."""

from __future__ import annotations

import pytest

from tests.unit.services.api.in_process import InProcess


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("channel=post", "channel"),
        ("channel=web", "channel"),
        ("channel=fax", "channel"),
        ("", "channel"),
        ("channel=email&limit=0", "limit"),
        ("channel=email&limit=10001", "limit"),
        ("channel=email&limit=ten", "limit"),
        ("channel=email&limit=%C2%B2", "limit"),  # '²': str.isdigit, but not int()
        ("channel=email&limit=" + "9" * 5000, "limit"),  # past int()'s digit limit
        ("channel=email&after=zz", "after"),
        ("channel=email&after=", "after"),
        ("channel=email&page=2", "page"),
    ],
)
async def test_bad_queries_name_the_field(served: InProcess, query: str, field: str) -> None:
    response = await served.api.get(f"/v1/suppressions?{query}")
    assert response.status_code == 422, response.text
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == [field]
    if field == "channel" and query:
        assert problem["errors"][0]["accepted"] == ["email", "sms", "phone"]
