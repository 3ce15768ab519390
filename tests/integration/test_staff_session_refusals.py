"""What the auditor's pages refuse with a staff session, against the real API and PostgreSQL:
a malformed CSRF token, a session that ended or a form of an earlier session (an HTML page with
a way back, never problem+json), a request from another origin, a write route, a key and a
cookie together, a form without Content-Length; the sign-in limit counting only the form's own
posts; a new sign-in ending the browser's earlier session; the retention of ended sessions."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from services.config import Settings
from services.identity.staff_sessions import SESSION_COOKIE, SIGN_IN_COOKIE
from services.proof.retention import run_retention
from tests.conftest import TEST_ADMIN_KEY, make_settings
from tests.integration.access_support import made_key
from tests.integration.test_staff_sessions import (
    Served,
    browser,
    serve,
    sign_in,
    signed_in,
    token_in,
)
from tests.servers import Servers

pytestmark = pytest.mark.integration


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    async for s in serve(settings):
        yield s


async def signed_in_again(client: httpx.AsyncClient) -> str:
    """Sign in from a sign-in form opened before (another tab's) while the browser carries a
    live session; the new home page's CSRF token."""
    async with browser(client) as tab:
        form = await tab.get("/audit/")
    client.cookies.set(SIGN_IN_COOKIE, form.cookies[SIGN_IN_COOKIE])
    posted = await client.post(
        "/audit/sign-in", data={"key": TEST_ADMIN_KEY, "csrf_token": token_in(form)}
    )
    assert posted.status_code == 303, posted.text
    return token_in(await client.get("/audit/"))


def html(answer: httpx.Response) -> bool:
    return answer.headers["content-type"].startswith("text/html")


async def test_a_non_ascii_csrf_token_is_refused_not_a_500(served: Served) -> None:
    async with browser(served.api) as client:
        await signed_in(client)
        for token in ("é", "é" * 64):
            search = await client.post(
                "/audit/search", data={"by": "email", "value": "a@example.com", "csrf_token": token}
            )
            assert search.status_code == 403 and html(search), search.text
            out = await client.post("/audit/sign-out", data={"csrf_token": token})
            assert out.status_code == 403 and html(out), out.text
        assert "Sign out" in (await client.get("/audit/")).text  # still signed in


async def test_an_ended_session_or_an_earlier_form_gets_a_page_with_a_way_back(
    served: Served,
) -> None:
    async with browser(served.api) as client:
        old = await signed_in(client)
        # a second sign-in (another tab): the first tab's form is of an earlier session
        new = await signed_in_again(client)
        assert new != old
        earlier = await client.post(
            "/audit/search", data={"by": "subject_id", "value": "s-1", "csrf_token": old}
        )
        assert earlier.status_code == 403 and html(earlier)
        assert "The form was refused" in earlier.text and 'href="./"' in earlier.text
        assert "Sign out" in earlier.text  # the session itself is still live

        served.clock.now += timedelta(minutes=31)  # idle, then Find
        ended = await client.post(
            "/audit/search", data={"by": "subject_id", "value": "s-1", "csrf_token": new}
        )
        assert ended.status_code == 401 and html(ended)
        assert "Your session has ended" in ended.text and 'href="./"' in ended.text
        assert SESSION_COOKIE not in client.cookies  # and the cookie is deleted

        # signing out with the cookie gone: already signed out, back to the form
        out = await client.post("/audit/sign-out", data={"csrf_token": new})
        assert out.status_code == 303 and out.headers["location"] == "./"


async def test_the_session_is_refused_from_another_origin(served: Served) -> None:
    subject = "s-origin"
    linked = await served.api.post(
        f"/v1/subjects/{subject}/identifiers", json={"type": "email", "value": "o@example.com"}
    )
    assert linked.status_code == 201
    async with browser(served.api) as client:
        await signed_in(client)
        for site in ("same-site", "cross-site"):
            page = await client.get("/audit/", headers={"Sec-Fetch-Site": site})
            assert page.status_code == 403 and html(page), site
            download = await client.get(
                f"/v1/subjects/{subject}/export", headers={"Sec-Fetch-Site": site}
            )
            assert download.status_code == 403, site
            assert download.headers["content-type"] == "application/problem+json"
        for site in ("same-origin", "none"):
            page = await client.get("/audit/", headers={"Sec-Fetch-Site": site})
            assert page.status_code == 200 and "Sign out" in page.text, site


async def test_only_a_bearer_header_presents_a_key(served: Served) -> None:
    _, decide_key = await made_key(served.settings, served.api, "decide", name="crm")
    async with browser(served.api) as client:
        await signed_in(client)
        # an auth proxy's Basic header leaves the session in force
        basic = await client.get("/audit/", headers={"Authorization": "Basic ZHBvOnNlY3JldA=="})
        assert basic.status_code == 200 and "Sign out" in basic.text
        # a key and the cookie together: the key alone is judged
        both = await client.get("/audit/", headers={"Authorization": f"Bearer {decide_key}"})
        assert both.status_code == 403 and "audit" in both.text
        # a write route never accepts the session
        write = await client.post(
            "/v1/subjects/s-2/identifiers", json={"type": "email", "value": "w@example.com"}
        )
        assert write.status_code == 401


async def test_a_sign_in_ends_the_session_the_browser_carried(
    served: Served, db: asyncpg.Connection
) -> None:
    async with browser(served.api) as client:
        await signed_in(client)
        first = client.cookies[SESSION_COOKIE]
        await signed_in_again(client)
        rows = await db.fetch("SELECT end_reason FROM staff_sessions ORDER BY created_at")
        assert [r["end_reason"] for r in rows] == ["signed_out", None]
        client.cookies.set(SESSION_COOKIE, first)
        assert 'name="key"' in (await client.get("/audit/")).text


async def test_a_form_without_content_length_needs_one(served: Served) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"by=subject_id&value=s-1"

    async with browser(served.api) as client:
        await signed_in(client)
        answer = await client.post(
            "/audit/search",
            content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 411, answer.text


async def test_a_search_by_an_unknown_subject_id_finds_nobody(
    served: Served, db: asyncpg.Connection
) -> None:
    async with browser(served.api) as client:
        csrf = await signed_in(client)
        missing = await client.post(
            "/audit/search", data={"by": "subject_id", "value": "s-nobody", "csrf_token": csrf}
        )
        assert missing.status_code == 404 and "No subject found" in missing.text
        assert (
            await db.fetchval("SELECT count(*) FROM access_log WHERE subject_id = 's-nobody'") == 0
        )


async def test_only_the_forms_own_sign_ins_count_and_a_refusal_is_logged_once(
    real_servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    settings = await make_settings(real_servers, LEDGER_STAFF_SIGN_IN_RATE_PER_MIN="3")
    async for s in serve(settings):
        async with browser(s.api) as client:
            await client.get("/audit/")
            for _ in range(5):  # a cross-site auto-post cannot know the form's token
                forged = await client.post("/audit/sign-in", data={"key": "cl_x_" + "y" * 43})
                assert forged.status_code == 403
            for _ in range(3):
                assert (await sign_in(client, "cl_nobody_" + "y" * 43)).status_code == 401
            with caplog.at_level(logging.WARNING, logger="services.web.staff"):
                for _ in range(3):
                    assert (await sign_in(client, TEST_ADMIN_KEY)).status_code == 429
            held = [r for r in caplog.records if "too many attempts" in r.getMessage()]
            assert len(held) == 1
            s.clock.now += timedelta(seconds=20)
            assert (await sign_in(client, TEST_ADMIN_KEY)).status_code == 303


async def test_the_retention_job_deletes_sessions_ended_long_ago(
    served: Served, db: asyncpg.Connection
) -> None:
    settings = served.settings
    now = datetime.now(UTC)
    rows = [  # (hash byte, created, last seen, ended)
        (1, now - timedelta(days=92), now - timedelta(days=92), now - timedelta(days=91)),
        (2, now - timedelta(days=90), now - timedelta(days=89), now - timedelta(days=89)),
        (3, now - timedelta(days=100), now - timedelta(days=100), None),
        (4, now - timedelta(minutes=5), now, None),
    ]
    for byte, created, seen, ended in rows:
        await db.execute(
            "INSERT INTO staff_sessions (session_hash, key_id, created_at, last_seen_at,"
            " ended_at, end_reason, signed_in_from) VALUES ($1, 'testadmin', $2, $3, $4, $5,"
            " '192.0.2.1')",
            bytes([byte]) * 32,
            created,
            seen,
            ended,
            "signed_out" if ended else None,
        )
    assert await run_retention(settings, dry_run=True) == 0
    assert await db.fetchval("SELECT count(*) FROM staff_sessions") == 4
    assert await run_retention(settings) == 0
    kept = await db.fetch("SELECT session_hash FROM staff_sessions ORDER BY session_hash")
    assert [bytes(r["session_hash"])[0] for r in kept] == [2, 4]
