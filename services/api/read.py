"""Query endpoints: decisions, a subject's state and history, the catalogue, health
(readiness: services/api/readiness.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from projections import journal
from projections.outdating import NO_NOTICES, Notices
from projections.state import ALL, Fact, FactKey, covering
from schemas.events import CHANNELS, CONSENT_GRANTED, rfc3339
from services.api import as_of
from services.api import openapi_responses as answers
from services.api.body_schemas import SUBJECT
from services.api.projector_status import require_fresh
from services.bootstrap import Ledger
from services.http.access_logging import record_read
from services.http.app_state import caller_of, ledger_of, purpose_history_of
from services.http.body import Fields
from services.http.openapi_parts import LOOKUP, MIN_TOKEN, PROBLEM, TIME, query_param
from services.http.subjects import (
    LOOKUP_PARAMETERS,
    UnknownIdentifier,
    lookup_fields,
    path_subject,
    subject_from_query,
    wait_for_token,
)
from services.identity.api_keys import AUDIT, permits
from services.ledger.partitioning import partition_for
from services.ledger.tokens import encode_token
from services.rules.as_of_decision import decide_as_of, purposes_as_of
from services.rules.catalogue import Catalogue, Purpose
from services.rules.decisions import Decision, decide, retired_purpose, unknown_subject
from services.telemetry import api_metrics


def _iso(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment else None


async def _state(ledger: Ledger, subject_id: str) -> tuple[dict[FactKey, Fact], str, Notices]:
    """The subject's state, its token and the notices its decisions see (notices only when
    the subject holds a grant: nothing else in a decision depends on them)."""
    partition = partition_for(subject_id, ledger.partitions)
    facts, position, applied = await ledger.states.get((subject_id, partition))
    granted = any(f.event_type == CONSENT_GRANTED for f in facts.values())
    published = await ledger.notices.covering(applied) if granted else NO_NOTICES
    return facts, encode_token(partition, position), published


DECISION_PATH: Final = "/v1/decision"
HEALTHZ_PATH: Final = "/healthz"


async def _retired_answer(
    request: Request,
    f: Fields,
    subject_id: str | None,
    purpose: Purpose,
    channel: str,
    at: datetime | None,
    made: Decision,
) -> JSONResponse:
    """A purpose retired by the instant asked about: denied whatever the subject's history."""
    api_metrics.count_decision(
        api_metrics.AS_OF if at else api_metrics.SINGLE, made.reason, made.allowed
    )
    if at is not None and subject_id is not None:
        await record_read(request, subject_id)  # as the as-of answers are
    body = {"subject_id": subject_id, "purpose": purpose.id, "channel": channel}
    stamp = as_of.stamp(None, at) if at is not None else {"token": None}
    return JSONResponse(
        _shown({**body, **_decision_json(made), **stamp}, _pseudonym_hidden(request, f))
    )


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "basis": decision.basis,
        "evidence": [str(e) for e in decision.evidence],
    }


