"""How a request names its subject: an id, or an e-mail address or phone number found through
the blind index, in the query string or (a POST twin) in a JSON body, after `min_token`.

Design: docs/developers/design/identities.md
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from starlette.requests import Request

from projections import as_of, identifiers
from schemas.events import BY_IDENTIFIER
from services.bootstrap import Ledger
from services.http.body import Fields, check_subject_id, query_fields, read_json_object
from services.http.problems import ProblemError, field_error, invalid, unavailable
from services.http.route_spec import GuardedRoute
from services.identity.identities import IdentifierError, blind_index, normalise
from services.ledger.tokens import TokenError, decode_token

#: query parameter -> identifier type, for finding a subject by a contact identifier
LOOKUP_PARAMETERS: Final = {"email": "email", "phone": "phone"}


class UnknownIdentifier(Exception):
    """No subject is linked to the identifier a query named."""


def unknown_subject_problem(exc: UnknownIdentifier) -> ProblemError:
    """The 404 of a route whose subject is named by an identifier linked to nobody."""
    return ProblemError(
        404,
        "Unknown subject",
        "no subject is linked to this identifier",
        errors=[field_error(str(exc), "linked to no subject")],
        kind="unknown-subject",
    )


async def subject_linked_to(ledger: Ledger, kind: str, index: bytes) -> str | None:
    """The subject the identifier with this blind index is linked to now, if any."""
    return (await identifiers.lookup(ledger.pool, kind, [index])).get(index)


async def subject_from_query(
    ledger: Ledger, f: Fields, segment: str | None = None, *, at: datetime | None = None
) -> str:
    """The subject a query is about: `subject_id` (or the path's `segment`), or `email=` /
    `phone=`.

    Exactly one must be given; with a path, the segment is the subject id or `by-identifier`.
    Raises UnknownIdentifier when the identifier is linked to nobody; each caller decides what
    that means (a decision denies, a state query answers 404). With `at`, an identifier is
    looked up as linked at that instant (from the journal), not as linked now.
    """
    given = {name: f.raw(name) for name in LOOKUP_PARAMETERS}
    named = [name for name, value in given.items() if value is not None]
    if segment is not None and segment != BY_IDENTIFIER:
        subject_id = check_subject_id(segment)
        for name in named:
            f.error(name, f"not accepted with a subject id in the path; use /{BY_IDENTIFIER}/")
        return subject_id
    if segment is None and f.data.get("subject_id") is not None:
        given_id = f.subject_id()
        for name in named:
            f.error(name, "give subject_id or an identifier, not both")
        return given_id or ""
    if len(named) != 1:
        target = "subject_id, email or phone" if segment is None else "email or phone"
        missing = "subject_id" if segment is None else "email"
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
        subject = await subject_linked_to(ledger, kind, index)
    else:
        subject = await as_of.subject_linked_at(ledger.pool, kind, index, at)
    if subject is None:
        raise UnknownIdentifier(name)
    return subject


def subject_segment(request: Request) -> str:
    """The path's subject segment; a twin's path has none: it always looks up by identifier."""
    value = request.path_params.get("subject_id", BY_IDENTIFIER)
    return str(value)


async def path_subject(
    ledger: Ledger, request: Request, f: Fields, at: datetime | None = None
) -> str:
    """The path's subject id, or the subject `by-identifier` finds (as of `at`, when given);
    404 when it finds none."""
    try:
        return await subject_from_query(ledger, f, subject_segment(request), at=at)
    except UnknownIdentifier as exc:
        raise unknown_subject_problem(exc) from None


async def wait_for_token(ledger: Ledger, f: Fields) -> None:
    """Honour `min_token`: wait, bounded, until the projection has applied that position."""
    token = f.text("min_token", max_len=200)
    if token is None:
        return
    try:
        partition, position = decode_token(token)
    except TokenError as exc:
        raise invalid([field_error("min_token", str(exc))], 400) from None
    if partition >= ledger.partitions:
        problem = "names a partition the event topic does not have"
        raise invalid([field_error("min_token", problem)], 400)
    if not await ledger.progress.wait_for(partition, position, ledger.settings.read_wait_ms / 1000):
        raise unavailable(
            "the projection has not yet applied min_token's position; retry shortly", 1
        )


def _strings_only(data: dict[str, Any]) -> Fields:
    wrong = [name for name, value in data.items() if not isinstance(value, str)]
    if wrong:
        problem = "must be a string, as in the query string of the GET route"
        raise invalid([field_error(name, problem) for name in sorted(wrong)])
    return Fields(data)


async def lookup_fields(request: Request) -> Fields:
    """A lookup's fields: the query string of a GET, the JSON object body of its POST twin."""
    if request.method != "POST":
        return query_fields(request)
    given = sorted(set(request.query_params.keys()))
    if given:
        problem = "goes in the JSON body of a POST, not in the URL"
        raise invalid([field_error(name, problem) for name in given], 400)
    fields = _strings_only(await read_json_object(request))
    # the guard saw no fields; what the body asks for may need more (`at` needs audit)
    route = request.scope.get("route")
    if not isinstance(route, GuardedRoute):
        raise TypeError(f"{request.url.path} is not behind the access check")
    route.check_fields(request, fields.data.keys())
    return fields
