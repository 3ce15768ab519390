"""The real app (services/api/app.py) served in-process on the fake ledger: its lifespan run,
and httpx clients that talk to it through ASGI, with or without a key, from any address."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette

from services.api.app import create_app
from services.config import Settings
from tests.conftest import ADMIN_HEADERS, TEST_ADMIN_KEY, TEST_SECRETS
from tests.unit.services.api.fake_ledger import FakeLedger

PROBLEM = "application/problem+json"
#: the client address a request comes from unless a test says otherwise
LOOPBACK = "127.0.0.1"


def fake_settings(**overrides: str) -> Settings:
    """The settings a test API starts with (the integration suite's keys and admin key)."""
    return Settings.from_env(
        {"LEDGER_TOPIC_PARTITIONS": "4", "LEDGER_ADMIN_KEY": TEST_ADMIN_KEY}
        | TEST_SECRETS
        | overrides
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def problem_of(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """The body of an application/problem+json answer of `status` and type `kind`."""
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:consent-ledger:problem:{kind}" and body["status"] == status
    return body


@dataclass(slots=True)
class InProcess:
    app: Starlette
    settings: Settings
    fake: FakeLedger
    #: a client sending the admin key, as the integration suite's clients do
    api: httpx.AsyncClient

    def client(
        self, key: str | None = None, *, address: str = LOOPBACK, port: int | None = None
    ) -> httpx.AsyncClient:
        """A client sending `key` (None: no Authorization header) from `address`, to the API's
        port or to `port` (the public-pages listener's)."""
        return client_of(self.app, self.settings, bearer(key) if key else {}, address, port)

    def key(self, *scopes: str, name: str = "crm") -> str:
        """A new key with `scopes`, known to the API at once."""
        return self.fake.keys.add(*scopes, name=name)


def client_of(
    app: Starlette,
    settings: Settings,
    headers: dict[str, str],
    address: str = LOOPBACK,
    port: int | None = None,
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, client=(address, 40000))
    base_url = f"http://127.0.0.1:{port or settings.port}"
    return httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers)


@contextlib.asynccontextmanager
async def serving(**overrides: str) -> AsyncIterator[InProcess]:
    """The app on a fresh fake ledger with `overrides` of the settings, started and stopped."""
    settings = fake_settings(**overrides)
    fake = FakeLedger(settings)
    app = create_app(settings, open_fn=fake.open, keys_fn=fake.open_keys)
    async with (
        app.router.lifespan_context(app),
        client_of(app, settings, ADMIN_HEADERS) as api,
    ):
        yield InProcess(app, settings, fake, api)
