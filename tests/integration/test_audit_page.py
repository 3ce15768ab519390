"""The auditor's page over HTTP (the browser tests drive it in chromium): its headers, an
erased subject, and refusals as HTML pages that never echo an identifier (those refused before
any read are checked in-process: tests/unit/services/api/test_audit_page_input.py)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration


async def test_an_erased_subject_shows_its_erasure_and_the_denials_after_it(
    module_api: httpx.AsyncClient,
) -> None:
    root = "/v1/subjects/audit-erased"
    granted = await module_api.post(
        f"{root}/consents", json={"purpose": "newsletter", "channel": "email"}
    )
    assert granted.status_code == 201, granted.text
    erased = await module_api.post(f"{root}/erasure", json={"ground": "consent_withdrawn"})
    assert erased.status_code == 201, erased.text
    response = await module_api.get(
        "/audit/subjects/audit-erased", params={"min_token": erased.json()["token"]}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    html = response.text
    assert "<strong>Erased</strong>" in html and "SubjectErased" in html
    assert "<code>erased</code>" in html and "<code>consent_given</code>" in html
    assert "Valid." in html


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/audit/subjects/by-identifier?email=ghost@example.com", 404, "Unknown subject"),
        ("/audit/subjects/audit-nobody", 404, "no event of subject audit-nobody"),
    ],
)
async def test_refusals_are_pages(
    module_api: httpx.AsyncClient, path: str, status: int, words: str
) -> None:
    response = await module_api.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert words in response.text
    for secret in ("ada@example.com", "ghost@example.com", "not-an-address"):
        assert secret not in response.text
