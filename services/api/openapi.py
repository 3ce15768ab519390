"""The OpenAPI document, derived from the command builders so it cannot drift from them.

Each builder is run once on an empty body: the fields it reads are the body's properties and
the ones it reports as missing are the required ones.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

from projections.requests import RightsRequest
from schemas.events import ACTOR_TYPES, IDENTIFIER_TYPES, METHODS, Event
from services.api import (
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
from services.api.body import Fields
from services.api.commands import COMMANDS, Builder, Context
from services.api.problems import ProblemError
from services.api.unsubscribe import OPENAPI_PATHS
from services.catalogue import Catalogue
from services.history_formats import FORMATS, MEDIA_TYPES
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


def _body_schema(build: Builder, catalogue: Catalogue) -> dict[str, Any]:
    fields = Fields({})
    with contextlib.suppress(ProblemError):
        build(fields, Context("probe", datetime.now(UTC), catalogue))
    required = sorted({e["field"] for e in fields.errors if e["detail"] == "is required"})
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
        else:
            props[name] = {"type": "string"}
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

    def on_probe(step: request_commands.StepBuilder) -> Builder:
        return lambda f, ctx: step(f, ctx, probe)

    for name, step in request_commands.STEPS.items():
        post = paths[f"{requests.ITEM_PATH}/{name}"]["post"]
        post["requestBody"] = body(on_probe(step))
    paths[erasure.PATH] = {
        "post": {
            "summary": "Erase the subject: SubjectErased, then its data key is destroyed",
            "parameters": [_SUBJECT, _IDEMPOTENCY, _query("min_token")],
            "requestBody": body(lambda f, ctx: erasure.build(f, ctx)[0]),
            "responses": {"201": {"description": "erased"}, "4XX": _PROBLEM, "503": _PROBLEM},
        }
    }
    return paths


_PROBLEM = {
    "description": "problem details (RFC 9457)",
    "content": {"application/problem+json": {}},
}


def _query(name: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": "string"}}


_SUBJECT = {"name": "subject_id", "in": "path", "required": True, "schema": {"type": "string"}}
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
                "responses": {
                    "201": {"description": "appended and acknowledged by the broker"},
                    "4XX": _PROBLEM,
                    "503": _PROBLEM,
                },
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
            "responses": {"201": {"description": "appended"}, "4XX": _PROBLEM, "503": _PROBLEM},
        }
        for verb, summary in (
            ("post", "Link an e-mail address or phone number to the subject"),
            ("delete", "Unlink an e-mail address or phone number from the subject"),
        )
    }
    lookup = [_query("email"), _query("phone")]
    at = {**_query("at"), "schema": {"type": "string", "format": "date-time"}}
    reads = {
        "/v1/decision": [_query("subject_id"), *lookup]
        + [_query(n, True) for n in ("purpose", "channel")]
        + [at],
        "/v1/subjects/{subject_id}/consent": [_SUBJECT, *lookup, at],
        "/v1/subjects/{subject_id}/events": [
            _SUBJECT,
            *lookup,
            _query("limit"),
            _query("after_offset"),
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
                "responses": {"200": {"description": "ok"}, "4XX": _PROBLEM, "503": _PROBLEM},
            }
        }
    paths[exports.HISTORY_PATH]["get"]["responses"]["200"] = {
        "description": "the whole history, in the requested format",
        "content": {media: {} for media in MEDIA_TYPES.values()},
    }
    paths.update(OPENAPI_PATHS)
    paths.update(suppressions.OPENAPI_PATHS)
    paths.update(batch.OPENAPI_PATHS)
    paths.update(verify.OPENAPI_PATHS)
    paths.update(notices.OPENAPI_PATHS)
    paths.update(receipts.OPENAPI_PATHS)
    paths.update(audit.OPENAPI_PATHS)
    paths.update(_rights_paths(catalogue))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Consent ledger", "version": "1"},
        "paths": paths,
    }
