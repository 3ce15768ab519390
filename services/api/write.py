"""Command endpoints: validate, append to the log, answer 201 only after the broker's ack."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse

from schemas.events import Event, rfc3339
from services.api import api_metrics
from services.api.commands import Builder, Context
from services.api.projector_status import require_verifiable_writes
from services.bootstrap import Ledger
from services.http.app_state import ledger_of
from services.http.body import Fields, check_subject_id, read_json_object
from services.http.problems import ProblemError, field_error, invalid, unavailable
from services.ledger import idempotency
from services.ledger.publisher import BrokerUnavailable
from services.ledger.tokens import encode_token
from services.rules.erasure import refuse_if_erased
from services.telemetry.request_context import opaque_id_problem

MAX_KEY_LENGTH: Final = 200

Positions = list[tuple[int, int]]


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key, held to the X-Request-Id rule
    (services/telemetry/request_context.py): an e-mail address or a phone number as a key is
    refused (400), never stored."""
    key = request.headers.get("idempotency-key")
    if key is not None and (problem := opaque_id_problem(key, MAX_KEY_LENGTH)):
        raise invalid([field_error("Idempotency-Key", problem)], 400)
    return key


async def append(
    ledger: Ledger,
    events: list[Event],
    *,
    key: str | None,
    digest: bytes,
    subject_id: str,
) -> tuple[list[Event], Positions, bool]:
    """Put `events` in the log once per idempotency key; returns the events actually logged
    (a retry's are the first request's), their positions and whether this was a replay.

    `digest` identifies the request for the key; it must not be a plain hash of personal data.
    An event that would reopen processing of an erased subject is refused (409), and every
    event while a projector would dead-letter it (503, services/api/projector_status.py).
    """
    await require_verifiable_writes(ledger)  # before anything is claimed or sent
    await refuse_if_erased(ledger, subject_id, events)
    values = [ledger.codec.encode(e) for e in events]
    replayed = False
    stored = idempotency.key_hash(ledger.secrets.blind_index_key, key) if key is not None else b""
    if key is not None:
        ids = [e.event_id for e in events]
        claim = await idempotency.claim(ledger.pool, stored, digest, subject_id, ids, values)
        if not claim.digest_matches:
            raise ProblemError(
                422,
                "Idempotency key reused",
                "this Idempotency-Key was used with a different request; use a new key",
                errors=[field_error("Idempotency-Key", "already used for another request")],
                kind="idempotency-key-reused",
            )
        if not claim.first:
            replayed = True
            values = claim.record_values
            events = [ledger.codec.decode(v) for v in values]
            if claim.acked is not None:
                api_metrics.count_commands(events, replayed)
                return events, claim.acked, replayed
            known = await idempotency.projected_positions(ledger.pool, claim.event_ids)
            if len(known) == len(events):
                api_metrics.count_commands(events, replayed)
                return events, [known[e.event_id] for e in events], replayed
    try:
        positions = await ledger.publisher.publish(list(zip(events, values, strict=True)))
    except BrokerUnavailable:
        retry = "retry with the same Idempotency-Key" if key else "retry with an Idempotency-Key"
        raise unavailable(
            f"the event log did not acknowledge in time; nothing is confirmed: {retry}", 2
        ) from None
    api_metrics.count_commands(events, replayed)
    if key is not None:
        # the events are in the log: a failure to note it only costs a retry a re-send
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await idempotency.record_ack(ledger.pool, stored, positions)
    return events, positions, replayed


def command_endpoint(route: str, build: Builder) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        ledger = ledger_of(request)
        subject_id = check_subject_id(request.path_params["subject_id"])
        key = idempotency_key(request)
        body = await read_json_object(request)
        now = datetime.now(UTC)
        events = build(Fields(body), Context(subject_id, now, ledger.catalogue))
        # only a keyed request is ever compared with another
        digest = idempotency.request_digest(route, subject_id, body) if key is not None else b""
        logged, positions, replayed = await append(
            ledger, events, key=key, digest=digest, subject_id=subject_id
        )
        return created(logged, positions, replayed)

    endpoint.__name__ = "command_" + route.replace("/", "_")
    return endpoint


def created(
    events: list[Event],
    positions: Positions,
    replayed: bool,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """The 201 answer; `extra` adds route-specific fields."""
    main, (partition, offset) = events[-1], positions[-1]
    body: dict[str, Any] = {
        "event_id": str(main.event_id),
        "type": main.type,
        "subject_id": main.subject_id,
        "recorded_at": rfc3339(main.recorded_at),
        "token": encode_token(partition, offset + 1),
    }
    if len(events) > 1:
        body["events"] = [{"event_id": str(e.event_id), "type": e.type} for e in events]
    body.update(extra or {})
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return JSONResponse(body, 201, headers=headers)
