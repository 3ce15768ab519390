"""Request body schemas derived from the command builders, so they cannot drift from them.

Each builder is run once on an empty body: the fields it reads are the body's properties and
the ones it reports as missing are the required ones; a second run with a value no choice
accepts gives each choice field its accepted values. A body's null is a field not given
(services/http/body.py), so the document (services/api/openapi.py) lets every optional
property of a body also take null.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any, Final

from schemas.context_values import (
    CONTEXT_LANGUAGES,
    MAX_ADDRESS_TEXT,
    MAX_PAGE,
    MAX_PAGE_VERSION,
    MAX_USER_AGENT,
    PAGE_RE,
    PAGE_VERSION_RE,
)
from schemas.events import ACTOR_TYPES, METHODS, SUBJECT_ID_RE
from services.api.commands import Builder, Context
from services.api.openapi_responses import CREATED
from services.http.body import Fields
from services.http.openapi_parts import PROBLEM, path_param, request_body
from services.http.problems import ProblemError
from services.http.route_spec import OperationOf
from services.rules.catalogue import Catalogue

#: the fields every command takes (services/api/commands.py `Common`)
COMMON_FIELDS: Final[dict[str, Any]] = {
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
#: the evidence a caller asserts (services/http/event_context.py `asserted_context`)
CONTEXT_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "description": "How the subject expressed it, as the caller saw it; recorded as asserted.",
    "properties": {
        "client_address": {
            "type": "string",
            "maxLength": MAX_ADDRESS_TEXT,
            "description": "The client's network, never its address: IPv4 /24 or IPv6 /48.",
            "examples": ["203.0.113.0/24", "2001:db8:1::/48"],
        },
        "user_agent": {"type": "string", "minLength": 1, "maxLength": MAX_USER_AGENT},
        "page": {"type": "string", "maxLength": MAX_PAGE, "pattern": f"^{PAGE_RE.pattern}$"},
        "page_version": {
            "type": "string",
            "maxLength": MAX_PAGE_VERSION,
            "pattern": f"^{PAGE_VERSION_RE.pattern}$",
        },
        "language": {"type": "string", "enum": list(CONTEXT_LANGUAGES)},
        "one_click": {"type": "boolean"},
    },
}
_TIMES: Final = {"occurred_at", "expires_at", "valid_until", "subject_informed_at"}

SUBJECT: Final = path_param(
    "subject_id", {"type": "string", "pattern": f"^{SUBJECT_ID_RE.pattern}$"}
)
IDEMPOTENCY: Final = {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}


def _probe(build: Builder, catalogue: Catalogue, body: dict[str, Any]) -> Fields:
    fields = Fields(body)
    with contextlib.suppress(ProblemError):
        build(fields, Context("probe", datetime.now(UTC), catalogue))
    return fields


def _choices(build: Builder, catalogue: Catalogue, names: set[str]) -> dict[str, list[str]]:
    """The values each choice field accepts: a second probe gives every field a value no
    choice accepts, and the builder's errors list what it would have."""
    fields = _probe(build, catalogue, dict.fromkeys(names - set(COMMON_FIELDS), "\x01probe"))
    return {
        e["field"]: e["accepted"]
        for e in fields.errors
        if isinstance(e.get("accepted"), list) and e["field"] in names
    }


def body_schema(build: Builder, catalogue: Catalogue) -> dict[str, Any]:
    """The JSON schema of the body `build` reads."""
    fields = _probe(build, catalogue, {})
    required = sorted({e["field"] for e in fields.errors if e["detail"] == "is required"})
    choices = _choices(build, catalogue, fields.taken)
    props: dict[str, Any] = {}
    for name in sorted(fields.taken):
        if name in COMMON_FIELDS:
            props[name] = COMMON_FIELDS[name]
        elif name in _TIMES:
            props[name] = {"type": "string", "format": "date-time"}
        elif name == "purposes":
            props[name] = {
                "type": "array",
                "items": {"type": "string", "enum": list(catalogue.ids)},
            }
        elif name == "context":
            props[name] = CONTEXT_SCHEMA
        elif name == "lift_objection":
            props[name] = {"type": "boolean"}
        elif name == "months":
            props[name] = {"type": "integer", "enum": [1, 2], "default": 2}
        elif name in choices:
            props[name] = {"type": "string", "enum": choices[name]}
        elif name == "subject_id":
            props[name] = SUBJECT["schema"]
        else:
            props[name] = {"type": "string", "minLength": 1}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": props,
    }


def builder_body(build: Builder, catalogue: Catalogue) -> dict[str, Any]:
    """The required JSON request body `build` reads."""
    return request_body(body_schema(build, catalogue))


def command_operation(path: str, build: Builder) -> OperationOf:
    """The operation of POST /v1/subjects/{subject_id}/<path>, its summary the builder's
    docstring."""

    def operation(catalogue: Catalogue) -> dict[str, Any]:
        return {
            "summary": (build.__doc__ or path).strip().splitlines()[0],
            "parameters": [SUBJECT, IDEMPOTENCY],
            "requestBody": builder_body(build, catalogue),
            "responses": {"201": CREATED, "4XX": PROBLEM, "503": PROBLEM},
        }

    return operation
