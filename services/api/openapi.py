"""The OpenAPI document, derived from the command builders so it cannot drift from them.

Design: docs/developers/design/http-layer.md
"""

from __future__ import annotations

import contextlib
import copy
import uuid
from datetime import UTC, datetime
from typing import Any, Final

from projections.requests import RightsRequest
from schemas.events import ACTOR_TYPES, CHANNELS, IDENTIFIER_TYPES, METHODS, SUBJECT_ID_RE, Event
from services.api import (
    access_log,
    batch,
    erasure,
    exports,
    notices,
    receipts,
    request_commands,
    requests,
    suppressions,
    verify,
)
from services.api.access import ANY_KEY, KEY_OPTIONAL, POST_TWINS, ROUTE_ACCESS, TOKEN_PAGE
from services.api.access import PUBLIC as NO_KEY
from services.api.commands import COMMANDS, Builder, Context
from services.api.lookups import twin_operation
from services.api.openapi_responses import (
    ANSWERS,
    CREATED,
    HTML,
    HTML_PAGE,
    PROBLEM,
    PROBLEM_SCHEMA,
)
from services.api.unsubscribe import OPENAPI_PATHS
from services.http.body import Fields
from services.http.problems import PROBLEM_JSON, ProblemError
from services.identity.api_keys import ADMIN
from services.proof.history_formats import FORMATS
from services.rules.catalogue import Catalogue
from services.web import audit

_SHARED: dict[str, Any] = {
    "source": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"system": {"type": "string"}, "collection_point": {"type": "string"}},
    },
    "method": {"type": "string", "enum": list(METHODS), "default": "api"},
    "actor": {
        "type": "object",
        "additionalProperties": False,
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": list(ACTOR_TYPES)},
            "id": {"type": "string"},
        },
    },
}
_TIMES = {"occurred_at", "expires_at", "valid_until", "subject_informed_at"}


def _probe(build: Builder, catalogue: Catalogue, body: dict[str, Any]) -> Fields:
    fields = Fields(body)
    with contextlib.suppress(ProblemError):
        build(fields, Context("probe", datetime.now(UTC), catalogue))
    return fields


def _choices(build: Builder, catalogue: Catalogue, names: set[str]) -> dict[str, list[str]]:
    """The values each choice field accepts: a second probe gives every field a value no
    choice accepts, and the builder's errors list what it would have."""
    fields = _probe(build, catalogue, dict.fromkeys(names - set(_SHARED), "\x01probe"))
    return {
        e["field"]: e["accepted"]
        for e in fields.errors
        if isinstance(e.get("accepted"), list) and e["field"] in names
    }


def _body_schema(build: Builder, catalogue: Catalogue) -> dict[str, Any]:
    fields = _probe(build, catalogue, {})
    required = sorted({e["field"] for e in fields.errors if e["detail"] == "is required"})
    choices = _choices(build, catalogue, fields.taken)
    props: dict[str, Any] = {}
    for name in sorted(fields.taken):
        if name in _SHARED:
            props[name] = _SHARED[name]
        elif name in _TIMES:
            props[name] = {"type": "string", "format": "date-time"}
        elif name == "purposes":
            props[name] = {
                "type": "array",
                "items": {"type": "string", "enum": list(catalogue.ids)},
            }
        elif name == "lift_objection":
            props[name] = {"type": "boolean"}
        elif name == "months":
            props[name] = {"type": "integer", "enum": [1, 2], "default": 2}
        elif name in choices:
            props[name] = {"type": "string", "enum": choices[name]}
        elif name == "subject_id":
            props[name] = _SUBJECT["schema"]
        else:
            props[name] = {"type": "string", "minLength": 1}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": props,
    }


