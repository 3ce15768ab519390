"""GET /v1/audiences: everyone allowed now for a purpose and channel, streamed as JSON lines or
CSV from one snapshot, for a sending tool to pull before a send.

One REPEATABLE READ transaction and a server-side cursor feed the whole answer, a chunk at a
time (services/rules/audience.py decides once per fact pattern, with the batch rules). With a
`campaign_id`, a first pass over the same snapshot puts a ContactCheckPerformed on the checks
topic, and the list leaves only after the broker's ack. Its SQL: projections/audiences.py.

Design: docs/developers/design/audiences.md
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from projections import audiences, notices, offsets
from projections.outdating import Notices
from schemas.check_codec import ContactCheck
from services.api import audience_exports
from services.api.audience_rows import (
    AudienceAsk,
    address_lines,
    end_lines,
    header_line,
    id_lines,
)
from services.api.batch import publish_check
from services.api.projector_status import require_fresh
from services.bootstrap import Ledger
from services.http.access_logging import record_reads
from services.http.app_state import ledger_of
from services.http.body import Fields, query_fields
from services.http.bounded_stream import BoundedStreamingResponse
from services.http.openapi_parts import problem_answer, query_param
from services.http.problems import ProblemError, unavailable
from services.http.subjects import wait_for_token
from services.identity.sealed_addresses import open_addresses
from services.ledger.tokens import encode_snapshot_token
from services.proof.contact_checks import SortedDigest
from services.rules.audience import NO_ADDRESS, AudienceTally, AudienceVerdicts, allowed_of
from services.rules.batch import reconsent_purpose, relevance
from services.rules.suppression import CHANNEL_IDENTIFIERS

log = logging.getLogger(__name__)

PATH: Final = "/v1/audiences"
FORMATS: Final = ("jsonl", "csv")
MEDIA_TYPES: Final = {"jsonl": "application/jsonl", "csv": "text/csv; charset=utf-8"}
#: rows fetched and written per step: bounded memory, and the loop is never held for long
CHUNK: Final = 5000
#: the snapshot's token, and the check's id when a campaign was checked
TOKEN_HEADER: Final = "Ledger-Snapshot-Token"
CHECK_HEADER: Final = "Ledger-Contact-Check-Id"
#: Retry-After of the 503 when every stream slot is taken
BUSY_RETRY_S: Final = 10


def _flag(f: Fields, name: str) -> bool:
    value = f.raw(name)
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    f.error(name, f"{str(value)[:20]!r} is not accepted", ["true", "false"])
    return False


def parse_ask(f: Fields, ledger: Ledger) -> AudienceAsk:
    """The query, or one 422 problem naming every bad field."""
    pid = f.choice("purpose", ledger.catalogue.ids, required=True)
    purpose = ledger.catalogue.get(pid) if pid else None
    channel = f.choice("channel", purpose.channels if purpose else (), required=True)
    fmt = f.choice("format", FORMATS, default="jsonl")
    with_addresses = _flag(f, "include_identifiers")
    reasons = _flag(f, "reasons")
    safe = _flag(f, "spreadsheet_safe")
    campaign_id = f.text("campaign_id", max_len=200, free_text=True)
    f.text("min_token", max_len=200)
    kind = CHANNEL_IDENTIFIERS.get(channel or "")
    if with_addresses and channel and kind is None:
        f.error("include_identifiers", f"channel {channel!r} has no e-mail or phone address")
    if safe and fmt == "jsonl":
        f.error("spreadsheet_safe", "applies to format=csv only (JSON lines hold no formulas)")
    f.finish()
    assert purpose is not None and channel is not None and fmt is not None
    addresses = kind if with_addresses else None
    return AudienceAsk(purpose, channel, fmt, addresses, reasons, campaign_id, safe)


def _verdicts(ask: AudienceAsk, now: datetime, published: Notices) -> AudienceVerdicts:
    return AudienceVerdicts(ask.purpose, ask.channel, now, published)


async def _everyone(
    conn: asyncpg.Connection,
    ask: AudienceAsk,
    now: datetime,
    published: Notices,
    *,
    prefetch: bool = False,
) -> AsyncGenerator[list[tuple[str, str]], None]:
    cutoff = published.cutoff(p, now) if (p := reconsent_purpose(ask.purpose)) else None
    chunks = audiences.everyone(
        conn,
        identifier_type=CHANNEL_IDENTIFIERS.get(ask.channel, ""),
        relevance=relevance(ask.purpose, ask.channel),
        now=now,
        cutoff=cutoff,
        chunk=CHUNK,
        prefetch=prefetch,
    )
    async with aclosing(chunks):  # a read ahead ends with this iterator, not after it
        async for chunk in chunks:
            yield chunk


async def _check(
    ledger: Ledger,
    conn: asyncpg.Connection,
    ask: AudienceAsk,
    now: datetime,
    published: Notices,
    token: str,
) -> dict[str, Any]:
    """The first pass: decide everyone, digest who was considered and who is allowed, and put
    the ContactCheckPerformed on the checks topic (503 without the broker's ack)."""
    assert ask.campaign_id is not None
    verdicts, tally = _verdicts(ask, now, published), AudienceTally()
    considered, allowed = SortedDigest(), SortedDigest()
    async with aclosing(_everyone(conn, ask, now, published, prefetch=True)) as chunks:
        async for chunk in chunks:
            for subject_id in allowed_of(chunk, verdicts, tally):
                allowed.add(f"subject:{subject_id}")
            for subject_id, _ in chunk:
                considered.add(f"subject:{subject_id}")
    check = ContactCheck(
        check_id=uuid.uuid4(),
        campaign_id=ask.campaign_id,
        purpose=ask.purpose.id,
        channel=ask.channel,
        checked_at=now,
        snapshot_token=token,
        recipient_kind="subjects",
        requested=tally.considered,
        allowed=tally.allowed,
        denied=tally.considered - tally.allowed,
        denied_by_reason=tally.by_reason(),
        recipients_digest=considered.hexdigest(),
        allowed_digest=allowed.hexdigest(),
    )
    return await publish_check(ledger, check)


@dataclass(slots=True)
class Held:
    """What one stream holds until it ends (besides its slot of LEDGER_AUDIENCE_MAX_STREAMS): a
    pooled connection in its snapshot's transaction, and the count of rows sent."""

    ledger: Ledger
    proxy: Any = None
    transaction: Any = None
    rows: int = 0

    async def release(self) -> None:
        """Roll back (read only: nothing to keep) and return the connection. When the request
        was cancelled mid-read, the connection may still be cancelling that read: the pool's
        release waits for it and rolls back itself."""
        try:
            if self.transaction is not None:
                await self.transaction.rollback()
        except asyncpg.InterfaceError:
            log.info("audience stream cut short: the pool rolls its transaction back")
        finally:
            if self.proxy is not None:
                await self.ledger.pool.release(self.proxy)


async def _slot(ledger: Ledger) -> None:
    """Take a stream slot now, or 503: a waiting stream would hold its request for nothing.
    (An unlocked semaphore's acquire returns without suspending, so none is taken between.)"""
    if ledger.audience_streams.locked():
        raise unavailable(
            f"{ledger.settings.audience_max_streams} audience streams are running; retry shortly",
            retry_after=BUSY_RETRY_S,
        )
    await ledger.audience_streams.acquire()


async def audience(request: Request) -> Response:
    if request.method == "HEAD":
        # a HEAD would run the whole stream (and a campaign's check) for headers only
        raise ProblemError(
            405,
            "Method not allowed",
            "an audience is pulled with GET; HEAD would decide (and with campaign_id, record a"
            " contact check for) a list nobody receives",
            headers={"Allow": "GET"},
            kind="method-not-allowed",
        )
    ledger = ledger_of(request)
    f = query_fields(request)
    ask = parse_ask(f, ledger)
    await wait_for_token(ledger, f)
    await require_fresh(ledger)  # a send goes out on this list: fail closed when stale
    settings = ledger.settings
    deadline_at = asyncio.get_running_loop().time() + settings.audience_deadline_s
    await _slot(ledger)
    held = Held(ledger)
    try:
        async with asyncio.timeout_at(deadline_at):
            now = datetime.now(UTC)
            held.proxy = await ledger.pool.acquire()
            conn = cast(asyncpg.Connection, held.proxy)  # the pool's proxy, to the stubs
            held.transaction = conn.transaction(isolation="repeatable_read", readonly=True)
            await held.transaction.start()
            await conn.execute(audiences.WORK_MEM)
            await conn.execute(audiences.statement_timeout(settings.audience_deadline_s))
            stored = await offsets.load(conn, settings.topic)
            token = encode_snapshot_token([stored.get(p, 0) for p in range(ledger.partitions)])
            published = await notices.load(conn)
            check = (
                await _check(ledger, conn, ask, now, published, token) if ask.campaign_id else None
            )
            check_id = check["check_id"] if check else None
            export = await audience_exports.start(request, ask, token, check_id, now)
    except BaseException:
        ledger.audience_streams.release()
        await held.release()
        raise
    headers = {TOKEN_HEADER: token, "Cache-Control": "no-store"}
    if check_id is not None:
        headers[CHECK_HEADER] = check_id

    def ended(cut_reason: str | None) -> None:
        # the slot is free at once, so a client's next pull after a whole stream is never
        # refused; the connection follows as soon as its rollback is done
        ledger.audience_streams.release()
        audience_exports.end(request, export, held.rows, cut_reason, held.release())

    return BoundedStreamingResponse(
        _stream(request, held, ask, now, published, token),
        deadline_at=deadline_at,
        idle_s=settings.audience_idle_s,
        on_end=ended,
        media_type=MEDIA_TYPES[ask.format],
        headers=headers,
    )


async def _stream(
    request: Request,
    held: Held,
    ask: AudienceAsk,
    now: datetime,
    published: Notices,
    token: str,
) -> AsyncGenerator[bytes, None]:
    """The rows, chunk by chunk, then the end line; `held.rows` counts the rows sent."""
    ledger, conn = held.ledger, cast(asyncpg.Connection, held.proxy)
    verdicts, tally = _verdicts(ask, now, published), AudienceTally()
    yield header_line(ask)
    # without addresses no other query shares the connection: the next chunk is read
    # while this one is decided and sent
    prefetch = ask.addresses is None
    async with aclosing(_everyone(conn, ask, now, published, prefetch=prefetch)) as chunks:
        async for chunk in chunks:
            allowed = allowed_of(chunk, verdicts, tally)
            if ask.addresses is None:
                if allowed:
                    yield id_lines(ask, allowed)
                    held.rows += len(allowed)
                continue
            sealed = await audiences.sealed_addresses(conn, ask.addresses, allowed)
            opened = await open_addresses(ledger.secrets.master, ask.addresses, sealed)
            # addresses are personal data: who read them is logged before they leave
            await record_reads(request, list(dict.fromkeys(s for s, _ in opened)))
            missing = len(set(allowed) - {s for s, _ in opened})
            tally.allowed -= missing
            tally.left_out[NO_ADDRESS] += missing
            if opened:
                yield address_lines(ask, opened)
                held.rows += len(opened)
    yield end_lines(ask, tally, held.rows, token)


OPERATION: Final[dict[str, Any]] = {
    "summary": "Stream everyone allowed now for a purpose and channel (JSON lines or CSV)",
    "parameters": [
        query_param("purpose", True),
        query_param("channel", True),
        query_param("format"),
        query_param("include_identifiers"),
        query_param("reasons"),
        query_param("campaign_id"),
        query_param("min_token"),
    ],
    "responses": {
        "200": {
            "description": "the audience, one row per subject (per address with"
            " include_identifiers); with reasons=true the counts follow the rows",
            "content": {
                "application/jsonl": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        "4XX": problem_answer("problem details (RFC 9457)"),
        "503": problem_answer("problem details (RFC 9457)"),
    },
}
