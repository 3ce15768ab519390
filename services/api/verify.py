"""GET /v1/subjects/{subject_id}/verify: recompute the subject's hash chain from the journal's
stored bytes (projections/hash_chain.py) and say whether, and where, it breaks."""

from __future__ import annotations

from typing import Any, Final, cast

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse

from projections import chain_store
from projections.chain_verify import BREAK_REASONS
from schemas.codec import default_codec
from services.http.access_logging import record_read
from services.http.app_state import ledger_of
from services.http.openapi_parts import LOOKUP, MIN_TOKEN, path_param, problem_answer
from services.http.subjects import lookup_fields, path_subject, wait_for_token

PATH: Final = "/v1/subjects/{subject_id}/verify"


async def verify_subject(request: Request) -> JSONResponse:
    """Verify the subject's hash chain; `first_broken` names the first entry that fails."""
    ledger = ledger_of(request)
    f = await lookup_fields(request)
    await wait_for_token(ledger, f)
    subject_id = await path_subject(ledger, request, f)
    f.finish()
    await record_read(request, subject_id)  # by identifier it turns an address into a subject
    async with ledger.pool.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)  # the pool's proxy is a connection to the stubs
        verifier = await chain_store.verify_subject(conn, default_codec(), subject_id)
    broken = verifier.first_broken
    return JSONResponse(
        {
            "subject_id": subject_id,
            "events": verifier.events,
            "valid": verifier.valid,
            "first_broken": broken.as_json() if broken else None,
            # the recomputed hash of the latest entry: keep it to detect later rewrites
            "head": verifier.head.hex() if verifier.events else None,
        }
    )


OPERATION: Final[dict[str, Any]] = {
    "summary": "Verify the subject's hash chain from the journal's stored bytes",
    "parameters": [path_param("subject_id"), *LOOKUP, MIN_TOKEN],
    "responses": {
        "200": {
            "description": "the verdict: events, valid, first_broken, head",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["subject_id", "events", "valid", "first_broken", "head"],
                        "properties": {
                            "subject_id": {"type": "string"},
                            "events": {"type": "integer"},
                            "valid": {"type": "boolean"},
                            "first_broken": {
                                "type": ["object", "null"],
                                "properties": {
                                    "event_id": {"type": "string", "format": "uuid"},
                                    "partition": {"type": "integer"},
                                    "offset": {"type": "integer"},
                                    "reason": {"type": "string", "enum": list(BREAK_REASONS)},
                                    "detail": {"type": "string"},
                                },
                            },
                            "head": {"type": ["string", "null"]},
                        },
                    }
                }
            },
        },
        "4XX": problem_answer("problem details (RFC 9457)"),
        "503": problem_answer("problem details (RFC 9457)"),
    },
}