def _rights_paths(catalogue: Catalogue) -> dict[str, Any]:
    """Erasure and rights requests, their bodies derived from the builders like commands'."""
    paths: dict[str, Any] = {
        path: {verb: dict(op) for verb, op in ops.items()}
        for path, ops in requests.OPENAPI_PATHS.items()
    }
    probe = RightsRequest(uuid.UUID(int=0), "probe", "access", datetime.now(UTC), ())

    def body(build: Builder) -> dict[str, Any]:
        schema = _body_schema(build, catalogue)
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    def received(f: Fields, ctx: Context) -> list[Event]:
        f.subject_id()
        return request_commands.receive(f, ctx)

    paths[requests.PATH]["post"]["requestBody"] = body(received)
    paths[requests.PATH]["post"]["responses"]["201"] = CREATED

    def on_probe(step: request_commands.StepBuilder) -> Builder:
        return lambda f, ctx: step(f, ctx, probe)

    for name, step in request_commands.STEPS.items():
        post = paths[f"{requests.ITEM_PATH}/{name}"]["post"]
        post["requestBody"] = body(on_probe(step))
        post["responses"]["201"] = CREATED
    paths[erasure.PATH] = {
        "post": {
            "summary": "Erase the subject: SubjectErased, then its data key is destroyed",
            "parameters": [_SUBJECT, _IDEMPOTENCY, _query("min_token")],
            "requestBody": body(lambda f, ctx: erasure.build(f, ctx)[0]),
            "responses": {"201": CREATED, "4XX": PROBLEM, "503": PROBLEM},
        }
    }
    return paths


def _query(name: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": "string"}}


_SUBJECT = {
    "name": "subject_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": f"^{SUBJECT_ID_RE.pattern}$"},
}
_IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}


def openapi_document(catalogue: Catalogue) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, build in COMMANDS.items():
        paths[f"/v1/subjects/{{subject_id}}/{path}"] = {
            "post": {
                "summary": (build.__doc__ or path).strip().splitlines()[0],
                "parameters": [_SUBJECT, _IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _body_schema(build, catalogue)}},
                },
                "responses": {"201": CREATED, "4XX": PROBLEM, "503": PROBLEM},
            }
        }
    identifier_body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["type", "value"],
                    "properties": {
                        "type": {"type": "string", "enum": list(IDENTIFIER_TYPES)},
                        "value": {"type": "string"},
                        **{k: _SHARED[k] for k in ("source", "method", "actor")},
                        "occurred_at": {"type": "string", "format": "date-time"},
                    },
                    "additionalProperties": False,
                }
            }
        },
    }
    paths["/v1/subjects/{subject_id}/identifiers"] = {
        verb: {
            "summary": summary,
            "parameters": [_SUBJECT, _IDEMPOTENCY],
            "requestBody": identifier_body,
            "responses": {"201": CREATED, "4XX": PROBLEM, "503": PROBLEM},
        }
        for verb, summary in (
            ("post", "Link an e-mail address or phone number to the subject"),
            ("delete", "Unlink an e-mail address or phone number from the subject"),
        )
    }
    lookup = [_query("email"), _query("phone")]
    at = {**_query("at"), "schema": {"type": "string", "format": "date-time"}}
    choose = {"purpose": list(catalogue.ids), "channel": list(CHANNELS)}
    reads = {
        "/v1/decision": [_query("subject_id"), *lookup]
        + [
            {**_query(n, True), "schema": {"type": "string", "enum": values}}
            for n, values in choose.items()
        ]
        + [at],
        "/v1/subjects/{subject_id}/consent": [_SUBJECT, *lookup, at],
        "/v1/subjects/{subject_id}/events": [
            _SUBJECT,
            *lookup,
            {**_query("limit"), "schema": {"type": "integer", "minimum": 1, "maximum": 10000}},
            {**_query("after_offset"), "schema": {"type": "integer", "minimum": -1}},
        ],
        exports.HISTORY_PATH: [
            _SUBJECT,
            *lookup,
            {**_query("format"), "schema": {"type": "string", "enum": list(FORMATS)}},
        ],
        exports.EXPORT_PATH: [_SUBJECT, *lookup],
        "/v1/purposes": [],
        "/healthz": [],
        "/readyz": [],
    }
    for path, params in reads.items():
        wait = [_query("min_token")] if path.startswith("/v1/") and path != "/v1/purposes" else []
        paths[path] = {
            "get": {
                "parameters": params + wait,
                "responses": {"200": {"description": "ok"}, "4XX": PROBLEM, "503": PROBLEM},
            }
        }
    paths["/openapi.json"] = {"get": {"summary": "This document", "responses": {}}}
    paths.update(OPENAPI_PATHS)
    paths.update(suppressions.OPENAPI_PATHS)
    paths.update(batch.OPENAPI_PATHS)
    paths.update(verify.OPENAPI_PATHS)
    paths.update(notices.OPENAPI_PATHS)
    paths.update(receipts.OPENAPI_PATHS)
    paths.update(audit.OPENAPI_PATHS)
    paths.update(access_log.OPENAPI_PATHS)
    paths.update(_rights_paths(catalogue))
    completed = _complete(paths)
    for get, twin in POST_TWINS.items():
        completed.setdefault(twin, {})["post"] = twin_operation(completed[get]["get"], get)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Consent ledger", "version": "1"},
        "paths": completed,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Problem": PROBLEM_SCHEMA},
        },
        # every route needs `Authorization: Bearer <key>` unless its operation says otherwise
        "security": [{"bearerAuth": []}],
    }


