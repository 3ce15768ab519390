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
from services.api.access_log import record_read
from services.api.lookups import lookup_fields
from services.api.read import _path_subject, _wait_for_token
from services.bootstrap import Ledger

PATH: Final = "/v1/subjects/{subject_id}/verify"


async def verify_subject(request: Request) -> JSONResponse:
    """Verify the subject's hash chain; `first_broken` names the first entry that fails."""
    ledger: Ledger = request.app.state.ledger
    f = await lookup_fields(request)
    await _wait_for_token(ledger, f)
    subject_id = await _path_subject(ledger, request, f)
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


def _query(name: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}


OPENAPI_PATHS: Final[dict[str, Any]] = {
    PATH: {
        "get": {
            "summary": "Verify the subject's hash chain from the journal's stored bytes",
            "parameters": [
                {
                    "name": "subject_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                },
                _query("email"),
                _query("phone"),
                _query("min_token"),
            ],
            "responses": {
                "200": {
                    "description": "the verdict: events, valid, first_broken, head",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": [
                                    "subject_id",
                                    "events",
                                    "valid",
                                    "first_broken",
                                    "head",
                                ],
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
                                            "reason": {
                                                "type": "string",
                                                "enum": list(BREAK_REASONS),
                                            },
                                            "detail": {"type": "string"},
                                        },
                                    },
                                    "head": {"type": ["string", "null"]},
                                },
                            }
                        }
                    },
                },
                "4XX": {
                    "description": "problem details (RFC 9457)",
                    "content": {"application/problem+json": {}},
                },
                "503": {
                    "description": "problem details (RFC 9457)",
                    "content": {"application/problem+json": {}},
                },
            },
        }
    }
}
