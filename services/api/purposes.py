"""The purpose catalogue over HTTP: GET /v1/purposes (`at=`: as in force then), GET
/v1/purposes/{id}/history, and PUT /v1/purposes/{id} (admin), which records a new version
checked as the catalogue file is. The same concept as projections/purposes.py, on the API's side.

Design: docs/developers/design/purpose-catalogue.md
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse

from projections import purposes
from schemas.events import Actor, rfc3339
from services.api import openapi_responses as answers
from services.bootstrap import Ledger, record_purpose_versions
from services.http.app_state import caller_of, ledger_of
from services.http.body import query_fields, read_json_object
from services.http.openapi_parts import PROBLEM, TIME, query_param, request_body
from services.http.problems import ProblemError, field_error, invalid, unavailable
from services.ledger.errors import BrokerUnavailable
from services.reads.purpose_cache import PurposeCache
from services.rules.catalogue import (
    MAX_TEXT,
    PURPOSE_ID_RE,
    CatalogueError,
    parse_purpose,
    purpose_id_ok,
)
from services.rules.catalogue_events import FILE_ACTOR
from services.rules.catalogue_history import PurposeRetirement, PurposeVersion, same_definition

PATH: Final = "/v1/purposes"
PURPOSE_PATH: Final = "/v1/purposes/{purpose_id}"
HISTORY_PATH: Final = "/v1/purposes/{purpose_id}/history"


async def list_purposes(request: Request) -> JSONResponse:
    """GET /v1/purposes: the catalogue in force now, or at `at`."""
    ledger = ledger_of(request)
    f = query_fields(request)
    at = f.instant("at")
    f.finish()
    catalogue = ledger.purposes.history.at(at) if at is not None else ledger.catalogue
    body: dict[str, Any] = {"purposes": [p.as_json() for p in catalogue.purposes.values()]}
    if at is not None:
        body["at"] = rfc3339(at)
    return JSONResponse(body)


async def purpose_history(request: Request) -> JSONResponse:
    """GET /v1/purposes/{id}/history: every version, oldest first, with who recorded it."""
    ledger = ledger_of(request)
    pid = _purpose_id(request)
    versions = ledger.purposes.history.versions(pid)
    if not versions:
        raise ProblemError(404, "Unknown purpose", f"no purpose {pid!r} was ever defined")
    recorded = {(r.purpose_id, r.version): r for r in await purposes.all_versions(ledger.pool)}
    return JSONResponse(
        {"purpose": pid, "versions": [_version_json(v, recorded) for v in versions]}
    )


async def put_purpose(request: Request) -> JSONResponse:
    """PUT /v1/purposes/{id}: record the body as the purpose's next version (201), or answer
    the current one (200) when the body says what it already says, also when another request
    recorded the same body first."""
    ledger = ledger_of(request)
    pid = _purpose_id(request)
    body = await read_json_object(request)
    cache = await _seeded(ledger)
    number = cache.log.next_version(pid)
    try:
        asked = parse_purpose(pid, body, number)
    except CatalogueError as exc:
        raise invalid([field_error(exc.field or "body", str(exc))]) from None
    current = cache.log.current.get(pid)
    if current is not None and same_definition(current, asked):
        return JSONResponse(_answer(current.as_json(), cache.log.latest(pid)), 200)
    caller = caller_of(request)
    actor = Actor("staff", caller.key_id if caller else None)
    since = cache.log.next_in_force(pid, datetime.now(UTC))  # also its recorded_at
    try:
        await record_purpose_versions(ledger, actor, [PurposeVersion(since, asked)])
    except BrokerUnavailable:
        raise unavailable("the event log did not acknowledge in time; retry", 2) from None
    await cache.reload()
    stored = await purposes.get(ledger.pool, pid, number)
    if stored is None:
        raise unavailable("the version is in the log but not yet projected; retry", 1)
    kept = next((v for v in cache.log.versions(pid) if v.version == number), None)
    if kept is None:
        raise unavailable("the version is in the log but not yet read; retry", 1)
    if not isinstance(kept.definition, type(asked)) or not same_definition(kept.definition, asked):
        raise ProblemError(
            409,
            "Purpose changed meanwhile",
            f"version {number} of {pid!r} was recorded by another request first; read it and"
            " send your change again",
            kind="purpose-version-exists",
        )
    # the same body from another process first: its event is the version, this one recorded
    # nothing (each process stamps its own instant)
    created = kept.in_force_from == since
    return JSONResponse(_answer(asked.as_json(), kept), 201 if created else 200)


async def retire_purpose(request: Request) -> JSONResponse:
    """DELETE /v1/purposes/{id}: record the purpose's retirement (`reason` optional). Decisions
    about it from then on answer `not_in_catalogue`; its versions still answer for the past,
    and the catalogue file never seeds it again. Retiring a retired purpose records nothing."""
    ledger = ledger_of(request)
    pid = _purpose_id(request)
    f = query_fields(request)
    reason = f.text("reason", max_len=MAX_TEXT, free_text=True)
    f.finish()
    cache = await _seeded(ledger)
    latest = cache.log.latest(pid)
    if latest is None:
        raise ProblemError(404, "Unknown purpose", f"no purpose {pid!r} was ever defined")
    if latest.retired:
        return JSONResponse(_retirement(latest))
    caller = caller_of(request)
    actor = Actor("staff", caller.key_id if caller else None)
    since = cache.log.next_in_force(pid, datetime.now(UTC))  # also its recorded_at
    asked = PurposeVersion(since, PurposeRetirement(pid, latest.version + 1))
    try:
        await record_purpose_versions(ledger, actor, [asked], reason)
    except BrokerUnavailable:
        raise unavailable("the event log did not acknowledge in time; retry", 2) from None
    await cache.reload()
    kept = cache.log.latest(pid)
    if kept is None or kept.version != asked.version:
        raise unavailable("the retirement is in the log but not yet projected; retry", 1)
    if not kept.retired:
        raise ProblemError(
            409,
            "Purpose changed meanwhile",
            f"version {asked.version} of {pid!r} was recorded by another request first; read"
            " it and retire the purpose again",
            kind="purpose-version-exists",
        )
    return JSONResponse(_retirement(kept))


async def _seeded(ledger: Ledger) -> PurposeCache:
    """The cache, once the file's purposes the log lacks are recorded: a new version follows
    what was in force."""
    cache = ledger.purposes
    await cache.refresh()
    try:
        if cache.missing():
            await record_purpose_versions(ledger, FILE_ACTOR, cache.missing())
            await cache.reload()
    except BrokerUnavailable:
        raise unavailable("the event log did not acknowledge in time; retry", 2) from None
    return cache


def _retirement(version: PurposeVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "version": version.version,
        "retired": True,
        "in_force_from": rfc3339(version.in_force_from),
    }


def _answer(purpose: dict[str, Any], version: PurposeVersion | None) -> dict[str, Any]:
    since = rfc3339(version.in_force_from) if version is not None else None
    return {**purpose, "in_force_from": since}


def _version_json(
    version: PurposeVersion, recorded: dict[tuple[str, int], purposes.PurposeRow]
) -> dict[str, Any]:
    row = recorded.get((version.id, version.version))
    body: dict[str, Any] = {
        "version": version.version,
        "in_force_from": rfc3339(version.in_force_from),
        "retired": isinstance(version.definition, PurposeRetirement),
        "recorded_at": rfc3339(row.recorded_at) if row else None,
        "recorded_by": {"type": row.actor_type, "id": row.actor_id} if row else None,
        "event_id": str(row.event_id) if row else None,
    }
    if not isinstance(version.definition, PurposeRetirement):
        body["definition"] = version.definition.as_json()
    return body


def _purpose_id(request: Request) -> str:
    pid: str = request.path_params["purpose_id"]
    if not purpose_id_ok(pid):
        raise invalid(
            [field_error("purpose_id", "must be 1-64 characters: a-z first, then a-z, 0-9, _")],
            status=400,
        )
    return pid


_ID_PARAM: Final = {
    "name": "purpose_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": PURPOSE_ID_RE.pattern},
}
LIST_OPERATION: Final[dict[str, Any]] = {
    "summary": "The purpose catalogue, now or as in force at an instant",
    "parameters": [query_param("at", schema=TIME)],
    "responses": {"200": answers.PURPOSES, "4XX": PROBLEM, "503": PROBLEM},
}
HISTORY_OPERATION: Final[dict[str, Any]] = {
    "summary": "Every version of a purpose, oldest first, with who recorded it and when",
    "parameters": [_ID_PARAM],
    "responses": {"200": answers.PURPOSE_HISTORY, "4XX": PROBLEM, "503": PROBLEM},
}
_TEXT: Final = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
PUT_OPERATION: Final[dict[str, Any]] = {
    "summary": "Record a new version of a purpose (checked as the catalogue file is)",
    "parameters": [_ID_PARAM],
    "requestBody": request_body(
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["basis", "channels", "recipients", "retention"],
            "properties": {
                "title": _TEXT,
                "basis": {"type": "string"},
                "direct_marketing": {"type": "boolean"},
                "channels": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "dpv": {"type": "string"},
                "recipients": {"type": "array"},
                "retention": _TEXT,
                "reconsent_on_material_change": {"type": "boolean"},
                "proof_retention": {"type": "string"},
                "texts": {"type": "object"},
                "browser_collectable": {"type": "boolean"},
            },
        }
    ),
    "responses": {
        "201": answers.PURPOSE_RECORDED,
        "200": answers.PURPOSE_RECORDED,
        "409": PROBLEM,
        "4XX": PROBLEM,
        "503": PROBLEM,
    },
}
RETIRE_OPERATION: Final[dict[str, Any]] = {
    "summary": "Retire a purpose: decisions about it answer `not_in_catalogue` from now on",
    "parameters": [
        _ID_PARAM,
        query_param("reason", schema={"type": "string", "minLength": 1, "maxLength": MAX_TEXT}),
    ],
    "responses": {"200": answers.PURPOSE_RETIRED, "4XX": PROBLEM, "503": PROBLEM},
}