#: routes anyone may call, without a key (/readyz: a key shows its details)
PUBLIC: Final = frozenset(
    {"/healthz", "/readyz", "/openapi.json", receipts.JWKS_PATH, "/u/{token}", "/p/{token}"}
)
#: the public pages, rate limited per client
RATE_LIMITED: Final = frozenset({"/u/{token}", "/p/{token}"})
#: access levels that never look at a key
PUBLIC_LEVELS: Final = frozenset({NO_KEY, TOKEN_PAGE})
#: routes that answer from memory, never from the database or the broker
NEVER_UNAVAILABLE: Final = frozenset({"/healthz", "/openapi.json", receipts.JWKS_PATH})
#: an answer the ledger itself may give as a page or a problem (an HTML route's 401, 403, 429)
_PAGE_OR_PROBLEM: Final = {
    "description": "a problem document, or an HTML page for a browser",
    "content": {**PROBLEM["content"], **HTML_PAGE["content"]},
}


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


def security(method: str, path: str) -> list[dict[str, list[str]]]:
    """The operation's security requirements (alternatives) from ROUTE_ACCESS: none, an
    optional key, any key, or a key with the route's scope or admin."""
    level = ROUTE_ACCESS[(method.upper(), path)]
    if level == KEY_OPTIONAL:
        return [{}, {"bearerAuth": []}]
    if level in PUBLIC_LEVELS:
        return []
    if level == ANY_KEY:
        return [{"bearerAuth": []}]
    return [{"bearerAuth": [level]}] + ([{"bearerAuth": [ADMIN]}] if level != ADMIN else [])


def _complete(documented: dict[str, Any]) -> dict[str, Any]:
    """The paths with each operation's answers (ANSWERS), the errors every route can give and
    nullable optional body fields; a copy, so the modules' own OPENAPI_PATHS stay as they
    are."""
    paths = copy.deepcopy(documented)
    for (method, path), answers in ANSWERS.items():
        paths[path][method]["responses"].update(copy.deepcopy(answers))
    nullable: set[int] = set()
    for path, operations in paths.items():
        for method, op in operations.items():
            op["security"] = security(method, path)
            for media in op.get("requestBody", {}).get("content", {}).values():
                _null_when_optional(media.get("schema", {}), nullable)
            responses: dict[str, Any] = op["responses"]
            page = HTML in responses.get("200", {}).get("content", {})
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
            if path in RATE_LIMITED:
                responses["429"] = {**either, "description": "too many requests; see Retry-After"}
            if op["security"]:
                responses["401"] = {**either, "description": "no key, or not a valid one"}
            if path not in PUBLIC:
                responses["403"] = {**either, "description": "the key lacks the route's scope"}
            if op["security"] and path not in RATE_LIMITED:
                too_many = "too many refused API keys from this address; see Retry-After"
                responses["429"] = {**either, "description": too_many}
    return paths
