"""Contact identifiers: link or unlink an e-mail address or phone number, and find a subject
by one (`email=` / `phone=` on queries) through the blind index.

The value is normalised, blind-indexed and encrypted here, before anything is stored or sent;
the request digest kept for idempotency uses the blind index, never the value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse

from projections import as_of, erasure, identifiers
from schemas import events as ev
from schemas.events import BY_IDENTIFIER, IDENTIFIER_TYPES, rfc3339
from services.api.commands import Common, Context
from services.api.write import append_request, created, idempotency_key
from services.bootstrap import Ledger
from services.http.body import Fields, check_subject_id, read_json_object
from services.http.problems import ProblemError, field_error, invalid
from services.identity.identities import (
    IdentifierError,
    blind_index,
    encrypt_identifier,
    normalise,
)
from services.identity.keystore import KeyShredded
from services.ledger import idempotency
from services.ledger.errors import SubjectErased

#: query parameter -> identifier type, for finding a subject by a contact identifier
LOOKUP_PARAMETERS: Final = {"email": "email", "phone": "phone"}


def _identifier(ledger: Ledger, f: Fields) -> tuple[str, str, bytes] | None:
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


async def _subject_for(ledger: Ledger, kind: str, index: bytes) -> str | None:
    return (await identifiers.lookup(ledger.pool, kind, [index])).get(index)


async def link(request: Request) -> JSONResponse:
    """POST /v1/subjects/{subject_id}/identifiers: attach an identifier to the subject."""
    ledger: Ledger = request.app.state.ledger
    subject_id = check_subject_id(request.path_params["subject_id"])
    key = idempotency_key(request)
    body = await read_json_object(request)
    f = Fields(body)
    common = Common(f, Context(subject_id, datetime.now(UTC), ledger.catalogue))
    found = _identifier(ledger, f)
    f.finish()
    assert found is not None
    kind, normalised, index = found
    holder = await _subject_for(ledger, kind, index)
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
    event = common.event(
        ev.IDENTIFIER_LINKED,
        {
            "identifier_type": kind,
            "blind_index": index,
            "ciphertext": encrypt_identifier(data_key, subject_id, kind, normalised),
        },
    )
    digest = idempotency.request_digest("identifiers", subject_id, {**body, "value": index.hex()})
    appended = await append_request(ledger, [event], key=key, digest=digest, subject_id=subject_id)
    # an address an erased subject held stays suppressed: say so at once
    entry = (await erasure.suppressed(ledger.pool, kind, [index])).get(index)
    extra = {"suppressed": {"reason": entry[0], "since": rfc3339(entry[1])}} if entry else None
    return created(appended, extra)


async def unlink(request: Request) -> JSONResponse:
    """DELETE /v1/subjects/{subject_id}/identifiers with body {type, value}."""
    ledger: Ledger = request.app.state.ledger
    subject_id = check_subject_id(request.path_params["subject_id"])
    key = idempotency_key(request)
    body = await read_json_object(request)
    f = Fields(body)
    common = Common(f, Context(subject_id, datetime.now(UTC), ledger.catalogue))
    found = _identifier(ledger, f)
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
    if not replay and await _subject_for(ledger, kind, index) != subject_id:
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


class UnknownIdentifier(Exception):
    """No subject is linked to the identifier a query named."""


async def subject_from_query(
    ledger: Ledger, f: Fields, path_subject: str | None = None, *, at: datetime | None = None
) -> str:
    """The subject a query is about: `subject_id` (or the path's), or `email=` / `phone=`.

    Exactly one must be given; with a path, the segment is the subject id or `by-identifier`.
    Raises UnknownIdentifier when the identifier is linked to nobody; each caller decides what
    that means (a decision denies, a state query answers 404). With `at`, an identifier is
    looked up as linked at that instant (from the journal), not as linked now.
    """
    given = {name: f.raw(name) for name in LOOKUP_PARAMETERS}
    named = [name for name, value in given.items() if value is not None]
    if path_subject is not None and path_subject != BY_IDENTIFIER:
        subject_id = check_subject_id(path_subject)
        for name in named:
            f.error(name, f"not accepted with a subject id in the path; use /{BY_IDENTIFIER}/")
        return subject_id
    if path_subject is None and f.data.get("subject_id") is not None:
        given_id = f.subject_id()
        for name in named:
            f.error(name, "give subject_id or an identifier, not both")
        return given_id or ""
    if len(named) != 1:
        target = "subject_id, email or phone" if path_subject is None else "email or phone"
        missing = "subject_id" if path_subject is None else "email"
        f.error(named[1] if len(named) > 1 else missing, f"give exactly one of {target}")
        raise invalid(f.errors)
    name = named[0]
    value = given[name]
    kind = LOOKUP_PARAMETERS[name]
    try:
        normalised = normalise(kind, value) if isinstance(value, str) else None
    except IdentifierError as exc:
        f.error(name, str(exc))
        raise invalid(f.errors) from None
    if normalised is None:
        f.error(name, "must be a string")
        raise invalid(f.errors)
    index = blind_index(ledger.secrets.blind_index_key, kind, normalised)
    if at is None:
        subject = await _subject_for(ledger, kind, index)
    else:
        subject = await as_of.subject_linked_at(ledger.pool, kind, index, at)
    if subject is None:
        raise UnknownIdentifier(name)
    return subject
