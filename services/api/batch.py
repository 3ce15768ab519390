"""POST /v1/decisions/batch: up to 100,000 recipients against one snapshot of the projections.

The answer lists the allowed recipients and the reason for each denied one, with the token of
the snapshot it used. With a `campaign_id`, a ContactCheckPerformed record goes to the checks
topic first and the answer comes only after the broker's ack (503 otherwise): a send must not
go out on a check that left no evidence. E-mail addresses stay in this request and its answer:
they are never logged, written to the database or put on a topic.
The same concept as services/rules/batch.py, on the HTTP side.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse

from projections.batch_snapshot import read_snapshot
from schemas.check_codec import ContactCheck, check_headers, encode_check
from schemas.events import rfc3339
from schemas.record_mac import CHECKS
from services.api import openapi_responses as answers
from services.api.batch_request import MAX_BODY, MAX_TOKENS, BatchRequest, parse_batch
from services.api.projector_status import require_fresh
from services.bootstrap import Ledger
from services.http.app_state import ledger_of
from services.http.body import read_json_object
from services.http.openapi_parts import problem_answer, request_body
from services.http.problems import field_error, invalid, unavailable
from services.identity.identities import email_indexes
from services.ledger.errors import BrokerUnavailable
from services.ledger.tokens import TokenError, encode_snapshot_token, token_positions
from services.proof import contact_checks as checks
from services.rules.batch import (
    MAX_RECIPIENTS,
    BatchResult,
    evaluate_emails,
    evaluate_subjects,
    reconsent_purpose,
    relevance,
    verdicts,
)
from services.rules.decisions import decide
from services.telemetry import api_metrics


async def _wait_for_tokens(ledger: Ledger, tokens: list[str]) -> None:
    """Honour `min_tokens`: wait, bounded, until the projection has applied each position."""
    wanted: dict[int, int] = {}
    bad = []
    for index, token in enumerate(tokens):
        try:
            positions = token_positions(token)
            if any(partition >= ledger.partitions for partition, _ in positions):
                raise TokenError("names a partition the event topic does not have")
            for partition, position in positions:
                wanted[partition] = max(position, wanted.get(partition, 0))
        except TokenError as exc:
            bad.append(
                field_error(f"min_tokens.{index}", str(exc), path=("min_tokens", str(index)))
            )
    if bad:
        raise invalid(bad, 400)
    deadline = asyncio.get_running_loop().time() + ledger.settings.read_wait_ms / 1000
    for partition, position in sorted(wanted.items()):
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        if not await ledger.progress.wait_for(partition, position, remaining):
            raise unavailable(
                "the projection has not yet applied every min_tokens position; retry shortly", 1
            )


async def batch_decisions(request: Request) -> JSONResponse:
    ledger = ledger_of(request)
    body = await read_json_object(request, MAX_BODY)
    # up to 100k entries to check (a bad list costs ~0.2 s): a thread lets the loop serve others
    ask = await asyncio.to_thread(parse_batch, body, ledger.catalogue)
    await _wait_for_tokens(ledger, ask.min_tokens)
    await require_fresh(ledger)
    purpose, channel, emails = ask.purpose, ask.channel, ask.kind == "emails"
    key = ledger.secrets.blind_index_key
    # CPU-bound for 100k addresses: a thread lets the event loop serve other requests
    index_of = await asyncio.to_thread(email_indexes, ask.recipients, key) if emails else {}
    now = datetime.now(UTC)
    snapshot = await read_snapshot(
        ledger.pool,
        topic=ledger.settings.topic,
        partitions=ledger.partitions,
        relevance=relevance(purpose, channel),
        now=now,
        subjects=() if emails else ask.recipients,
        email_indexes=list(set(index_of.values())),
        reconsent_purpose=reconsent_purpose(purpose),
    )
    decided = verdicts(snapshot.groups, purpose, channel, now, snapshot.notices)
    default = decide({}, purpose, channel, now, snapshot.notices)
    if emails:
        result = evaluate_emails(ask.recipients, index_of, snapshot.linked, decided, default)
    else:
        result = evaluate_subjects(ask.recipients, decided, default)
    token = encode_snapshot_token(snapshot.positions)
    check = None
    if ask.campaign_id is not None:
        check = await _record(ledger, ask, result, index_of, token, now)

    def reason_of(recipient: str) -> str:
        subject = snapshot.linked[index_of[recipient]] if emails else recipient
        return decided.get(subject, default).reason

    api_metrics.count_batch(api_metrics.batch_reasons(result, reason_of).items())
    return JSONResponse(
        {
            "purpose": purpose.id,
            "channel": channel,
            "token": token,
            "checked_at": rfc3339(now),
            "counts": {
                "requested": result.requested,
                "allowed": len(result.allowed),
                "denied": len(result.denied),
                "denied_by_reason": result.denied_by_reason(),
            },
            "allowed": result.allowed,
            "denied": [{"recipient": r, "reason": reason} for r, reason in result.denied],
            "check": check,
        }
    )


async def _record(
    ledger: Ledger,
    ask: BatchRequest,
    result: BatchResult,
    index_of: dict[str, bytes],
    token: str,
    now: datetime,
) -> dict[str, Any]:
    """Put the evidence on the checks topic and wait for the ack; 503 without it."""
    assert ask.campaign_id is not None
    key = ledger.secrets.blind_index_key
    if ask.kind == "emails":
        recipient_keys = checks.email_keys(ask.recipients, index_of, key)
        allowed_keys = checks.email_keys(result.allowed, index_of, key)
    else:
        recipient_keys = checks.subject_keys(ask.recipients)
        allowed_keys = checks.subject_keys(result.allowed)
    check = checks.contact_check(
        check_id=uuid.uuid4(),
        campaign_id=ask.campaign_id,
        purpose=ask.purpose.id,
        channel=ask.channel,
        checked_at=now,
        snapshot_token=token,
        recipient_kind=ask.kind,
        result=result,
        recipient_keys=recipient_keys,
        allowed_keys=allowed_keys,
    )
    return await publish_check(ledger, check)


async def publish_check(ledger: Ledger, check: ContactCheck) -> dict[str, Any]:
    """Put a check on the checks topic (keyed by its campaign) and wait for the ack; 503
    without it. Also the audience's (services/api/audiences.py)."""
    topic = ledger.settings.checks_topic
    try:
        partition, offset = await ledger.publisher.publish_record(
            topic,
            CHECKS,
            check.campaign_id.encode("utf-8"),
            encode_check(check),
            check_headers(check),
        )
    except BrokerUnavailable:
        raise unavailable(
            "the contact-check record was not acknowledged in time; nothing is confirmed:"
            " do not send on this check, run it again",
            2,
        ) from None
    return {
        "check_id": str(check.check_id),
        "topic": topic,
        "partition": partition,
        "offset": offset,
    }


_LIST = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_RECIPIENTS}
OPERATION: Final[dict[str, Any]] = {
    "summary": "Decide for up to 100,000 recipients against one snapshot",
    "requestBody": request_body(
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["purpose", "channel"],
            "properties": {
                "purpose": {"type": "string"},
                "channel": {"type": "string"},
                "campaign_id": {"type": "string", "maxLength": 200},
                "subjects": _LIST,
                "emails": _LIST,
                "min_tokens": {
                    "type": "array",
                    "items": {"type": "string"},
                    "maxItems": MAX_TOKENS,
                },
            },
            # exactly one list; the other absent or null
            "oneOf": [
                {"required": [name], "properties": {name: {"type": "array"}}}
                for name in ("subjects", "emails")
            ],
        }
    ),
    "responses": {
        "200": answers.BATCH,
        "4XX": problem_answer("problem details (RFC 9457)"),
        "503": problem_answer("problem details (RFC 9457)"),
    },
}
