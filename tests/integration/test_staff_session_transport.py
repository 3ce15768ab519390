"""Staff sessions against the real API and PostgreSQL: the cookie over https (Secure, __Host-
names, decided per request), sign-in refused over plain http from another machine, and the key
behind a session read from `api_keys` (revoked in the database, or created after another API
process loaded its keys)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import httpx
import pytest

from services.identity.api_key_store import create_key
from services.identity.staff_sessions import SESSION_COOKIE, SIGN_IN_COOKIE
from tests.conftest import HASH_KEY, TEST_ADMIN_KEY, make_settings, running_api, running_projector
from tests.integration.test_staff_sessions import (
    Clock,
    browser,
    serve,
    sign_in,
    signed_in,
    token_in,
)
from tests.servers import Servers

pytestmark = pytest.mark.integration

#: what a TLS proxy on the API's machine (trusted: LEDGER_FORWARDED_ALLOW_IPS) adds
HTTPS = {"X-Forwarded-Proto": "https"}
#: a client on another machine, as the proxy names it
ELSEWHERE = {"X-Forwarded-For": "203.0.113.7"}


def cookies_set(answer: httpx.Response) -> dict[str, str]:
    """name -> the whole Set-Cookie line, of each cookie the answer sets."""
    return {line.split("=", 1)[0]: line for line in answer.headers.get_list("set-cookie")}


def value_of(line: str) -> str:
    return line.split(";", 1)[0].split("=", 1)[1]


async def test_over_https_the_cookies_are_secure_and_host_prefixed(real_servers: Servers) -> None:
    # an https public URL says nothing about the internal address the staff use
    settings = await make_settings(real_servers, LEDGER_PUBLIC_URL="https://consent.example.com")
    async for s in serve(settings):
        async with browser(s.api) as client:
            form = await client.get("/audit/", headers=HTTPS)
            assert form.status_code == 200
            sign_in_cookie = cookies_set(form)[f"__Host-{SIGN_IN_COOKIE}"]
            for flag in ("Secure", "HttpOnly", "Path=/", "SameSite=strict"):
                assert flag.lower() in sign_in_cookie.lower(), sign_in_cookie
            assert "domain" not in sign_in_cookie.lower()
            posted = await client.post(
                "/audit/sign-in",
                data={"key": TEST_ADMIN_KEY, "csrf_token": token_in(form)},
                headers={**HTTPS, "Cookie": f"__Host-{SIGN_IN_COOKIE}={value_of(sign_in_cookie)}"},
            )
            assert posted.status_code == 303, posted.text
            session = cookies_set(posted)[f"__Host-{SESSION_COOKIE}"]
            for flag in ("Secure", "HttpOnly", "Path=/", "SameSite=strict"):
                assert flag.lower() in session.lower(), session
            carried = {"Cookie": f"__Host-{SESSION_COOKIE}={value_of(session)}"}
            home = await client.get("/audit/", headers={**HTTPS, **carried})
            assert home.status_code == 200 and "Sign out" in home.text
            # the Secure cookie's name is not the plain-http one: over http it is no session
            plain = await client.get("/audit/", headers=carried)
            assert 'name="key"' in plain.text and "Sign out" not in plain.text

        # on the internal plain-http loopback address the sign-in works, without Secure
        async with browser(s.api) as client:
            answer = await sign_in(client, TEST_ADMIN_KEY)
            assert answer.status_code == 303, answer.text
            line = cookies_set(answer)[SESSION_COOKIE]
            assert "secure" not in line.lower()


async def test_sign_in_over_plain_http_from_another_machine_is_refused(
    real_servers: Servers,
) -> None:
    settings = await make_settings(real_servers)  # a loopback public URL
    async for s in serve(settings):
        async with browser(s.api) as client:
            form = await client.get("/audit/", headers=ELSEWHERE)
            assert form.status_code == 403 and "needs https" in form.text
            assert form.headers["content-type"].startswith("text/html")
            assert not form.headers.get_list("set-cookie")
            posted = await client.post(
                "/audit/sign-in", data={"key": TEST_ADMIN_KEY}, headers=ELSEWHERE
            )
            assert posted.status_code == 403 and "needs https" in posted.text
            assert not posted.headers.get_list("set-cookie")

            # the same client through the TLS proxy signs in, and its cookie is Secure
            behind = {**ELSEWHERE, **HTTPS}
            form = await client.get("/audit/", headers=behind)
            doubled = value_of(cookies_set(form)[f"__Host-{SIGN_IN_COOKIE}"])
            posted = await client.post(
                "/audit/sign-in",
                data={"key": TEST_ADMIN_KEY, "csrf_token": token_in(form)},
                headers={**behind, "Cookie": f"__Host-{SIGN_IN_COOKIE}={doubled}"},
            )
            assert posted.status_code == 303
            assert "secure" in cookies_set(posted)[f"__Host-{SESSION_COOKIE}"].lower()


async def test_the_key_is_read_with_the_session_in_every_api_process(
    real_servers: Servers,
) -> None:
    # keys reloaded hourly: each process's cache stays as it loaded it during the test
    settings = await make_settings(real_servers, LEDGER_API_KEY_REFRESH_S="3600")
    clock = Clock()
    async with running_projector(settings), running_api(settings, clock) as other:
        conn = await asyncpg.connect(settings.database_url)
        try:
            # created after the other process loaded its keys
            key, row = await create_key(conn, "dpo", frozenset({"audit"}), HASH_KEY)
            async with running_api(settings, clock) as api, browser(api) as client:
                await signed_in(client, key)
                session = client.cookies[SESSION_COOKIE]
                async with browser(other) as second:
                    second.cookies.set(SESSION_COOKIE, session)
                    home = await second.get("/audit/")
                    assert home.status_code == 200 and "Sign out" in home.text
                    live = await conn.fetchval("SELECT ended_at FROM staff_sessions")
                    assert live is None

                    # revoked in the database, as another API process or a script would
                    await conn.execute(
                        "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1", row.key_id
                    )
                    clock.now += timedelta(seconds=1)
                    page = await client.get("/audit/")
                    assert 'name="key"' in page.text and "Sign out" not in page.text
                    reason = await conn.fetchval("SELECT end_reason FROM staff_sessions")
                    assert reason == "key_revoked"
                    second.cookies.set(SESSION_COOKIE, session)
                    assert 'name="key"' in (await second.get("/audit/")).text
        finally:
            await conn.close()