async def decision(request: Request) -> JSONResponse:
    ledger = ledger_of(request)
    f = await lookup_fields(request)
    at = as_of.at_param(f)
    # as of an instant, the purpose and its channels are those of the version in force then;
    # a purpose retired by then is decided `not_in_catalogue` with its last definition
    history = purpose_history_of(ledger)
    retired = history.retired_at(at)
    named = (
        purposes_as_of(history, at) if at is not None else {**ledger.catalogue.purposes, **retired}
    )
    pid = f.choice("purpose", tuple(named), required=True)
    purpose = named.get(pid) if pid else None
    channel = f.choice("channel", purpose.channels if purpose else (), required=True)
    # wait first: an identifier linked just before min_token's position must be found
    await wait_for_token(ledger, f)
    subject_id: str | None
    try:
        subject_id = await subject_from_query(ledger, f, at=at)
    except UnknownIdentifier:
        subject_id = None
    f.finish()
    assert purpose is not None and channel is not None
    if purpose.id in retired:
        denied = (
            decide_as_of(history, purpose.id, channel, at, None)
            if at is not None
            else retired_purpose(purpose)
        )
        assert denied is not None  # the purpose and channel were checked as of `at`
        return await _retired_answer(request, f, subject_id, purpose, channel, at, denied)
    await require_fresh(ledger)  # after validation: bad input is still a 4xx
    if at is not None:
        if subject_id is not None:
            await record_read(request, subject_id)
        known = await as_of.known(ledger, subject_id, at) if subject_id is not None else None
        as_of_made = (
            decide_as_of(history, purpose.id, channel, at, known.state, known.notices)
            if known
            else decide_as_of(history, purpose.id, channel, at, None)
        )
        assert as_of_made is not None  # the purpose and channel were checked as of `at`
        made = as_of_made
        api_metrics.count_decision(api_metrics.AS_OF, made.reason, made.allowed)
        return JSONResponse(
            {
                "subject_id": subject_id,
                "purpose": purpose.id,
                "channel": channel,
                **_decision_json(made),
                **as_of.stamp(known, at),
            }
        )
    hidden = _pseudonym_hidden(request, f)
    if subject_id is None:
        unknown = unknown_subject(purpose)
        api_metrics.count_decision(api_metrics.SINGLE, unknown.reason, unknown.allowed)
        return JSONResponse(
            _shown(
                {
                    "subject_id": None,
                    "purpose": purpose.id,
                    "channel": channel,
                    **_decision_json(unknown),
                    "token": None,
                },
                hidden,
            )
        )
    facts, token, published = await _state(ledger, subject_id)
    made = decide(facts, purpose, channel, datetime.now(UTC), published)
    api_metrics.count_decision(api_metrics.SINGLE, made.reason, made.allowed)
    answer = _decision_json(made)
    return JSONResponse(
        _shown(
            {
                "subject_id": subject_id,
                "purpose": purpose.id,
                "channel": channel,
                **answer,
                "token": token,
            },
            hidden,
        )
    )


#: what a decision by e-mail or phone leaves out for a key without the audit scope
HIDDEN_FROM_DECIDE: Final = ("subject_id", "evidence")


def _pseudonym_hidden(request: Request, f: Fields) -> bool:
    """Whether this decision answers an `email=` / `phone=` lookup for a key without the audit
    (or admin) scope. Such a key (a marketing tool's) learns the decision, not the subject id
    the address resolves to, nor the evidence event ids, which name the subject's events: live
    decisions are not access-logged, so it must not become an address-to-id resolver."""
    caller = caller_of(request)
    by_identifier = any(f.data.get(name) is not None for name in LOOKUP_PARAMETERS)
    return by_identifier and not (caller is not None and permits(caller.scopes, AUDIT))


def _shown(body: dict[str, Any], hidden: bool) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in HIDDEN_FROM_DECIDE} if hidden else body


def _scope(fact: Fact) -> dict[str, str | None]:
    names = {
        "consent": ("purpose", "channel"),
        "dm_objection": (None, "channel"),
        "processing_objection": ("purpose", None),
        "restriction": ("ground", "purpose"),
        "relationship": ("basis", "purpose"),
    }[fact.kind]
    out: dict[str, str | None] = {}
    for name, value in zip(names, (fact.scope_a, fact.scope_b), strict=True):
        if name is not None:
            out[name] = None if value == ALL else value
    return out


def _fact_json(fact: Fact) -> dict[str, Any]:
    return {
        "type": fact.event_type,
        "event_id": str(fact.event_id),
        **_scope(fact),
        "occurred_at": _iso(fact.occurred_at),
        **({"until": _iso(fact.until)} if fact.until else {}),
        **({"outcome": fact.outcome} if fact.outcome else {}),
    }


_ACTIVE_TYPES = {
    "DirectMarketingObjected",
    "ProcessingObjected",
    "ProcessingRestricted",
    "RelationshipRecorded",
}


def _active(facts: Mapping[FactKey, Fact], kind: str, now: datetime) -> list[dict[str, Any]]:
    """Facts of `kind` that are in force: not lifted or ended by a later covering event."""
    out = []
    for fact in facts.values():
        if fact.kind != kind or covering(facts, kind, fact.scope_a, fact.scope_b) is not fact:
            continue
        upheld = fact.event_type == "ProcessingObjectionResolved" and fact.outcome == "upheld"
        expired = fact.until is not None and fact.until <= now
        if (fact.event_type in _ACTIVE_TYPES or upheld) and not expired:
            out.append(_fact_json(fact))
    return sorted(out, key=lambda x: str(x["occurred_at"]))


