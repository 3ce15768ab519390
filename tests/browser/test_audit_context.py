"""The context a page captured, on the auditor's page in headless chromium: a person
unsubscribes with the page's own button, the auditor sees the network, the browser, the page
and its version; after erasure the network and browser read as erased.

Screenshots go to tests/artifacts/audit-context-*.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.browser.test_public_pages import base
from tests.conftest import ADMIN_HEADERS
from tests.integration.unsubscribe_support import grant, issue, new_subject, path_of

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(
        java_script_enabled=False,
        locale="en-GB",
        viewport={"width": 1400, "height": 900},
        extra_http_headers=ADMIN_HEADERS,  # the auditor's page needs a key; /u/ does not
    )
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def test_the_auditor_sees_what_the_unsubscribe_page_captured(
    api: httpx.AsyncClient, page: Page, artifacts: Path
) -> None:
    from playwright.async_api import expect

    subject = new_subject()
    await grant(api, subject, "newsletter", "email")
    link = await issue(api, subject_id=subject, purpose="newsletter", channel="email")
    await page.goto(base(api) + path_of(link["url"]))
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.get_by_role("button", name="Unsubscribe").click()
    answer = await posted.value
    assert answer.status == 200
    token = await answer.header_value("ledger-token")
    sent_agent = (await answer.request.all_headers())["user-agent"]

    response = await page.goto(f"{base(api)}/audit/subjects/{subject}?min_token={token}")
    assert response is not None and response.status == 200
    timeline = page.get_by_role("table", name=f"Events of subject {subject}, in log order")
    withdrawal = timeline.locator("tbody tr").nth(1)
    await expect(withdrawal).to_contain_text("ConsentWithdrawn")
    for text in (
        "context: client network",
        "127.0.0.0/24",
        "context: page",
        "unsubscribe",
        "context: page version",
        "context: one-click POST",
        "context: captured by the ledger",
    ):
        await expect(withdrawal).to_contain_text(text)
    await expect(withdrawal).to_contain_text(sent_agent)
    await expect(withdrawal).not_to_contain_text("127.0.0.1")
    await page.screenshot(path=artifacts / "audit-context.png", full_page=True)

    erased = await api.post(f"/v1/subjects/{subject}/erasure", json={"ground": "objection"})
    assert erased.status_code == 201, erased.text
    await page.goto(f"{base(api)}/audit/subjects/{subject}?min_token={erased.json()['token']}")
    withdrawal = page.get_by_role("table", name=f"Events of subject {subject}, in log order")
    row = withdrawal.locator("tbody tr").nth(1)
    await expect(row).to_contain_text("erased (the subject's key is destroyed)")
    await expect(row).not_to_contain_text("127.0.0.0/24")
    await expect(row).not_to_contain_text(sent_agent)
    await page.screenshot(path=artifacts / "audit-context-erased.png", full_page=True)
