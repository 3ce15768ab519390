"""The OpenAPI document, derived from the command builders so it cannot drift from them.

Each builder is run once on an empty body: the fields it reads are the body's properties and
the ones it reports as missing are the required ones.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from schemas.events import ACTOR_TYPES, IDENTIFIER_TYPES, METHODS
from services.api import batch, suppressions
from services.api.body import Fields
from services.api.commands import COMMANDS, Builder, Context
from services.api.problems import ProblemError
from services.api.unsubscribe import OPENAPI_PATHS
from services.catalogue import Catalogue

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
_TIMES = {"occurred_at", "expires_at", "valid_until"}


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
        else:
            props[name] = {"type": "string"}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": props,
    }


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
    reads = {
        "/v1/decision": [_query("subject_id"), *lookup]
        + [_query(n, True) for n in ("purpose", "channel")],
        "/v1/subjects/{subject_id}/consent": [_SUBJECT, *lookup],
        "/v1/subjects/{subject_id}/events": [
            _SUBJECT,
            *lookup,
            _query("limit"),
            _query("after_offset"),
        ],
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
    paths.update(OPENAPI_PATHS)
    paths.update(suppressions.OPENAPI_PATHS)
    paths.update(batch.OPENAPI_PATHS)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Consent ledger", "version": "1"},
        "paths": paths,
    }
