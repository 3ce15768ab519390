"""The auditor's page in headless chromium, against the real API and projector: a subject's
timeline, its decisions over time, its verification, and a journal row altered in PostgreSQL.

Screenshots go to tests/artifacts/audit-*.png.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import asyncpg
import httpx
import pytest

from tests.browser.test_public_pages import base, check_page
from tests.conftest import ADMIN_HEADERS

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.integration]

EMAIL = "ada.lovelace@example.com"
CHART = "Decisions per purpose and channel over time"


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(
        java_script_enabled=False,
        locale="en-GB",
        viewport={"width": 1400, "height": 900},
        extra_http_headers=ADMIN_HEADERS,  # the auditor's page needs a key; /u/ and /p/ do not
    )
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def post(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(path, json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def build_subject(api: httpx.AsyncClient, subject: str) -> list[dict[str, Any]]:
    """An identifier, a grant, a withdrawal and an objection, in that order."""
    root = f"/v1/subjects/{subject}"
    return [
        await post(api, f"{root}/identifiers", {"type": "email", "value": EMAIL}),
        await post(
            api,
            f"{root}/consents",
            {
                "purpose": "newsletter",
                "channel": "email",
                "method": "form",
                "notice_version": "2023-05-04",
                "source": {"system": "website", "collection_point": "footer-signup"},
            },
        ),
        await post(
            api,
            f"{root}/withdrawals",
            {"purpose": "newsletter", "channel": "email", "reason": "too many messages"},
        ),
        await post(
            api, f"{root}/objections", {"kind": "direct_marketing", "method": "unsubscribe_link"}
        ),
    ]


async def test_the_auditor_sees_timeline_chart_verification_and_tampering(
    api: httpx.AsyncClient, page: Page, db: asyncpg.Connection, artifacts: Path
) -> None:
    from playwright.async_api import expect

    subject = "s-" + uuid.uuid4().hex[:12]
    written = await build_subject(api, subject)
    url = f"{base(api)}/audit/subjects/{subject}"
    response = await page.goto(f"{url}?min_token={written[-1]['token']}")
    assert response is not None and response.status == 200
    await check_page(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Subject {subject}")

    timeline = page.get_by_role("table", name=f"Events of subject {subject}, in log order")
    rows = timeline.locator("tbody tr")
    await expect(rows).to_have_count(4)
    types = ["IdentifierLinked", "ConsentGranted", "ConsentWithdrawn", "DirectMarketingObjected"]
    for row, event_type, event in zip(await rows.all(), types, written, strict=True):
        await expect(row.get_by_role("rowheader")).to_contain_text(event_type)
        await expect(row.get_by_role("rowheader")).to_contain_text(event["event_id"])
    grant_row = rows.nth(1)
    for text in ("form", "website", "footer-signup", "2023-05-04", "subject"):
        await expect(grant_row).to_contain_text(text)
    await expect(rows.nth(0)).to_contain_text("e-mail address linked")
    await expect(rows.nth(2)).to_contain_text("too many messages")

    html = await page.content()
    events = (await api.get(f"/v1/subjects/{subject}/events")).json()["events"]
    link_payload = events[0]["payload"]
    assert EMAIL not in html
    assert link_payload["blind_index"] not in html and link_payload["ciphertext"] not in html
    assert base64.b64decode(link_payload["blind_index"]).hex() not in html

    await expect(page.get_by_role("img", name=CHART)).to_be_visible()
    decisions = page.get_by_role("table", name="Decisions over time, as text")
    newsletter = decisions.locator(
        "tr", has=page.get_by_role("rowheader", name="Newsletter: by e-mail", exact=True)
    )
    await expect(newsletter).to_have_count(4)
    reasons = ["no_consent", "consent_given", "consent_withdrawn", "objected_direct_marketing"]
    for row, reason in zip(await newsletter.all(), reasons, strict=True):
        await expect(row).to_contain_text(reason)
    await expect(newsletter.last).to_contain_text("now")

    status = page.get_by_role("status")
    await expect(status).to_contain_text("Valid.")
    await expect(status).to_contain_text("4 journal entries")
    await page.screenshot(path=artifacts / "audit-subject.png", full_page=True)

    # the links are relative and reach the API's exports and receipts
    async def fetch(name: str) -> httpx.Response:
        href = await page.get_by_role("link", name=name, exact=True).first.get_attribute("href")
        assert href is not None and not href.startswith("/")
        return await api.get(urljoin(page.url, href))

    csv = await fetch("History as CSV")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert (await fetch("History as Avro object container file")).status_code == 200
    exported = await fetch("Access and portability export (JSON, identities decrypted)")
    assert exported.json()["subject_id"] == subject
    receipt = await fetch("kantara receipt of event #2")
    assert receipt.json()["receipt"]["consentReceiptID"] == written[1]["event_id"]

    # alter the withdrawal's stored payload, as someone with database access could
    await db.execute(
        "UPDATE journal SET payload = jsonb_set(payload::jsonb, '{source,collection_point}',"
        " '\"forged\"')::json WHERE event_id = $1",
        uuid.UUID(written[2]["event_id"]),
    )
    await page.reload()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Broken.")
    await expect(alert).to_contain_text("payload_mismatch")
    await expect(alert.get_by_role("link", name="event #3")).to_have_attribute(
        "href", f"#e-{written[2]['event_id']}"
    )
    await expect(rows.nth(2)).to_contain_text("first broken link: payload_mismatch")
    await expect(page.get_by_role("status")).to_have_count(0)
    await page.screenshot(path=artifacts / "audit-broken.png", full_page=True)

    # one bit of the grant's stored record: an earlier link breaks, the page still renders
    await db.execute(
        "UPDATE journal SET record_value = set_byte(record_value, 30,"
        " get_byte(record_value, 30) # 1) WHERE event_id = $1",
        uuid.UUID(written[1]["event_id"]),
    )
    response = await page.reload()
    assert response is not None and response.status == 200
    await expect(alert).to_contain_text("hash_mismatch")
    await expect(alert.get_by_role("link", name="event #2")).to_be_visible()


async def test_by_identifier_and_unknown_subjects(
    api: httpx.AsyncClient, page: Page, artifacts: Path
) -> None:
    from playwright.async_api import expect

    subject = "s-" + uuid.uuid4().hex[:12]
    written = await build_subject(api, subject)
    token = written[-1]["token"]
    response = await page.goto(
        f"{base(api)}/audit/subjects/by-identifier?email={EMAIL}&min_token={token}"
    )
    assert response is not None and response.status == 200
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Subject {subject}")
    href = await page.get_by_role("link", name="History as JSON").get_attribute("href")
    assert href == f"../../v1/subjects/{subject}/history?format=json"
    assert EMAIL not in await page.content()

    response = await page.goto(f"{base(api)}/audit/subjects/s-nobody-{uuid.uuid4().hex[:8]}")
    assert response is not None and response.status == 404
    await check_page(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Unknown subject")
    await page.screenshot(path=artifacts / "audit-unknown.png", full_page=True)

    response = await page.goto(f"{base(api)}/audit/subjects/by-identifier?email=nobody@example.com")
    assert response is not None and response.status == 404
    assert "nobody@example.com" not in await page.content()
