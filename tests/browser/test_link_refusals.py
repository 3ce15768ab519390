"""The pages a person sees when a link is revoked or the pages are rate-limited, in headless
chromium against the real API and projector (security review findings M3, L1): each is a page
like the others, not a JSON document. Screenshots go to tests/artifacts/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest

from services.config import Settings
from tests.browser.test_public_pages import base, check_page, link
from tests.conftest import make_settings, running_api, running_projector
from tests.servers import Servers

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PER_ADDRESS = 2


@pytest.fixture(scope="module")
async def limited_api(real_servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings: Settings = await make_settings(
        real_servers, LEDGER_PUBLIC_RATE_PER_MIN=str(PER_ADDRESS)
    )
    async with running_projector(settings), running_api(settings) as client:
        yield client


async def test_a_revoked_preference_link_shows_the_invalid_link_page(
    limited_api: httpx.AsyncClient, browser: Browser, artifacts: Path
) -> None:
    from playwright.async_api import expect

    answer = await link(limited_api, "s-revoked-page")
    revoked = await limited_api.post("/v1/subjects/s-revoked-page/links/revoke", json={})
    assert revoked.status_code == 201, revoked.text
    settled = await limited_api.get(
        "/v1/subjects/s-revoked-page/events", params={"min_token": revoked.json()["token"]}
    )
    assert settled.status_code == 200
    context = await browser.new_context(
        java_script_enabled=False, extra_http_headers={"X-Forwarded-For": "192.0.2.10"}
    )
    try:
        page = await context.new_page()
        response = await page.goto(base(limited_api) + urlsplit(answer["preferences_url"]).path)
        assert response is not None and response.status == 404
        await check_page(page)
        await expect(page.get_by_role("heading", level=1)).to_have_text("This link cannot be used")
        assert await page.get_by_role("button").count() == 0
        await page.screenshot(path=artifacts / "link-revoked.png", full_page=True)
    finally:
        await context.close()


async def test_the_rate_limit_shows_a_page_that_says_to_wait(
    limited_api: httpx.AsyncClient, browser: Browser, artifacts: Path
) -> None:
    from playwright.async_api import expect

    answer = await link(limited_api, "s-limited-page")
    url = base(limited_api) + urlsplit(answer["url"]).path
    context = await browser.new_context(
        java_script_enabled=False, extra_http_headers={"X-Forwarded-For": "2001:db8:429::1"}
    )
    try:
        page = await context.new_page()
        statuses = []
        for _ in range(PER_ADDRESS + 1):
            response = await page.goto(url)
            assert response is not None
            statuses.append(response.status)
        assert statuses == [200] * PER_ADDRESS + [429]
        assert response is not None
        headers = await response.all_headers()
        assert headers["content-type"].startswith("text/html")
        assert int(headers["retry-after"]) >= 1 and headers["cache-control"] == "no-store"
        await check_page(page)
        await expect(page.get_by_role("heading", level=1)).to_have_text("Please wait a moment")
        await expect(page.locator("main")).to_contain_text("Nothing was changed")
        await page.screenshot(path=artifacts / "rate-limited.png", full_page=True)
    finally:
        await context.close()