def _purpose_state(
    facts: Mapping[FactKey, Fact],
    purpose: Purpose,
    now: datetime,
    published: Notices = NO_NOTICES,
) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for channel in purpose.channels:
        d = decide(facts, purpose, channel, now, published)
        setter = d.decided_by
        channels[channel] = {
            **_decision_json(d),
            "since": _iso(setter.occurred_at) if setter else None,
            "event_id": str(setter.event_id) if setter else None,
        }
    reasons = {c["reason"] for c in channels.values()}
    allowed = {c["allowed"] for c in channels.values()}
    return {
        "purpose": purpose.id,
        "basis": purpose.basis,
        "direct_marketing": purpose.direct_marketing,
        "status": reasons.pop() if len(reasons) == 1 else "mixed",
        "allowed": allowed.pop() if len(allowed) == 1 else "partly",
        "channels": channels,
    }


def consent_json(
    catalogue: Catalogue,
    facts: Mapping[FactKey, Fact],
    now: datetime,
    published: Notices = NO_NOTICES,
) -> dict[str, Any]:
    """The consent state's body (purposes, objections, restrictions, relationships) at `now`:
    shared by the live answer, the as-of answer and the access export. `published` are the
    privacy notices the decisions see (a grant may be outdated by a material change)."""
    return {
        "purposes": [_purpose_state(facts, p, now, published) for p in catalogue.purposes.values()],
        "objections": _active(facts, "dm_objection", now)
        + _active(facts, "processing_objection", now),
        "restrictions": _active(facts, "restriction", now),
        "relationships": _active(facts, "relationship", now),
    }


async def consent_state(request: Request) -> JSONResponse:
    ledger = ledger_of(request)
    f = await lookup_fields(request)
    at = as_of.at_param(f)
    await wait_for_token(ledger, f)
    subject_id = await path_subject(ledger, request, f, at)
    f.finish()
    await record_read(request, subject_id)
    if at is not None:
        known = await as_of.known(ledger, subject_id, at)
        catalogue = as_of.catalogue_at(ledger, at)
        body = consent_json(catalogue, known.state, at, known.notices)
        return JSONResponse({"subject_id": subject_id, **body, **as_of.stamp(known, at)})
    facts, token, published = await _state(ledger, subject_id)
    body = consent_json(ledger.catalogue, facts, datetime.now(UTC), published)
    return JSONResponse({"subject_id": subject_id, **body, "token": token})


async def subject_events(request: Request) -> Response:
    ledger = ledger_of(request)
    f = await lookup_fields(request)
    await wait_for_token(ledger, f)
    subject_id = await path_subject(ledger, request, f)
    limit = _int(f, "limit", 1000, 1, 10000)
    after = _int(f, "after_offset", -1, -1, 2**62)
    f.finish()
    await record_read(request, subject_id)
    partition = partition_for(subject_id, ledger.partitions)
    events = await journal.history_json(
        ledger.pool, subject_id, after=(partition, after), limit=limit
    )
    body = f'{{"subject_id":{json.dumps(subject_id)},"events":{events}}}'
    return Response(body, media_type="application/json")


def _int(f: Fields, name: str, default: int, low: int, high: int) -> int:
    raw = f.raw(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = low - 1
    if not low <= value <= high:
        f.error(name, f"must be a whole number from {low} to {high}")
        return default
    return value


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


#: `at=`: answer as the ledger would have then (services/api/as_of.py)
AT: Final = query_param("at", schema=TIME)


def decision_operation(catalogue: Catalogue) -> dict[str, Any]:
    choose = {"purpose": list(catalogue.ids), "channel": list(CHANNELS)}
    chosen = [query_param(name, True, {"type": "string", "enum": v}) for name, v in choose.items()]
    return {
        "parameters": [query_param("subject_id"), *LOOKUP, *chosen, AT, MIN_TOKEN],
        "responses": {"200": answers.DECISION, "4XX": PROBLEM, "503": PROBLEM},
    }


CONSENT_OPERATION: Final = {
    "parameters": [SUBJECT, *LOOKUP, AT, MIN_TOKEN],
    "responses": {"200": answers.CONSENT, "4XX": PROBLEM, "503": PROBLEM},
}
EVENTS_OPERATION: Final = {
    "parameters": [
        SUBJECT,
        *LOOKUP,
        query_param("limit", schema={"type": "integer", "minimum": 1, "maximum": 10000}),
        query_param("after_offset", schema={"type": "integer", "minimum": -1}),
        MIN_TOKEN,
    ],
    "responses": {"200": answers.EVENTS, "4XX": PROBLEM, "503": PROBLEM},
}
HEALTHZ_OPERATION: Final = {"parameters": [], "responses": {"200": answers.HEALTHY, "4XX": PROBLEM}}
