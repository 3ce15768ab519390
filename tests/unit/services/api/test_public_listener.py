"""The public-pages listener (security review L5) in-process: a request that arrives on
LEDGER_PUBLIC_PORT is answered only for the unsubscribe and preference pages and /healthz, and
404 for everything else, even with the admin key. Serving both sockets, and the pages' answers,
are in tests/integration/test_public_listener.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import TEST_ADMIN_KEY
from tests.unit.services.api.in_process import PROBLEM, serving

PUBLIC_PORT = 8001

#: what the public port must not serve: the keyed API, the auditor's page, readiness details,
#: the OpenAPI document, metrics (public or not), the receipt keys, unknown paths
NOT_PUBLIC = [
    ("GET", "/v1/purposes"),
    ("GET", "/v1/decision?subject_id=x&purpose=newsletter&channel=email"),
    ("POST", "/v1/subjects/pl-1/consents"),
    ("GET", "/audit/subjects/pl-1"),
    ("GET", "/v1/access-log?subject_id=pl-1"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/metrics"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/"),
    ("GET", "/u/"),
    ("GET", "/u/a/b"),
]


@pytest.fixture
async def public() -> AsyncIterator[httpx.AsyncClient]:
    """A client of LEDGER_PUBLIC_PORT that sends the admin key."""
    async with (
        serving(
            LEDGER_PUBLIC_PORT=str(PUBLIC_PORT),
            LEDGER_PUBLIC_HOST="127.0.0.1",
            LEDGER_METRICS_PUBLIC="true",
        ) as served,
        served.client(TEST_ADMIN_KEY, port=PUBLIC_PORT) as client,
    ):
        yield client


async def test_the_public_port_answers_health_and_the_pages(public: httpx.AsyncClient) -> None:
    assert (await public.get("/healthz")).json() == {"status": "ok"}
    unknown = await public.get("/u/not-a-token")  # the page's own 404, as on the API port
    assert unknown.status_code == 404 and "text/html" in unknown.headers["content-type"]


@pytest.mark.parametrize(("method", "path"), NOT_PUBLIC)
async def test_the_public_port_answers_404_to_everything_else(
    public: httpx.AsyncClient, method: str, path: str
) -> None:
    refused = await public.request(method, path, json={"purpose": "newsletter"})
    assert refused.status_code == 404, refused.text
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["title"] == "Not found"
    assert refused.json()["detail"] == "Not Found"  # as for a path no route matches
