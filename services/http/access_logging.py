"""Write who read a subject's data to the `access_log` table (read back by
GET /v1/access-log, services/api/access_log.py), before the data is returned.

A read of one subject's recorded data (consent state, live or as of an instant; events;
history; export; a consent receipt; the auditor's page; an as-of decision; the hash-chain
check; a rights request, which names its subject) is written here: the key's id and name,
when, which subject, which route. If the row cannot be written the read fails closed with 503,
so no read goes unrecorded. The live decision is not logged: it is the one question marketing
systems ask, at volume, and its answer is all it reveals. Rows are kept; the subject id is
pseudonymous, and after an erasure nothing links it to a person.
"""

from __future__ import annotations

import logging
from typing import Final

import asyncpg
from starlette.requests import Request

from services.http.app_state import caller_of, ledger_of
from services.http.problems import instance_of, unavailable

log = logging.getLogger(__name__)

INSERT: Final = """
INSERT INTO access_log (subject_id, key_id, key_name, method, route) VALUES ($1, $2, $3, $4, $5)
"""


async def record_read(request: Request, subject_id: str) -> None:
    """Log that the request's caller reads `subject_id`; 503 when the row cannot be written."""
    await record_reads(request, [subject_id])


async def record_reads(request: Request, subject_ids: list[str]) -> None:
    """Log that the request's caller reads each of `subject_ids`, in one statement."""
    if not subject_ids:
        return
    ledger = ledger_of(request)
    caller = caller_of(request)
    if caller is None:  # a route that logs reads always checks a key first
        raise RuntimeError(f"{request.url.path} logs a read but checked no API key")
    route = instance_of(request) or request.url.path
    rows = [(s, caller.key_id, caller.name, request.method, route) for s in subject_ids]
    try:
        await ledger.pool.executemany(INSERT, rows)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("could not write the access log: %s", type(exc).__name__)
        raise unavailable("the read could not be logged, so it is refused; retry shortly") from None
