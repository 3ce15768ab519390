"""The OpenAPI document states every route, who may call it and every answer it can give."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from services.api.access import ROUTE_ACCESS
from services.api.app import routes
from services.api.openapi import (
    NEVER_UNAVAILABLE,
    openapi_document,
    public_paths,
    rate_limited_paths,
)
from services.api.route_table import ROUTES
from services.http.route_spec import TwinOf
from services.rules.catalogue import load_catalogue

ROOT = Path(__file__).resolve().parents[4]
CATALOGUE = load_catalogue(ROOT / "services" / "rules" / "purposes.toml")
DOCUMENT = openapi_document(CATALOGUE, ROUTES)
PUBLIC = public_paths(ROUTES)
RATE_LIMITED = rate_limited_paths(ROUTES)
OPERATIONS = [
    (method, path, op) for path, ops in DOCUMENT["paths"].items() for method, op in ops.items()
]
IDS = [f"{method.upper()} {path}" for method, path, _ in OPERATIONS]


def test_every_route_is_an_operation() -> None:
    served = {
        (method.lower(), route.path)
        for route in routes()
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert served == {(method, path) for method, path, _ in OPERATIONS}


def test_a_bearer_key_is_required_unless_an_operation_says_otherwise() -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert schemes["siteKey"]["scheme"] == "bearer" and set(schemes) == {"bearerAuth", "siteKey"}
    assert DOCUMENT["security"] == [{"bearerAuth": []}]
    assert {
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/.well-known/jwks.json",
        "/u/{token}",
        "/p/{token}",
        "/c/{token}",
        "/sdk/consent.js",
        "/sdk/{file}",
        "/audit/",
        "/audit/sign-in",
        "/audit/sign-out",
    } == PUBLIC


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=IDS)
def test_operation_states_who_may_call_it(method: str, path: str, op: dict[str, Any]) -> None:
    responses = op["responses"]
    level = ROUTE_ACCESS[(method.upper(), path)]
    if level == "key-optional":  # /readyz, /audit/: no key needed; a key, checked, shows more
        assert op["security"] == [{}, {"bearerAuth": []}]
        assert "401" in responses and "403" not in responses
    elif path in PUBLIC:
        assert op["security"] == []
        assert "401" not in responses and "403" not in responses
    elif level == "public":  # the banner's CORS preflight: no key, but a foreign origin's 403
        assert op["security"] == [] and "401" not in responses
        assert "application/problem+json" in responses["403"]["content"]
    elif level == "site-key":
        assert op["security"] == [{"siteKey": []}]
        for status in ("401", "403", "429"):
            assert "application/problem+json" in responses[status]["content"]
    else:
        expected = (
            [{"bearerAuth": []}]
            if level == "any-key"
            else [{"bearerAuth": [level]}, {"bearerAuth": ["admin"]}]
            if level != "admin"
            else [{"bearerAuth": ["admin"]}]
        )
        assert op["security"] == expected
        for status in ("401", "403"):
            assert "application/problem+json" in responses[status]["content"]


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("post", "/v1/notices", "notices"),
        ("post", "/v1/requests/{request_id}/complete", "requests"),
        ("post", "/v1/requests/{request_id}/refuse", "requests"),
        ("post", "/v1/requests", "record"),
        ("post", "/v1/subjects/{subject_id}/erasure", "admin"),
    ],
)
def test_the_security_requirement_names_the_scope(method: str, path: str, scope: str) -> None:
    assert {"bearerAuth": [scope]} in DOCUMENT["paths"][path][method]["security"]


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=IDS)
def test_operation_states_its_errors_and_their_media_types(
    method: str, path: str, op: dict[str, Any]
) -> None:
    responses = op["responses"]
    assert "4XX" in responses
    assert ("503" in responses) == (path not in NEVER_UNAVAILABLE)
    # the pages' rate limit, or the limit of refused keys wherever a key is checked
    assert ("429" in responses) == (path in RATE_LIMITED or bool(op["security"]))
    # an HTML form's post answers 303 (the audit pages' sign-in, sign-out and search)
    page = "text/html" in responses["200"]["content"] if "200" in responses else "303" in responses
    for status, answer in responses.items():
        if status in ("204", "303"):
            assert "content" not in answer, "a 204 or a redirect has no body"
            continue
        assert answer["content"], f"{status} states no media type"
        if (path, status) == ("/readyz", "503"):  # without a key: only {"status"}
            assert list(answer["content"]) == ["application/problem+json", "application/json"]
        elif status[0] in "45" and status not in ("401", "403", "429"):
            expected = "text/html" if page else "application/problem+json"
            assert list(answer["content"]) == [expected], status


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=IDS)
def test_a_json_success_has_a_body_schema(method: str, path: str, op: dict[str, Any]) -> None:
    for status, answer in op["responses"].items():
        if status.startswith("2") and "application/json" in answer.get("content", {}):
            if path.endswith("/history"):  # one of several formats, chosen by ?format=
                continue
            assert answer["content"]["application/json"]["schema"], status


def test_problems_share_one_schema() -> None:
    problem = DOCUMENT["components"]["schemas"]["Problem"]
    assert problem["required"] == ["detail", "status", "title", "type"]
    refs = {
        answer["content"]["application/problem+json"]["schema"]["$ref"]
        for _, _, op in OPERATIONS
        for answer in op["responses"].values()
        if "application/problem+json" in answer.get("content", {})
    }
    assert refs == {"#/components/schemas/Problem"}


def test_the_document_leaves_the_declared_operations_unchanged() -> None:
    declared = [
        copy.deepcopy(spec.operation(CATALOGUE) if callable(spec.operation) else spec.operation)
        for spec in ROUTES
        if not isinstance(spec.operation, TwinOf)
    ]
    assert openapi_document(CATALOGUE, ROUTES) == DOCUMENT
    assert declared == [
        spec.operation(CATALOGUE) if callable(spec.operation) else spec.operation
        for spec in ROUTES
        if not isinstance(spec.operation, TwinOf)
    ]
