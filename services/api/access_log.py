"""GET /v1/access-log: who read a subject's data, oldest first, paged (the rows
services/http/access_logging.py writes before every read of a subject's recorded data)."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse

from schemas.events import rfc3339
from services.api import openapi_responses as answers
from services.http.app_state import ledger_of
from services.http.body import query_fields
from services.http.openapi_parts import problem_answer, query_param
from services.http.whole_numbers import whole_number_field

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
PATH: Final = "/v1/access-log"

PAGE: Final = """
SELECT id, read_at, key_id, key_name, method, route FROM access_log
WHERE subject_id = $1 AND id > $2 ORDER BY id LIMIT $3
"""


async def access_log(request: Request) -> JSONResponse:
    """GET /v1/access-log?subject_id=: the reads of a subject's data, oldest first, paged."""
    ledger = ledger_of(request)
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


OPERATION: Final[dict[str, Any]] = {
    "summary": "Who read a subject's data: key id and name, when, which route",
    "parameters": [query_param("subject_id", True), query_param("limit"), query_param("after")],
    "responses": {
        "200": answers.ACCESS_LOG,
        "4XX": problem_answer("problem"),
        "503": problem_answer("problem"),
    },
}
