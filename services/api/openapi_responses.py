"""What the API's operations answer on success: the body schema and media type of each, named
here and referred to by each route's operation (declared with its handler, listed in
services/api/route_table.py). The pieces they share, and the problem document of every error, are
in services/http/openapi_parts.py.
"""

from __future__ import annotations

from typing import Any, Final

from services.http.openapi_parts import (
    BOOLEAN,
    DATE,
    INTEGER,
    JSON,
    NULLABLE_STRING,
    NULLABLE_TIME,
    NULLABLE_UUID,
    PAGE_OF,
    PROBLEM,
    STRING,
    TIME,
    UUID,
    array,
    json_answer,
    obj,
)
from services.proof.history_formats import MEDIA_TYPES

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

ACCESS_LOG: Final = json_answer(
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
            **PAGE_OF,
        }
    ),
)
DECISION: Final = json_answer(
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
CONSENT: Final = json_answer("the subject's consent state", obj(_CONSENT, _AS_OF_OR_TOKEN))
EVENTS: Final = json_answer(
    "the subject's events, oldest first",
    obj({"subject_id": STRING, "events": array({"type": "object"})}),
)
HISTORY: Final = {
    "description": "the whole history, in the requested format",
    "content": {media: {} for media in MEDIA_TYPES.values()},
}
EXPORT: Final = json_answer(
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
_RECIPIENT: Final = obj(
    {
        "name": STRING,
        "country": STRING,
        "safeguard": {**NULLABLE_STRING, "description": "outside the EU/EEA only"},
    }
)
#: a recipient in the record of processing: `transfer` when outside the EU/EEA
_RECORDED_RECIPIENT: Final = obj({**_RECIPIENT["properties"], "transfer": BOOLEAN})
RECORDS_OF_PROCESSING: Final = {
    "description": "the GDPR Art. 30(1) record of processing activities (JSON, or CSV with"
    " `format=csv`: one row per purpose)",
    "content": {
        JSON: {
            "schema": obj(
                {
                    "record_version": INTEGER,
                    "at": TIME,
                    "controller": obj(
                        {
                            "name": STRING,
                            "contact": NULLABLE_STRING,
                            "country": STRING,
                            "dpo_contact": NULLABLE_STRING,
                            "joint_controllers": {"type": ["array", "null"], "items": STRING},
                            "representative": NULLABLE_STRING,
                            "notes": {"type": "object", "additionalProperties": STRING},
                        }
                    ),
                    "missing": array(STRING),
                    "activities": array(
                        obj(
                            {
                                "purpose": STRING,
                                "version": INTEGER,
                                "title": STRING,
                                "legal_basis": STRING,
                                "data_subjects": STRING,
                                "personal_data": array(STRING),
                                "recipients": array(_RECORDED_RECIPIENT),
                                "third_country_transfers": array(_RECORDED_RECIPIENT),
                                "retention": STRING,
                            }
                        )
                    ),
                    "security_measures": array(
                        obj({"measure": STRING, "by": STRING, "see": STRING})
                    ),
                }
            )
        },
        "text/csv; charset=utf-8": {},
    },
}
PURPOSES: Final = json_answer(
    "the purpose catalogue",
    obj(
        {
            "purposes": array(
                obj(
                    {
                        "id": STRING,
                        "version": INTEGER,
                        "recipients": array(_RECIPIENT),
                        "title": STRING,
                        "basis": STRING,
                        "direct_marketing": BOOLEAN,
                        "channels": array(STRING),
                        "texts": {
                            "type": "object",
                            "description": "title and description by language (fi, sv, en)",
                            "additionalProperties": obj({"title": STRING, "description": STRING}),
                        },
                    }
                )
            )
        }
    ),
)
PURPOSE_RECORDED: Final = json_answer(
    "the purpose's version now in force",
    obj({"id": STRING, "version": INTEGER, "in_force_from": TIME}),
)
PURPOSE_RETIRED: Final = json_answer(
    "the purpose's retirement (the one recorded before, when it was already retired)",
    obj({"id": STRING, "version": INTEGER, "retired": BOOLEAN, "in_force_from": TIME}),
)
PURPOSE_HISTORY: Final = json_answer(
    "every version of the purpose, oldest first",
    obj(
        {
            "purpose": STRING,
            "versions": array(
                obj(
                    {"version": INTEGER, "in_force_from": TIME, "retired": BOOLEAN},
                    {"definition": {"type": "object"}, "recorded_by": {"type": ["object", "null"]}},
                )
            ),
        }
    ),
)
HEALTHY: Final = json_answer("the process answers", obj({"status": {"const": "ok"}}))
READY: Final = json_answer(
    "the database and the event topic are reachable and the projection is current;"
    " with a valid key (any scope) also the projected positions by partition and the"
    " projector's health, and how the purpose catalogue file differs from the log's catalogue"
    " (reported, never applied: `consent-ledger purposes apply` records it)",
    obj(
        {"status": {"const": "ready"}},
        {
            "projected": {"type": "object", "additionalProperties": INTEGER},
            "projector": {"type": "object"},
            "catalogue": obj(
                {
                    "file_differs": BOOLEAN,
                    "differences": array(
                        obj({"purpose": STRING, "change": STRING, "fields": array(STRING)})
                    ),
                }
            ),
        },
    ),
)
NOT_READY: Final = {
    "description": "not ready: without a key only the status, with one a problem saying why",
    "content": {
        **PROBLEM["content"],
        JSON: {"schema": obj({"status": {"const": "not-ready"}})},
    },
}
OPENAPI_DOCUMENT: Final = json_answer("this document", {"type": "object"})
SIGNUP: Final = json_answer(
    "ConsentRequested appended and acknowledged; confirm_url is to be mailed to the person",
    obj(
        {
            "event_id": UUID,
            "type": STRING,
            "subject_id": STRING,
            "recorded_at": TIME,
            "token": STRING,
            "confirm_url": STRING,
            "expires_at": TIME,
        },
        {
            "events": array(obj({"event_id": UUID, "type": STRING})),
            "suppressed": obj({"reason": STRING, "since": TIME}),
        },
    ),
)
UNSUBSCRIBE_LINKS: Final = json_answer(
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
METRICS: Final = {"description": "Prometheus text format", "content": {"text/plain": {}}}
SUPPRESSIONS: Final = json_answer(
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
                    },
                    # with include_identifiers=true; null for an erased subject's entry
                    {"address": NULLABLE_STRING},
                )
            ),
            **PAGE_OF,
        }
    ),
)
BATCH: Final = json_answer(
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
NOTICE_PUBLISHED: Final = json_answer("published and projected", _NOTICE)
NOTICE_REPLAYED: Final = json_answer(
    "this version was already published with this content", _NOTICE
)
NOTICES: Final = json_answer("every published notice version", obj({"notices": array(_NOTICE)}))
RECONSENT: Final = json_answer(
    "a page; `next` is null on the last",
    obj(
        {
            "purpose": STRING,
            "notice": {"type": ["object", "null"]},
            "checked_at": TIME,
            "subjects": array(obj({"subject_id": STRING})),
            **PAGE_OF,
        }
    ),
)
RECEIPT: Final = json_answer(
    "the receipt, its compact JWS and the key id to verify it with",
    obj({"format": STRING, "receipt": {"type": "object"}, "jws": STRING, "kid": STRING}),
)
JWKS: Final = {
    "description": "the JWK set (Ed25519) that verifies receipts",
    "content": {
        "application/jwk-set+json": {
            "schema": obj({"keys": array(obj({"kty": STRING, "kid": STRING}))})
        }
    },
}
REQUESTS: Final = json_answer(
    "a page by deadline; `next` is null on the last",
    obj({"status": STRING, "today": DATE, "requests": array(_REQUEST), **PAGE_OF}),
)
REQUEST: Final = json_answer("the request", _REQUEST)
