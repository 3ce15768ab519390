"""Contact identifiers: link or unlink an e-mail address or phone number (finding a subject by
one, `email=` / `phone=` on queries, is services/http/subjects.py).

The value is normalised, blind-indexed and encrypted here, before anything is stored or sent;
the request digest kept for idempotency uses the blind index, never the value.
The same concept as projections/identifiers.py, on the HTTP side.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse

from projections import erasure
from schemas import events as ev
from schemas.events import IDENTIFIER_TYPES, Event, rfc3339
from services.api.body_schemas import COMMON_FIELDS, IDEMPOTENCY, SUBJECT
from services.api.commands import Common, Context
from services.api.openapi_responses import CREATED
from services.api.write import created, idempotency_key
from services.bootstrap import Ledger
from services.http.app_state import ledger_of
from services.http.appending import append_request
from services.http.body import Fields, check_subject_id, read_json_object
from services.http.openapi_parts import PROBLEM, request_body
from services.http.problems import ProblemError, field_error
from services.http.subjects import subject_linked_to
from services.identity.identities import (
    IdentifierError,
    blind_index,
    encrypt_identifier,
    normalise,
)
from services.identity.keystore import KeyShredded
from services.ledger import idempotency
from services.ledger.errors import SubjectErased


def identifier_of(ledger: Ledger, f: Fields) -> tuple[str, str, bytes] | None:
    """Type, normalised value and blind index from the body's `type` and `value`."""
    kind = f.choice("type", IDENTIFIER_TYPES, required=True)
    value = f.raw("value", required=True)
    if value is not None and not isinstance(value, str):
        f.error("value", "must be a string")
        return None
    if kind is None or value is None:
        return None
    try:
        normalised = normalise(kind, value)
    except IdentifierError as exc:
        f.error("value", str(exc))
        return None
    return kind, normalised, blind_index(ledger.secrets.blind_index_key, kind, normalised)


async def link(request: Request) -> JSONResponse:
    """POST /v1/subjects/{subject_id}/identifiers: attach an identifier to the subject."""
    ledger = ledger_of(request)
    subject_id = check_subject_id(request.path_params["subject_id"])
    key = idempotency_key(request)
    body = await read_json_object(request)
    f = Fields(body)
    common = Common(f, Context(subject_id, datetime.now(UTC), ledger.catalogue))
    found = identifier_of(ledger, f)
    f.finish()
    assert found is not None
    event = await link_event(ledger, common, subject_id, found)
    digest = idempotency.request_digest(
        "identifiers", subject_id, {**body, "value": found[2].hex()}
    )
    appended = await append_request(ledger, [event], key=key, digest=digest, subject_id=subject_id)
    return created(appended, await suppression_note(ledger, found))


async def link_event(
    ledger: Ledger, common: Common, subject_id: str, found: tuple[str, str, bytes]
) -> Event:
    """The IdentifierLinked of (type, normalised value, blind index) for the subject: a 409
    problem when another subject holds it, SubjectErased when the subject's key is shredded."""
    kind, normalised, index = found
    holder = await subject_linked_to(ledger, kind, index)
    if holder is not None and holder != subject_id:
        raise ProblemError(
            409,
            "Identifier linked to another subject",
            f"this {kind} belongs to another subject; unlink it there first",
            errors=[field_error("value", "already linked to another subject")],
            kind="identifier-linked-elsewhere",
        )
    try:
        data_key = await ledger.data_keys.for_subject(subject_id)
    except KeyShredded:
        raise SubjectErased() from None
    return common.event(
        ev.IDENTIFIER_LINKED,
        {
            "identifier_type": kind,
            "blind_index": index,
            "ciphertext": encrypt_identifier(data_key, subject_id, kind, normalised),
        },
    )


async def suppression_note(ledger: Ledger, found: tuple[str, str, bytes]) -> dict[str, Any] | None:
    """`{"suppressed": ...}` when an erased subject held the identifier: it stays suppressed,
    and the answer says so at once."""
    kind, _, index = found
    entry = (await erasure.suppressed(ledger.pool, kind, [index])).get(index)
    return {"suppressed": {"reason": entry[0], "since": rfc3339(entry[1])}} if entry else None


async def unlink(request: Request) -> JSONResponse:
    """DELETE /v1/subjects/{subject_id}/identifiers with body {type, value}."""
    ledger = ledger_of(request)
    subject_id = check_subject_id(request.path_params["subject_id"])
    key = idempotency_key(request)
    body = await read_json_object(request)
    f = Fields(body)
    common = Common(f, Context(subject_id, datetime.now(UTC), ledger.catalogue))
    found = identifier_of(ledger, f)
    f.finish()
    assert found is not None
    kind, _, index = found
    digest = idempotency.request_digest(
        "identifiers/unlink", subject_id, {**body, "value": index.hex()}
    )
    # a retry of an unlink that was recorded replays it; anything else must find the link
    replay = key is not None and await idempotency.is_claimed(
        ledger.pool, idempotency.key_hash(ledger.secrets.blind_index_key, key)
    )
    if not replay and await subject_linked_to(ledger, kind, index) != subject_id:
        raise ProblemError(
            404,
            "Identifier not linked",
            f"this {kind} is not linked to the subject",
            errors=[field_error("value", "not linked to this subject")],
            kind="identifier-not-linked",
        )
    event = common.event(ev.IDENTIFIER_UNLINKED, {"identifier_type": kind, "blind_index": index})
    appended = await append_request(ledger, [event], key=key, digest=digest, subject_id=subject_id)
    return created(appended)


_BODY: Final = request_body(
    {
        "type": "object",
        "required": ["type", "value"],
        "properties": {
            "type": {"type": "string", "enum": list(IDENTIFIER_TYPES)},
            "value": {"type": "string"},
            **{k: COMMON_FIELDS[k] for k in ("source", "method", "actor")},
            "occurred_at": {"type": "string", "format": "date-time"},
        },
        "additionalProperties": False,
    }
)


def _operation(summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": [SUBJECT, IDEMPOTENCY],
        "requestBody": _BODY,
        "responses": {"201": CREATED, "4XX": PROBLEM, "503": PROBLEM},
    }


LINK_OPERATION: Final = _operation("Link an e-mail address or phone number to the subject")
UNLINK_OPERATION: Final = _operation("Unlink an e-mail address or phone number from the subject")
