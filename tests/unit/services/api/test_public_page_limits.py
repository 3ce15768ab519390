"""The public pages' limit per client address against the app in-process (security review
finding L1): an IPv6 client is limited per /64, the 429 is an HTML page with the pages'
headers, and the API routes are not limited. What the limits let through and record is in
tests/integration/test_public_page_limits.py."""

from __future__ import annotations

import httpx

from services.web.page_responses import HEADERS
from tests.unit.services.api.in_process import serving

PER_ADDRESS = 3


def check_page_429(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("text/html")
    for name, value in HEADERS.items():
        assert response.headers[name] == value, name
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert "<h1>Please wait a moment</h1>" in response.text
    assert "Nothing was changed" in response.text
    assert "ledger-token" not in response.headers


async def test_the_429_is_the_pages_html_and_an_ipv6_client_is_limited_per_64() -> None:
    prefix = "2001:db8:4a1:7"
    async with serving(LEDGER_PUBLIC_RATE_PER_MIN=str(PER_ADDRESS)) as served:
        walk = []
        for host in range(1, PER_ADDRESS + 2):
            async with served.client(address=f"{prefix}::{host:x}") as anonymous:
                walk.append(await anonymous.get("/u/no-token"))
        assert [w.status_code for w in walk] == [404] * PER_ADDRESS + [429]
        check_page_429(walk[-1])
        async with served.client(address=f"{prefix}:ffff::1") as same_64:
            check_page_429(await same_64.post("/p/no-token"))
        async with served.client(address=f"{prefix[:-1]}8::1") as neighbour:
            assert (await neighbour.get("/u/no-token")).status_code == 404
        # the API routes are not limited
        purposes = [(await served.api.get("/v1/purposes")).status_code for _ in range(5)]
        assert purposes == [200] * 5
