"""The catalogue, health, readiness and the OpenAPI document, served by the running API."""

from __future__ import annotations

import httpx
import pytest

from services.api.app import routes
from services.config import Settings
from services.rules.catalogue import load_catalogue

pytestmark = pytest.mark.integration


async def test_purposes_are_the_catalogue(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    served = (await module_api.get("/v1/purposes")).json()["purposes"]
    catalogue = load_catalogue(module_settings.catalogue_file)
    assert [p["id"] for p in served] == list(catalogue.ids)
    newsletter = next(p for p in served if p["id"] == "newsletter")
    assert newsletter["basis"] == "consent" and newsletter["direct_marketing"] is True


async def test_health_and_readiness(module_api: httpx.AsyncClient) -> None:
    assert (await module_api.get("/healthz")).json() == {"status": "ok"}
    ready = await module_api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_openapi_describes_every_route_and_the_command_bodies(
    module_api: httpx.AsyncClient,
) -> None:
    document = (await module_api.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    for route in routes():
        if route.path != "/openapi.json":
            assert route.path in document["paths"], route.path
    consent = document["paths"]["/v1/subjects/{subject_id}/consents"]["post"]
    schema = consent["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["purpose"]
    assert {"purpose", "channel", "expires_at", "notice_version", "source", "method"} <= set(
        schema["properties"]
    )
    assert schema["additionalProperties"] is False
