"""The catalogue, health and the OpenAPI document, served by the app in-process (readiness,
which reads PostgreSQL, is in tests/integration/test_readiness.py)."""

from __future__ import annotations

from services.api.app import routes
from services.rules.catalogue import load_catalogue
from tests.unit.services.api.in_process import InProcess


async def test_purposes_are_the_catalogue(served: InProcess) -> None:
    answered = (await served.api.get("/v1/purposes")).json()["purposes"]
    catalogue = load_catalogue(served.settings.catalogue_file)
    assert [p["id"] for p in answered] == list(catalogue.ids)
    newsletter = next(p for p in answered if p["id"] == "newsletter")
    assert newsletter["basis"] == "consent" and newsletter["direct_marketing"] is True


async def test_health(served: InProcess) -> None:
    assert (await served.api.get("/healthz")).json() == {"status": "ok"}


async def test_openapi_describes_every_route_and_the_command_bodies(served: InProcess) -> None:
    document = (await served.api.get("/openapi.json")).json()
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
