"""GET /audit/subjects/{subject_id}: the auditor's page of one subject, read in one snapshot so
the chain verified is the timeline shown; internal, never exposed publicly.

Design: docs/developers/design/proof.md
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

import asyncpg
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from projections import as_of, chain_store, notices
from projections.as_of import PurgedProof, Suppression
from projections.chain_verify import JournalEntry, SubjectVerifier
from projections.erasure import erasure_record
from projections.outdating import Notice
from projections.state import Position
from schemas import events as ev
from schemas.codec import CodecError, EventCodec
from schemas.events import Event
from services.bootstrap import Ledger
from services.http.access_logging import record_read
from services.http.app_state import ledger_of, purpose_history_of
from services.http.openapi_parts import LOOKUP, MIN_TOKEN, html_page, path_param
from services.http.problems import ProblemError
from services.http.route_spec import Endpoint
from services.http.staff_auth import signed_in_session
from services.http.subjects import lookup_fields, path_subject, wait_for_token
from services.identity import staff_sessions
from services.identity.context_sealing import context_opener
from services.proof import decision_history
from services.web import audit_chart, audit_view
from services.web.page_responses import DEPENDENCY_ERRORS, PageError, html_response
from services.web.staff_pages import staff_error

log = logging.getLogger(__name__)

PATH: Final = "/audit/subjects/{subject_id}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the page shows, read in one transaction."""

    entries: list[JournalEntry]
    verifier: SubjectVerifier
    events: list[tuple[Event, Position]]
    undecodable: int
    published: list[Notice]
    suppressed: list[Suppression]
    purged: PurgedProof | None
    erasure: audit_view.Erasure | None
    end: datetime


async def read_snapshot(
    conn: asyncpg.Connection, codec: EventCodec, subject_id: str, now: datetime
) -> Snapshot:
    """The subject's journal entries (verified and decoded), the notices, the suppression
    entries of every identifier it ever held and its erasure record. The chart ends `now`, or
    at the latest recorded_at when an API clock ran ahead."""
    verifier = SubjectVerifier(subject_id, codec)
    entries: list[JournalEntry] = []
    events: list[tuple[Event, Position]] = []
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for entry in chain_store.subject_entries(conn, subject_id):
            verifier.feed(entry)
            entries.append(entry)
            try:
                events.append((codec.decode(entry.value), (entry.partition, entry.offset)))
            except CodecError:
                continue  # verification reports it; the chart leaves it out
        end = max([now, *(e.recorded_at for e, _ in events)])
        granted = any(e.type == ev.CONSENT_GRANTED for e, _ in events)
        published = await notices.all_notices(conn) if granted else []
        held = sorted(
            {
                (str(e.data["identifier_type"]), bytes(e.data["blind_index"]))
                for e, _ in events
                if e.type == ev.IDENTIFIER_LINKED
            }
        )
        suppressed = await as_of.suppressions(conn, held, end)
        purged = await as_of.purged_proof(conn, subject_id)
        erased = await erasure_record(conn, subject_id)
    erasure = (
        audit_view.Erasure(
            erased["erased_at"],
            erased["ground"],
            erased["purged_at"],
            erased["purged_events"],
            bytes(erased["chain_head"]).hex() if erased["chain_head"] is not None else None,
        )
        if erased
        else None
    )
    return Snapshot(
        entries,
        verifier,
        events,
        len(entries) - len(events),
        published,
        suppressed,
        purged,
        erasure,
        end,
    )


def render(
    ledger: Ledger,
    subject_id: str,
    snap: Snapshot,
    now: datetime,
    data_key: bytes | None = None,
    csrf_token: str | None = None,
) -> str:
    """The page (pure, CPU-bound: the route runs it off the event loop); contexts show their
    personal fields decrypted with the subject's `data_key` while it exists; a staff
    session's `csrf_token` puts Sign out in its header."""
    found = decision_history.bands(
        snap.events,
        purpose_history_of(ledger),
        snap.end,
        snap.published,
        snap.suppressed,
        snap.purged,
    )
    broken = snap.verifier.first_broken
    rows = audit_view.timeline(snap.entries, broken, context_opener(subject_id, data_key))
    number = next((r.number for r in rows if r.broken), None)
    verification = audit_view.Verification(
        valid=snap.verifier.valid,
        events=snap.verifier.events,
        head=snap.verifier.head.hex() if snap.verifier.events else None,
        broken=broken,
        broken_number=number,
    )
    return audit_view.subject_page(
        controller=ledger.settings.controller_name,
        subject_id=subject_id,
        generated_at=now,
        rows=rows,
        chart=audit_chart.chart(found, snap.end),
        decisions=audit_view.decision_rows(found, rows),
        verification=verification,
        erasure=snap.erasure,
        undecodable=snap.undecodable,
        csrf_token=csrf_token,
    )


def audit_errors(endpoint: Endpoint) -> Endpoint:
    """A failure is an HTML page too. The page is internal, so a refusal says why (problem
    details never echo an e-mail address or phone number)."""

    @functools.wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except PageError as exc:
            error = exc
        except ProblemError as exc:
            heading = {
                404: "Unknown subject",
                503: "Please try again",
            }.get(exc.status, "This request cannot be answered")
            error = PageError(exc.status, heading, exc.detail, exc.headers)
        except DEPENDENCY_ERRORS as exc:
            log.warning("audit page unavailable: %s", type(exc).__name__)
            error = PageError(503, "Please try again", "The ledger's database is unavailable.")
        except Exception:
            log.exception("unexpected error on the audit page")
            error = PageError(500, "Something went wrong", "The page failed; retry later.")
        return staff_error(request, error.status, error.heading, error.message, error.headers)

    return wrapped


@audit_errors
async def subject(request: Request) -> Response:
    """The auditor's page of one subject; 404 when the ledger knows nothing of it."""
    ledger = ledger_of(request)
    f = await lookup_fields(request)
    await wait_for_token(ledger, f)
    subject_id = await path_subject(ledger, request, f)
    f.finish()
    await record_read(request, subject_id)
    now = datetime.now(UTC)
    async with ledger.pool.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)  # the pool's proxy is a connection to the stubs
        snap = await read_snapshot(conn, ledger.codec, subject_id, now)
    if not snap.entries and snap.erasure is None:
        raise PageError(
            404, "Unknown subject", f"The ledger holds no event of subject {subject_id}."
        )
    data_key = await ledger.data_keys.existing(subject_id)
    session = signed_in_session(request)
    token = staff_sessions.csrf_token(session) if session else None
    page = await run_in_threadpool(render, ledger, subject_id, snap, now, data_key, token)
    return html_response(page)


SUBJECT_PAGE_OPERATION: Final[dict[str, Any]] = {
    "summary": "Auditor's page of a subject (internal: timeline, decisions over time,"
    " verification, exports)",
    "parameters": [path_param("subject_id"), *LOOKUP, MIN_TOKEN],
    "responses": {
        "200": html_page("the page"),
        "404": html_page("unknown subject or identifier"),
        "4XX": html_page("the request cannot be answered"),
        "503": html_page("the ledger is unavailable"),
    },
}
