"""A bad `at` (an as-of read) or history `format` against the app in-process: a 422 naming the
field and what is accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.events import rfc3339
from tests.unit.services.api.in_process import PROBLEM, InProcess


@pytest.mark.parametrize(
    ("path", "params", "field", "detail"),
    [
        (
            "/v1/decision",
            {"subject_id": "x", "purpose": "newsletter", "channel": "email", "at": "2026-01-01"},
            "at",
            "RFC 3339",
        ),
        (
            "/v1/decision",
            {"subject_id": "x", "purpose": "newsletter", "channel": "email", "at": "FUTURE"},
            "at",
            "in the future",
        ),
        ("/v1/subjects/x/consent", {"at": "yesterday"}, "at", "RFC 3339"),
        ("/v1/subjects/x/consent", {"at": "FUTURE"}, "at", "in the future"),
        ("/v1/subjects/x/history", {"format": "xml"}, "format", "'xml' is not accepted"),
        ("/v1/subjects/x/history", {"fmt": "csv"}, "fmt", "not a known field"),
        ("/v1/subjects/x/export", {"format": "csv"}, "format", "not a known field"),
        ("/v1/records-of-processing", {"format": "xlsx"}, "format", "'xlsx' is not accepted"),
        ("/v1/records-of-processing", {"at": "2026-13-01T00:00:00Z"}, "at", "RFC 3339"),
        ("/v1/records-of-processing", {"at": "FUTURE"}, "at", "in the future"),
        ("/v1/records-of-processing", {"since": "x"}, "since", "not a known field"),
    ],
)
async def test_bad_at_or_format_names_the_field(
    served: InProcess, path: str, params: dict[str, str], field: str, detail: str
) -> None:
    if params.get("at") == "FUTURE":
        params = {**params, "at": rfc3339(datetime.now(UTC) + timedelta(minutes=1))}
    response = await served.api.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    (error,) = response.json()["errors"]
    assert error["field"] == field and detail in error["detail"]
    if path.endswith("history") and field == "format":
        assert error["accepted"] == ["json", "csv", "avro"]
