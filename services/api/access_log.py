"""Who read a subject's data: the `access_log` table and GET /v1/access-log.

A read of one subject's recorded data (consent state, live or as of an instant; events;
history; export; a consent receipt; the auditor's page; an as-of decision; the hash-chain
check; a rights request, which names its subject) is written here
before the data is returned: the key's id and name, when, which subject, which route. If the
row cannot be written the read fails closed with 503, so no read goes unrecorded. The live
decision is not logged: it is the one question marketing systems ask, at volume, and its
answer is all it reveals. Rows
are kept; the subject id is pseudonymous, and after an erasure nothing links it to a person.
"""

from __future__ import annotations

import logging
from typing import Any, Final
from urllib.parse import urlencode

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse

from schemas.events import rfc3339
from services.bootstrap import Ledger
from services.http.body import query_fields
from services.http.problems import instance_of, unavailable
from services.http.whole_numbers import whole_number_field
from services.identity.api_keys import Caller

log = logging.getLogger(__name__)

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
PATH: Final = "/v1/access-log"

INSERT: Final = """
INSERT INTO access_log (subject_id, key_id, key_name, method, route) VALUES ($1, $2, $3, $4, $5)
"""
PAGE: Final = """
SELECT id, read_at, key_id, key_name, method, route FROM access_log
WHERE subject_id = $1 AND id > $2 ORDER BY id LIMIT $3
"""


async def record_read(request: Request, subject_id: str) -> None:
    """Log that the request's caller reads `subject_id`; 503 when the row cannot be written."""
    await record_reads(request, [subject_id])


async def record_reads(request: Request, subject_ids: list[str]) -> None:
    """Log that the request's caller reads each of `subject_ids`, in one statement."""
    if not subject_ids:
        return
    ledger: Ledger = request.app.state.ledger
    caller: Caller = request.state.caller
    route = instance_of(request) or request.url.path
    rows = [(s, caller.key_id, caller.name, request.method, route) for s in subject_ids]
    try:
        await ledger.pool.executemany(INSERT, rows)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("could not write the access log: %s", type(exc).__name__)
        raise unavailable("the read could not be logged, so it is refused; retry shortly") from None


async def access_log(request: Request) -> JSONResponse:
    """GET /v1/access-log?subject_id=: the reads of a subject's data, oldest first, paged."""
    ledger: Ledger = request.app.state.ledger
    f = query_fields(request)
    subject_id = f.subject_id()
    limit = whole_number_field(f, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    after = whole_number_field(f, "after", 0, 0, 2**62)
    f.finish()
    assert subject_id is not None
    rows = await ledger.pool.fetch(PAGE, subject_id, after, limit + 1)
    reads = [
        {
            "at": rfc3339(r["read_at"]),
            "key_id": r["key_id"],
            "key_name": r["key_name"],
            "method": r["method"],
            "route": r["route"],
        }
        for r in rows[:limit]
    ]
    following = None
    if len(rows) > limit:
        query = {"subject_id": subject_id, "limit": limit, "after": rows[limit - 1]["id"]}
        following = f"{PATH}?{urlencode(query)}"
    return JSONResponse({"subject_id": subject_id, "reads": reads, "next": following})


def _query(name: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": "string"}}


_PROBLEM: Final = {"description": "problem", "content": {"application/problem+json": {}}}
OPENAPI_PATHS: Final[dict[str, Any]] = {
    PATH: {
        "get": {
            "summary": "Who read a subject's data: key id and name, when, which route",
            "parameters": [_query("subject_id", True), _query("limit"), _query("after")],
            "responses": {
                "200": {"description": "{subject_id, reads: [...], next}; `next` null on the last"},
                "4XX": _PROBLEM,
                "503": _PROBLEM,
            },
        }
    }
}
