"""The OpenAPI document of the route table (services/api/route_table.py): each route's operation, as
declared with its handler, completed with what every route shares.

Design: docs/developers/design/http-layer.md
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Final

from services.api.openapi_responses import OPENAPI_DOCUMENT
from services.api.read import HEALTHZ_PATH
from services.api.receipts import JWKS_PATH
from services.http.openapi_parts import HTML, HTML_PAGE, PROBLEM, PROBLEM_SCHEMA
from services.http.problems import PROBLEM_JSON
from services.http.route_spec import (
    ANY_KEY,
    KEY_OPTIONAL,
    PUBLIC,
    SITE_KEY,
    TOKEN_PAGE,
    RouteSpec,
    TwinOf,
)
from services.identity.api_keys import ADMIN
from services.rules.catalogue import Catalogue
from services.web import consent_script, staff

PATH: Final = "/openapi.json"
OPERATION: Final[dict[str, Any]] = {
    "summary": "This document",
    "responses": {"200": OPENAPI_DOCUMENT},
}

#: access levels that never look at a key
NO_KEY_LEVELS: Final = frozenset({PUBLIC, TOKEN_PAGE})
#: routes that answer from memory, never from the database or the broker
NEVER_UNAVAILABLE: Final = frozenset(
    {HEALTHZ_PATH, PATH, JWKS_PATH, consent_script.LATEST_PATH, consent_script.FILE_PATH}
)
#: an answer the ledger itself may give as a page or a problem (an HTML route's 401, 403, 429)
_PAGE_OR_PROBLEM: Final = {
    "description": "a problem document, or an HTML page for a browser",
    "content": {**PROBLEM["content"], **HTML_PAGE["content"]},
}


def public_paths(routes: Sequence[RouteSpec]) -> frozenset[str]:
    """Routes anyone may call, without a key (/readyz: a key shows its details); a path with
    a key's operation too (the banner's, whose preflight needs none) is not one."""
    levels = (PUBLIC, TOKEN_PAGE, KEY_OPTIONAL)
    keyed = {s.path for s in routes if s.access not in levels}
    return frozenset(s.path for s in routes if s.access in levels and s.path not in keyed)


def rate_limited_paths(routes: Sequence[RouteSpec]) -> frozenset[str]:
    """The public pages and the staff sign-in, rate limited per client."""
    return frozenset(s.path for s in routes if s.access == TOKEN_PAGE) | {staff.SIGN_IN_PATH}


def openapi_document(catalogue: Catalogue, routes: Sequence[RouteSpec]) -> dict[str, Any]:
    documented: dict[str, Any] = {}
    for spec in routes:
        if isinstance(spec.operation, TwinOf):
            continue
        made = spec.operation(catalogue) if callable(spec.operation) else spec.operation
        documented.setdefault(spec.path, {})[spec.method.lower()] = made
    completed = _complete(documented, routes)
    for spec in routes:
        if isinstance(spec.operation, TwinOf):
            get = spec.operation.get_path
            twin = twin_operation(completed[get]["get"], get)
            completed.setdefault(spec.path, {})[spec.method.lower()] = twin
    return {
        "openapi": "3.1.0",
        "info": {"title": "Consent ledger", "version": "1"},
        "paths": completed,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "siteKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a website's publishable key (pk_...), from its origins",
                },
            },
            "schemas": {"Problem": PROBLEM_SCHEMA},
        },
        # every route needs `Authorization: Bearer <key>` unless its operation says otherwise
        "security": [{"bearerAuth": []}],
    }


def security(level: str) -> list[dict[str, list[str]]]:
    """An operation's security requirements (alternatives) for its access level: none, an
    optional key, any key, or a key with the route's scope or admin."""
    if level == KEY_OPTIONAL:
        return [{}, {"bearerAuth": []}]
    if level in NO_KEY_LEVELS:
        return []
    if level == ANY_KEY:
        return [{"bearerAuth": []}]
    if level == SITE_KEY:
        return [{"siteKey": []}]
    return [{"bearerAuth": [level]}] + ([{"bearerAuth": [ADMIN]}] if level != ADMIN else [])


