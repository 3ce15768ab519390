"""The auditor's page refuses bad input before reading anything, against the app in-process: an
HTML page naming the field that never echoes an identifier."""

from __future__ import annotations

import pytest

from tests.unit.services.api.in_process import InProcess


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/audit/subjects/audit-erased?colour=red", 422, "colour"),
        ("/audit/subjects/ada@example.com", 422, "subject_id"),
        ("/audit/subjects/by-identifier", 422, "email"),
        ("/audit/subjects/by-identifier?email=not-an-address", 422, "email"),
    ],
)
async def test_refusals_are_pages(served: InProcess, path: str, status: int, words: str) -> None:
    response = await served.api.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert words in response.text
    for secret in ("ada@example.com", "ghost@example.com", "not-an-address"):
        assert secret not in response.text
