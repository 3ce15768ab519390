"""Staff sessions of the auditor's pages against the real API, projector and PostgreSQL: signing
in and out, the cookie, CSRF refusals, the timeouts (driven through the app's clock), the
sign-in rate limit and a revoked key ending its sessions."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from services.config import Settings
from services.identity.api_key_store import revoke_key
from services.identity.staff_sessions import SESSION_COOKIE, session_hash
from tests.conftest import TEST_ADMIN_KEY, make_settings, running_api, running_projector
from tests.integration.access_support import made_key
from tests.servers import Servers

pytestmark = pytest.mark.integration

EMAIL = "grace.hopper@example.com"
PHONE = "+358401234567"
PHONE_AS_TYPED = "00358 (0)40-123 45 67"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Clock:
    """The app's clock, moved by the test."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Served:
    api: httpx.AsyncClient
    settings: Settings
    clock: Clock


async def serve(settings: Settings) -> AsyncIterator[Served]:
    clock = Clock()
    async with running_projector(settings), running_api(settings, clock) as api:
        yield Served(api, settings, clock)


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    async for s in serve(settings):
        yield s


def browser(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client of the same API that sends no key: only the cookies it is given."""
    return httpx.AsyncClient(base_url=api.base_url, timeout=30)


def token_in(page: httpx.Response) -> str:
    found = TOKEN_RE.search(page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await client.get("/audit/")
    assert form.status_code == 200 and 'name="key"' in form.text
    return await client.post("/audit/sign-in", data={"key": key, "csrf_token": token_in(form)})


async def signed_in(client: httpx.AsyncClient, key: str = TEST_ADMIN_KEY) -> str:
    """Sign in; the home page's CSRF token."""
    answer = await sign_in(client, key)
    assert answer.status_code == 303 and answer.headers["location"] == "./", answer.text
    home = await client.get("/audit/")
    assert home.status_code == 200 and "Requests and search" in home.text
    return token_in(home)


async def test_sign_in_search_downloads_and_sign_out(
    served: Served, db: asyncpg.Connection
) -> None:
    api = served.api
    subject = "s-" + uuid.uuid4().hex[:12]
    linked = await api.post(
        f"/v1/subjects/{subject}/identifiers", json={"type": "email", "value": EMAIL}
    )
    assert linked.status_code == 201
    received = await api.post(
        "/v1/requests",
        json={
            "subject_id": subject,
            "kind": "access",
            "reference": "T-7",
            "occurred_at": (datetime.now(UTC) - timedelta(days=40)).isoformat(),
        },
    )
    assert received.status_code == 201, received.text
    token = received.json()["token"]
    assert (await api.get("/v1/requests", params={"status": "open"})).status_code == 200

    async with browser(api) as client:
        answer = await sign_in(client, TEST_ADMIN_KEY)
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        for flag in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=28800"):
            assert flag.lower() in cookie.lower(), cookie
        assert "secure" not in cookie.lower(), "the public URL is loopback: no Secure flag"
        session_id = client.cookies[SESSION_COOKIE]
        assert TEST_ADMIN_KEY not in answer.text and TEST_ADMIN_KEY not in cookie
        stored = await db.fetch("SELECT session_hash, key_id FROM staff_sessions")
        assert [bytes(r["session_hash"]) for r in stored] == [session_hash(session_id)]
        assert session_id.encode() not in bytes(stored[0]["session_hash"])

        # wait until the projector has the request, then the home page lists it as overdue
        shown = await api.get(f"/v1/requests/{received.json()['request_id']}?min_token={token}")
        assert shown.status_code == 200
        home = await client.get("/audit/")
        assert home.status_code == 200
        assert received.json()["due_on"] in home.text and "overdue" in home.text
        assert f'href="subjects/{subject}"' in home.text and "T-7" in home.text
        assert TEST_ADMIN_KEY not in home.text
        csrf = token_in(home)

        # a search without the session's CSRF token is refused, with it found by e-mail
        refused = await client.post("/audit/search", data={"by": "email", "value": EMAIL})
        assert refused.status_code == 403 and "csrf_token" in refused.text
        forged = {"by": "email", "value": EMAIL, "csrf_token": "x" + csrf[1:]}
        assert (await client.post("/audit/search", data=forged)).status_code == 403
        found = await client.post(
            "/audit/search", data={"by": "email", "value": EMAIL.upper(), "csrf_token": csrf}
        )
        assert found.status_code == 303 and found.headers["location"] == f"subjects/{subject}"
        page = await client.get(f"/audit/subjects/{subject}")
        assert page.status_code == 200 and f"Subject <code>{subject}</code>" in page.text
        assert EMAIL not in page.text
        missing = await client.post(
            "/audit/search", data={"by": "email", "value": "no@example.com", "csrf_token": csrf}
        )
        assert missing.status_code == 404 and "No subject found" in missing.text
        bad = await client.post(
            "/audit/search", data={"by": "name", "value": "x", "csrf_token": csrf}
        )
        assert bad.status_code == 422 and "by" in bad.text

        # the downloads the page links to accept the session
        history = await client.get(f"/v1/subjects/{subject}/history", params={"format": "csv"})
        assert history.status_code == 200 and history.headers["content-type"].startswith("text/csv")
        assert (await client.get(f"/v1/subjects/{subject}/export")).status_code == 200
        assert (await client.get(f"/v1/subjects/{subject}/verify")).status_code == 200
        # ... and no route it does not link to
        assert (await client.get("/v1/requests")).status_code == 401

        reads = await db.fetch(
            "SELECT key_id, route FROM access_log WHERE subject_id = $1 ORDER BY id", subject
        )
        routes = [r["route"] for r in reads if r["key_id"] == "testadmin"]
        for route in ("/audit/", "/audit/search", "/audit/subjects/{subject_id}"):
            assert route in routes, routes
        assert "/v1/subjects/{subject_id}/history" in routes

        # sign-out needs the token too; then the session is refused everywhere
        no = await client.post("/audit/sign-out", data={"csrf_token": "wrong"})
        assert no.status_code == 403
        out = await client.post("/audit/sign-out", data={"csrf_token": csrf})
        assert out.status_code == 303
        client.cookies.set(SESSION_COOKIE, session_id)  # as a stolen copy would
        back = await client.get(f"/audit/subjects/{subject}")
        assert back.status_code == 303 and back.headers["location"] == "../"
        refused_download = await client.get(f"/v1/subjects/{subject}/export")
        assert refused_download.status_code == 401
        client.cookies.set(SESSION_COOKIE, session_id)
        again = await client.get("/audit/")
        assert 'name="key"' in again.text and "session has ended" in again.text
        ended = await db.fetchval("SELECT end_reason FROM staff_sessions")
        assert ended == "signed_out"

    # a bearer key still opens the pages, and a form posted with it needs no session
    page = await api.get(f"/audit/subjects/{subject}")
    assert page.status_code == 200
    assert (await api.get("/audit/")).status_code == 200
    by_id = await api.post("/audit/search", data={"by": "subject_id", "value": subject})
    assert by_id.status_code == 303


async def test_a_search_by_phone_number_in_another_form_finds_the_subject(
    served: Served, db: asyncpg.Connection
) -> None:
    api = served.api
    subject = "s-" + uuid.uuid4().hex[:12]
    linked = await api.post(
        f"/v1/subjects/{subject}/identifiers", json={"type": "phone", "value": PHONE}
    )
    assert linked.status_code == 201, linked.text
    applied = await api.get(
        f"/v1/subjects/{subject}/consent", params={"min_token": linked.json()["token"]}
    )
    assert applied.status_code == 200, applied.text
    key_id, key = await made_key(served.settings, api, "audit", name="dpo")

    async with browser(api) as client:
        csrf = await signed_in(client, key)
        # dialled from abroad, grouped, with the national trunk prefix in brackets
        found = await client.post(
            "/audit/search", data={"by": "phone", "value": PHONE_AS_TYPED, "csrf_token": csrf}
        )
        assert found.status_code == 303 and found.headers["location"] == f"subjects/{subject}"
        page = await client.get(f"/audit/subjects/{subject}")
        assert page.status_code == 200 and f"Subject <code>{subject}</code>" in page.text
        assert PHONE not in page.text and PHONE_AS_TYPED not in page.text
        other = await client.post(
            "/audit/search", data={"by": "phone", "value": "+358 40 765 4321", "csrf_token": csrf}
        )
        assert other.status_code == 404 and "No subject found" in other.text
        not_a_number = await client.post(
            "/audit/search", data={"by": "phone", "value": "040 123 4567", "csrf_token": csrf}
        )
        assert not_a_number.status_code == 422 and "E.164" in not_a_number.text

    reads = await db.fetch(
        "SELECT key_id, key_name, method, route FROM access_log WHERE subject_id = $1 ORDER BY id",
        subject,
    )
    by_the_key = [(r["key_name"], r["method"], r["route"]) for r in reads if r["key_id"] == key_id]
    assert ("dpo", "POST", "/audit/search") in by_the_key, reads
    assert ("dpo", "GET", "/audit/subjects/{subject_id}") in by_the_key, reads


async def test_a_home_page_naming_nobody_is_logged_under_the_key_not_in_the_access_log(
    served: Served, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    key_id, key = await made_key(served.settings, served.api, "audit", name="dpo")
    async with browser(served.api) as client:
        await signed_in(client, key)
        with caplog.at_level(logging.INFO, logger="services.web.staff"):
            home = await client.get("/audit/")
    assert home.status_code == 200 and "Requests and search" in home.text
    assert await db.fetchval("SELECT count(*) FROM access_log") == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "services.web.staff"]
    assert f"staff home page listed no open request (key {key_id})" in lines, lines


async def test_a_forged_sign_in_is_refused(served: Served) -> None:
    async with browser(served.api) as client:
        await client.get("/audit/")
        forged = await client.post(
            "/audit/sign-in", data={"key": TEST_ADMIN_KEY, "csrf_token": "a" * 43}
        )
        assert forged.status_code == 403 and SESSION_COOKIE not in forged.headers.get(
            "set-cookie", ""
        )
        wrong = await sign_in(client, "cl_nobody_" + "x" * 43)
        assert wrong.status_code == 401 and "not accepted" in wrong.text


async def test_idle_and_absolute_timeouts(served: Served, db: asyncpg.Connection) -> None:
    clock = served.clock
    async with browser(served.api) as client:
        await signed_in(client)
        clock.now += timedelta(minutes=29)
        assert (await client.get("/audit/")).text.count("Sign out") == 1
        clock.now += timedelta(minutes=30)  # 30 minutes since the last request
        idle = await client.get("/audit/")
        assert 'name="key"' in idle.text
        assert await db.fetchval("SELECT end_reason FROM staff_sessions") == "idle"

        await signed_in(client)
        for _ in range(16):  # active every 29 minutes: 7 h 44 min
            clock.now += timedelta(minutes=29)
            assert "Sign out" in (await client.get("/audit/")).text
        clock.now += timedelta(minutes=16)  # 8 h after signing in
        assert 'name="key"' in (await client.get("/audit/")).text
        reasons = await db.fetch("SELECT end_reason FROM staff_sessions ORDER BY created_at")
        assert [r["end_reason"] for r in reasons] == ["idle", "absolute"]


async def test_sign_ins_are_limited_per_address(real_servers: Servers) -> None:
    settings = await make_settings(real_servers, LEDGER_STAFF_SIGN_IN_RATE_PER_MIN="3")
    async for s in serve(settings):
        async with browser(s.api) as client:
            for _ in range(3):
                assert (await sign_in(client, "cl_nobody_" + "y" * 43)).status_code == 401
            held = await sign_in(client, TEST_ADMIN_KEY)
            assert held.status_code == 429 and held.headers["retry-after"] == "20"
            assert SESSION_COOKIE not in held.headers.get("set-cookie", "")
            s.clock.now += timedelta(seconds=20)
            assert (await sign_in(client, TEST_ADMIN_KEY)).status_code == 303


async def test_a_revoked_key_ends_its_sessions_at_once(
    served: Served, db: asyncpg.Connection
) -> None:
    kid, key = await made_key(served.settings, served.api, "audit", name="dpo")
    _, decide_key = await made_key(served.settings, served.api, "decide", name="crm")
    async with browser(served.api) as client, browser(served.api) as other:
        lacking = await sign_in(other, decide_key)
        assert lacking.status_code == 403 and "audit" in lacking.text
        await signed_in(client, key)
        assert await revoke_key(db, kid) is not None
        # ended in the transaction that revoked the key: refused before any cache reload
        assert await db.fetchval("SELECT end_reason FROM staff_sessions") == "key_revoked"
        page = await client.get("/audit/")
        assert 'name="key"' in page.text
