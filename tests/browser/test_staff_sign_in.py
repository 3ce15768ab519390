"""A DPO's browser on the auditor's pages, in headless chromium against the real API and
projector: sign in with a key, search by e-mail, open the subject, follow the download links,
sign out, and the session refused afterwards.

Screenshots go to tests/artifacts/staff-*.png.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.browser.test_audit_page import EMAIL, build_subject
from tests.browser.test_public_pages import base
from tests.conftest import TEST_ADMIN_KEY

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.integration]


async def check_staff_page(page: Page) -> None:
    """What every audit page owes a reader: a language, one main landmark, one h1; the only
    cookies are the sign-in form's token and the session, both HttpOnly and SameSite=Strict."""
    assert await page.locator("html").get_attribute("lang") == "en"
    assert await page.locator("main").count() == 1
    assert await page.get_by_role("heading", level=1).count() == 1
    for cookie in await page.context.cookies():
        assert cookie["name"] in ("ledger_staff_sign_in", "ledger_staff_session"), cookie
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


async def test_a_dpo_signs_in_finds_a_subject_downloads_and_signs_out(
    api: httpx.AsyncClient, browser_for: Callable[[str], Awaitable[Page]], artifacts: Path
) -> None:
    from playwright.async_api import expect

    subject = "s-" + uuid.uuid4().hex[:12]
    written = await build_subject(api, subject)
    await api.get(f"/v1/subjects/{subject}/consent", params={"min_token": written[-1]["token"]})
    page = await browser_for("en-GB")

    response = await page.goto(f"{base(api)}/audit/")
    assert response is not None and response.status == 200
    await check_staff_page(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    await page.screenshot(path=artifacts / "staff-sign-in.png", full_page=True)
    await page.get_by_label("API key").fill(TEST_ADMIN_KEY)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Requests and search")
    assert page.url == f"{base(api)}/audit/"
    assert TEST_ADMIN_KEY not in await page.content()
    [cookie] = await page.context.cookies()  # the sign-in form's token is gone
    assert cookie["name"] == "ledger_staff_session" and TEST_ADMIN_KEY not in cookie["value"]
    old_session = cookie["value"]
    await check_staff_page(page)
    await page.screenshot(path=artifacts / "staff-home.png", full_page=True)

    await page.get_by_label("Search by").select_option("email")
    await page.get_by_label("E-mail address, phone number or subject id").fill(EMAIL)
    await page.get_by_role("button", name="Find").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Subject {subject}")
    assert page.url == f"{base(api)}/audit/subjects/{subject}"
    assert EMAIL not in page.url and EMAIL not in await page.content()
    await page.screenshot(path=artifacts / "staff-subject.png", full_page=True)

    # the browser follows each download link with its session, no key sent
    for name in ("History as CSV", "Access and portability export (JSON, identities decrypted)"):
        async with page.expect_download() as started:
            await page.get_by_role("link", name=name, exact=True).click()
        download = await started.value
        saved = await download.path()
        assert subject.encode() in await asyncio.to_thread(Path(saved).read_bytes), name
    for name in ("Hash-chain verification (JSON)", "kantara receipt of event #2"):
        async with page.expect_navigation() as navigated:
            await page.get_by_role("link", name=name, exact=True).first.click()
        answer = await navigated.value
        assert answer is not None and answer.status == 200, name
        assert answer.headers["content-type"].startswith("application/json")
        await page.go_back()

    # the subject's page signs out from its header
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert page.url == f"{base(api)}/audit/"
    assert "ledger_staff_session" not in {c["name"] for c in await page.context.cookies()}

    # the server refuses the old session id replayed: the subject's page asks to sign in, a
    # download is refused
    await page.context.add_cookies(
        [{"name": "ledger_staff_session", "value": old_session, "url": base(api)}]
    )
    response = await page.goto(f"{base(api)}/audit/subjects/{subject}")
    assert response is not None and response.status == 200
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    await page.context.add_cookies(
        [{"name": "ledger_staff_session", "value": old_session, "url": base(api)}]
    )
    refused = await page.request.get(f"{base(api)}/v1/subjects/{subject}/export")
    assert refused.status == 401

    # a refused key is marked invalid and described by the notice
    await page.get_by_label("API key").fill("cl_nobody_" + "x" * 43)
    await page.get_by_role("button", name="Sign in").click()
    key_field = page.get_by_label("API key")
    await expect(key_field).to_have_attribute("aria-invalid", "true")
    await expect(key_field).to_have_accessible_description("The key was not accepted.")