def _states_its_body(answer: dict[str, Any]) -> bool:
    """Whether an error answer names its media type, and a problem document its schema."""
    content = answer.get("content") or {}
    return bool(content) and "schema" in content.get(PROBLEM_JSON, {"schema": None})


def _null_when_optional(schema: dict[str, Any], done: set[int]) -> None:
    """Let each optional property of an object schema (nested ones too) be null, in place;
    `done` holds the schemas already changed (operations share some, such as `actor`)."""
    if id(schema) in done:
        return
    done.add(id(schema))
    required = set(schema.get("required", ()))
    for name, inner in schema.get("properties", {}).items():
        _null_when_optional(inner, done)
        if name not in required:
            schema["properties"][name] = {"anyOf": [inner, {"type": "null"}]}


def _complete(documented: dict[str, Any], routes: Sequence[RouteSpec]) -> dict[str, Any]:
    """The paths with each operation's security, the errors every route can give and
    nullable optional body fields; a copy, so the operations as declared stay as they are."""
    levels = {(s.method.lower(), s.path): s.access for s in routes}
    public, rate_limited = public_paths(routes), rate_limited_paths(routes)
    paths = copy.deepcopy(documented)
    nullable: set[int] = set()
    for path, operations in paths.items():
        for method, op in operations.items():
            op["security"] = security(levels[(method, path)])
            for media in op.get("requestBody", {}).get("content", {}).values():
                _null_when_optional(media.get("schema", {}), nullable)
            responses: dict[str, Any] = op["responses"]
            # a page, or an HTML form's post that answers 303 (the audit pages' forms)
            page = HTML in responses.get("200", {}).get("content", {}) or "303" in responses
            error = HTML_PAGE if page else PROBLEM
            for status, answer in list(responses.items()):
                if status[0] in "45" and not _states_its_body(answer):
                    responses[status] = {**error, "description": answer.get("description", "")}
            responses.setdefault("4XX", error)
            if path in NEVER_UNAVAILABLE:
                responses.pop("503", None)
            else:
                responses.setdefault("503", error)
            either = _PAGE_OR_PROBLEM if page else PROBLEM
            if path in rate_limited:
                responses["429"] = {**either, "description": "too many requests; see Retry-After"}
            if op["security"]:
                responses["401"] = {**either, "description": "no key, or not a valid one"}
            if path not in public:
                responses["403"] = {**either, "description": "the key lacks the route's scope"}
            if op["security"] and path not in rate_limited and "429" not in responses:
                too_many = "too many refused API keys from this address; see Retry-After"
                responses["429"] = {**either, "description": too_many}
    return paths


def twin_body_schema(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """A twin's request body from its GET operation's query parameters: the same names, each
    a string (a whole number as digits), required where the parameter is."""
    properties: dict[str, Any] = {}
    required = []
    for param in parameters:
        if param.get("in") != "query":
            continue
        schema = dict(param.get("schema") or {"type": "string"})
        if schema.get("type") == "integer":
            schema = {"type": "string", "pattern": "^-?[0-9]{1,18}$"}
        properties[param["name"]] = schema
        if param.get("required"):
            required.append(param["name"])
    return {
        "type": "object",
        "additionalProperties": False,
        "required": sorted(required),
        "properties": properties,
    }


def twin_operation(get: dict[str, Any], get_path: str) -> dict[str, Any]:
    """The POST twin's OpenAPI operation from the GET route's (already complete) one."""
    parameters = get.get("parameters", [])
    return {
        **{k: v for k, v in get.items() if k not in ("parameters", "summary")},
        "summary": f"GET {get_path} with its query fields in a JSON body: no address in the URL",
        "parameters": [p for p in parameters if p.get("in") not in ("query", "path")],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": twin_body_schema(parameters)}},
        },
    }
