"""What each operation answers, for the OpenAPI document: the body schema of every success,
the problem document of every error, and the media types of both.

A schema names the fields every answer has and their types; answers may carry more (a field
added later is not a breaking change). tests/integration/test_api_conformance.py checks the
running API against them.
"""

from __future__ import annotations

from typing import Any, Final

from services.http.problems import PROBLEM_JSON
from services.proof.history_formats import MEDIA_TYPES

JSON: Final = "application/json"
HTML: Final = "text/html"

STRING: Final = {"type": "string"}
NULLABLE_STRING: Final = {"type": ["string", "null"]}
INTEGER: Final = {"type": "integer"}
BOOLEAN: Final = {"type": "boolean"}
TIME: Final = {"type": "string", "format": "date-time"}
NULLABLE_TIME: Final = {"type": ["string", "null"], "format": "date-time"}
DATE: Final = {"type": "string", "format": "date"}
UUID: Final = {"type": "string", "format": "uuid"}
NULLABLE_UUID: Final = {"type": ["string", "null"], "format": "uuid"}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object schema: `required` fields always present, `optional` ones sometimes."""
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def json_answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


PROBLEM_SCHEMA: Final = obj(
    {"type": STRING, "title": STRING, "status": INTEGER, "detail": STRING},
    {
        "instance": STRING,
        "errors": array(
            obj(
                {"field": STRING, "pointer": STRING, "detail": STRING},
                {"accepted": {}},
            )
        ),
    },
)
PROBLEM: Final[dict[str, Any]] = {
    "description": "problem details (RFC 9457) naming the fields at fault",
    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
HTML_PAGE: Final[dict[str, Any]] = {"description": "an HTML page", "content": {HTML: {}}}

#: the 201 of every command: the (last) event appended and the token to read it back with
CREATED: Final[dict[str, Any]] = json_answer(
    "appended and acknowledged by the broker",
    obj(
        {"event_id": UUID, "type": STRING, "subject_id": STRING, "recorded_at": TIME},
        {
            "token": STRING,
            "events": array(obj({"event_id": UUID, "type": STRING})),
            "request_id": UUID,
            "due_on": DATE,
            "data_key": {"type": "string", "enum": ["shredded"]},
        },
    ),
)

_DECISION = {"allowed": BOOLEAN, "reason": STRING, "basis": STRING, "evidence": array(UUID)}
#: a live answer carries the projection's token; an as-of answer the instant and position
_AS_OF_OR_TOKEN = {
    "token": NULLABLE_STRING,
    "at": TIME,
    "as_of_position": {
        "type": ["object", "null"],
        "required": ["partition", "offset"],
        "properties": {"partition": INTEGER, "offset": INTEGER},
    },
}
_FACT = obj({"type": STRING, "event_id": UUID, "occurred_at": NULLABLE_TIME})
_CONSENT = {
    "subject_id": STRING,
    "purposes": array(
        obj(
            {
                "purpose": STRING,
                "basis": STRING,
                "direct_marketing": BOOLEAN,
                "status": STRING,
                "allowed": {"type": ["boolean", "string"]},
                "channels": {
                    "type": "object",
                    "additionalProperties": obj(
                        {**_DECISION, "since": NULLABLE_TIME, "event_id": NULLABLE_UUID}
                    ),
                },
            }
        )
    ),
    "objections": array(_FACT),
    "restrictions": array(_FACT),
    "relationships": array(_FACT),
}
_PAGE_OF = {"next": NULLABLE_STRING}
_NOTICE = obj(
    {
        "version": STRING,
        "effective_from": TIME,
        "text_sha256": STRING,
        "url": STRING,
        "material": BOOLEAN,
        "purposes": array(STRING),
        "event_id": UUID,
    },
    {"language": NULLABLE_STRING, "published_at": NULLABLE_TIME},
)
_REQUEST = obj(
    {
        "request_id": UUID,
        "subject_id": STRING,
        "kind": STRING,
        "status": STRING,
        "received_at": NULLABLE_TIME,
        "due_on": DATE,
        "overdue": BOOLEAN,
        "extended_months": INTEGER,
        "events": array(UUID),
    },
    {
        "reference": NULLABLE_STRING,
        "verified_at": NULLABLE_TIME,
        "extension_reason": NULLABLE_STRING,
        "closed_at": NULLABLE_TIME,
        "outcome_note": NULLABLE_STRING,
    },
)

#: (method, path) -> status -> response, for the answers a route's own module does not state
ANSWERS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("get", "/v1/access-log"): {
        "200": json_answer(
            "who read the subject's data, oldest first; `next` is null on the last page",
            obj(
                {
                    "subject_id": STRING,
                    "reads": array(
                        obj(
                            {
                                "at": TIME,
                                "key_id": STRING,
                                "key_name": STRING,
                                "method": STRING,
                                "route": STRING,
                            }
                        )
                    ),
                    **_PAGE_OF,
                }
            ),
        )
    },
    ("get", "/v1/decision"): {
        "200": json_answer(
            "the decision; subject_id is null for an identifier linked to nobody. An email or"
            " phone lookup by a key without the audit scope leaves out subject_id and evidence",
            obj(
                {
                    "purpose": STRING,
                    "channel": STRING,
                    **{k: v for k, v in _DECISION.items() if k != "evidence"},
                },
                {
                    "subject_id": NULLABLE_STRING,
                    "evidence": _DECISION["evidence"],
                    **_AS_OF_OR_TOKEN,
                },
            ),
        )
    },
    ("get", "/v1/subjects/{subject_id}/consent"): {
        "200": json_answer("the subject's consent state", obj(_CONSENT, _AS_OF_OR_TOKEN))
    },
    ("get", "/v1/subjects/{subject_id}/events"): {
        "200": json_answer(
            "the subject's events, oldest first",
            obj({"subject_id": STRING, "events": array({"type": "object"})}),
        )
    },
    ("get", "/v1/subjects/{subject_id}/history"): {
        "200": {
            "description": "the whole history, in the requested format",
            "content": {media: {} for media in MEDIA_TYPES.values()},
        }
    },
    ("get", "/v1/subjects/{subject_id}/export"): {
        "200": json_answer(
            "the GDPR Art. 15 and 20 answer as one document",
            obj(
                {
                    "subject_id": STRING,
                    "controller": STRING,
                    "generated_at": TIME,
                    "identities": {},
                    "state": {"type": "object"},
                    "purposes": array({"type": "object"}),
                    "history": array({"type": "object"}),
                }
            ),
        )
    },
    ("get", "/v1/purposes"): {
        "200": json_answer(
            "the purpose catalogue",
            obj(
                {
                    "purposes": array(
                        obj(
                            {
                                "id": STRING,
                                "title": STRING,
                                "basis": STRING,
                                "direct_marketing": BOOLEAN,
                                "channels": array(STRING),
                            }
                        )
                    )
                }
            ),
        )
    },
    ("get", "/healthz"): {
        "200": json_answer("the process answers", obj({"status": {"const": "ok"}}))
    },
    ("get", "/readyz"): {
        "200": json_answer(
            "the database and the event topic are reachable and the projection is current;"
            " with a valid key (any scope) also the projected positions by partition and the"
            " projector's health",
            obj(
                {"status": {"const": "ready"}},
                {
                    "projected": {"type": "object", "additionalProperties": INTEGER},
                    "projector": {"type": "object"},
                },
            ),
        ),
        "503": {
            "description": "not ready: without a key only the status, with one a problem"
            " saying why",
            "content": {
                **PROBLEM["content"],
                JSON: {"schema": obj({"status": {"const": "not-ready"}})},
            },
        },
    },
    ("get", "/openapi.json"): {"200": json_answer("this document", {"type": "object"})},
    ("post", "/v1/unsubscribe-links"): {
        "200": json_answer(
            "url (/u/, for List-Unsubscribe), preferences_url (/p/, for the message body only:"
            " it can grant), headers, expires_at",
            obj(
                {
                    "url": STRING,
                    "preferences_url": STRING,
                    "headers": obj({"List-Unsubscribe": STRING, "List-Unsubscribe-Post": STRING}),
                    "expires_at": TIME,
                }
            ),
        )
    },
    ("get", "/metrics"): {
        "200": {"description": "Prometheus text format", "content": {"text/plain": {}}}
    },
    ("get", "/v1/suppressions"): {
        "200": json_answer(
            "a page; `next` is null on the last",
            obj(
                {
                    "channel": STRING,
                    "identifier_type": STRING,
                    "suppressions": array(
                        obj(
                            {
                                "blind_index": STRING,
                                "identifier_type": STRING,
                                "reason": STRING,
                                "since": TIME,
                                "event_id": UUID,
                            }
                        )
                    ),
                    **_PAGE_OF,
                }
            ),
        )
    },
    ("post", "/v1/decisions/batch"): {
        "200": json_answer(
            "the decisions against one snapshot; check is the evidence record, with campaign_id",
            obj(
                {
                    "purpose": STRING,
                    "channel": STRING,
                    "token": STRING,
                    "checked_at": TIME,
                    "counts": obj(
                        {
                            "requested": INTEGER,
                            "allowed": INTEGER,
                            "denied": INTEGER,
                            "denied_by_reason": {
                                "type": "object",
                                "additionalProperties": INTEGER,
                            },
                        }
                    ),
                    "allowed": array(STRING),
                    "denied": array(obj({"recipient": STRING, "reason": STRING})),
                    "check": {"type": ["object", "null"]},
                }
            ),
        )
    },
    ("post", "/v1/notices"): {
        "201": json_answer("published and projected", _NOTICE),
        "200": json_answer("this version was already published with this content", _NOTICE),
    },
    ("get", "/v1/notices"): {
        "200": json_answer("every published notice version", obj({"notices": array(_NOTICE)}))
    },
    ("get", "/v1/reconsent"): {
        "200": json_answer(
            "a page; `next` is null on the last",
            obj(
                {
                    "purpose": STRING,
                    "notice": {"type": ["object", "null"]},
                    "checked_at": TIME,
                    "subjects": array(obj({"subject_id": STRING})),
                    **_PAGE_OF,
                }
            ),
        )
    },
    ("get", "/v1/receipts/{event_id}"): {
        "200": json_answer(
            "the receipt, its compact JWS and the key id to verify it with",
            obj({"format": STRING, "receipt": {"type": "object"}, "jws": STRING, "kid": STRING}),
        )
    },
    ("get", "/.well-known/jwks.json"): {
        "200": {
            "description": "the JWK set (Ed25519) that verifies receipts",
            "content": {
                "application/jwk-set+json": {
                    "schema": obj({"keys": array(obj({"kty": STRING, "kid": STRING}))})
                }
            },
        }
    },
    ("get", "/v1/requests"): {
        "200": json_answer(
            "a page by deadline; `next` is null on the last",
            obj({"status": STRING, "today": DATE, "requests": array(_REQUEST), **_PAGE_OF}),
        )
    },
    ("get", "/v1/requests/{request_id}"): {"200": json_answer("the request", _REQUEST)},
    **{
        (method, page): {"200": HTML_PAGE}
        for page in ("/u/{token}", "/p/{token}")
        for method in ("get", "post")
    },
}
