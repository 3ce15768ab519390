"""A bad privacy notice or receipt request against the app in-process: a 422 naming each field,
and nothing sent. Publishing and receipts are in tests/integration/test_notices_receipts.py."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from tests.unit.services.api.in_process import InProcess

EVENT_ID = "00000000-0000-4000-8000-000000000001"


async def test_a_bad_notice_names_its_fields(served: InProcess) -> None:
    text = "Privacy notice 2023-05-04"
    notice = {
        "version": "has spaces",
        "effective_from": datetime(2023, 5, 4, tzinfo=UTC).isoformat().replace("+00:00", "Z"),
        "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "url": "https://example.com/privacy/2023-05-04",
        "material": "no",
        "purposes": ["newsletter"],
        "language": "fi",
    }
    bad = await served.api.post("/v1/notices", json=notice)
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"version", "material"}
    assert served.fake.publisher.sent == []


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/receipts/not-a-uuid", "event_id"),
        (f"/v1/receipts/{EVENT_ID}?format=pdf", "format"),
        (f"/v1/receipts/{EVENT_ID}?colour=red", "colour"),
    ],
)
async def test_a_bad_receipt_request_names_the_field(
    served: InProcess, path: str, field: str
) -> None:
    bad = await served.api.get(path)
    assert bad.status_code == 422, path
    assert field in {e["field"] for e in bad.json()["errors"]}
