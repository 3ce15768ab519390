"""GET /v1/audiences: everyone allowed now for a purpose and channel, streamed as JSON lines or
CSV from one snapshot, for a sending tool to pull before a send.

One REPEATABLE READ transaction and a server-side cursor feed the whole answer, a chunk at a
time (services/rules/audience.py decides once per fact pattern, with the batch rules). With a
`campaign_id`, a first pass over the same snapshot puts a ContactCheckPerformed on the checks
topic, and the list leaves only after the broker's ack. Its SQL: projections/audiences.py.

Design: docs/developers/design/audiences.md
"""

from __future__ import annotations

import csv
import io
import json
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

import asyncpg
from starlette.requests import Request
from starlette.responses import StreamingResponse

from projections import audiences, notices, offsets
from projections.outdating import Notices
from schemas.check_codec import ContactCheck
from schemas.events import rfc3339
from services.api.batch import publish_check
from services.api.projector_status import require_fresh
from services.bootstrap import Ledger
from services.http.access_logging import record_reads
from services.http.app_state import caller_of, ledger_of
from services.http.body import Fields, query_fields
from services.http.openapi_parts import problem_answer, query_param
from services.http.subjects import wait_for_token
from services.identity.sealed_addresses import open_addresses
from services.ledger.tokens import encode_snapshot_token
from services.proof.contact_checks import SortedDigest
from services.rules.audience import NO_ADDRESS, AudienceTally, AudienceVerdicts, allowed_of
from services.rules.batch import reconsent_purpose, relevance
from services.rules.catalogue import Purpose
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


@dataclass(frozen=True, slots=True)
class AudienceAsk:
    purpose: Purpose
    channel: str
    format: str
    #: the channel's identifier type when addresses are asked for, else None
    addresses: str | None
    reasons: bool
    campaign_id: str | None


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
    campaign_id = f.text("campaign_id", max_len=200, free_text=True)
    f.text("min_token", max_len=200)
    kind = CHANNEL_IDENTIFIERS.get(channel or "")
    if with_addresses and channel and kind is None:
        f.error("include_identifiers", f"channel {channel!r} has no e-mail or phone address")
    f.finish()
    assert purpose is not None and channel is not None and fmt is not None
    addresses = kind if with_addresses else None
    return AudienceAsk(purpose, channel, fmt, addresses, reasons, campaign_id)


def header_line(ask: AudienceAsk) -> bytes:
    """The CSV header (JSON lines have none)."""
    if ask.format != "csv":
        return b""
    columns = ["subject_id", *([ask.addresses] if ask.addresses else [])]
    if ask.reasons:
        columns = ["record", *columns, "reason", "count"]
    return _csv([columns])


def id_lines(ask: AudienceAsk, subject_ids: Sequence[str]) -> bytes:
    """Rows without addresses, encoded in one join: subject ids match SUBJECT_ID_RE, so
    nothing in them needs quoting in CSV or escaping in JSON."""
    if not subject_ids:
        return b""
    if ask.format == "csv":
        lead, tail = ("subject,", ",,") if ask.reasons else ("", "")
        return (lead + (tail + "\r\n" + lead).join(subject_ids) + tail + "\r\n").encode()
    return ('{"subject_id":"' + '"}\n{"subject_id":"'.join(subject_ids) + '"}\n').encode()


def address_lines(ask: AudienceAsk, rows: Iterable[tuple[str, str]]) -> bytes:
    """(subject id, address) rows: an address is free text, quoted and escaped in full."""
    key = ask.addresses or "address"
    if ask.format == "csv":
        lead = ["subject"] if ask.reasons else []
        tail = ["", ""] if ask.reasons else []
        return _csv([[*lead, s, a, *tail] for s, a in rows])
    lines = (json.dumps({"subject_id": s, key: a}, ensure_ascii=False) for s, a in rows)
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def trailer(ask: AudienceAsk, tally: AudienceTally, rows: int, token: str) -> bytes:
    """With reasons=true: the counts, known only at the end (a JSON line, or CSV records)."""
    if not ask.reasons:
        return b""
    left_out = tally.by_reason()
    if ask.format == "csv":
        blanks = ["", ""] if ask.addresses else [""]
        records = [["allowed", *blanks, "", str(tally.allowed)]]
        records += [["left_out", *blanks, reason, str(n)] for reason, n in left_out.items()]
        return _csv(records)
    summary = {
        "summary": {
            "token": token,
            "considered": tally.considered,
            "allowed": tally.allowed,
            "rows": rows,
            "left_out_by_reason": left_out,
        }
    }
    return (json.dumps(summary) + "\n").encode("utf-8")


def _csv(records: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(records)
    return out.getvalue().encode("utf-8")


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


async def audience(request: Request) -> StreamingResponse:
    ledger = ledger_of(request)
    f = query_fields(request)
    ask = parse_ask(f, ledger)
    await wait_for_token(ledger, f)
    await require_fresh(ledger)  # a send goes out on this list: fail closed when stale
    now = datetime.now(UTC)
    proxy = await ledger.pool.acquire()
    conn = cast(asyncpg.Connection, proxy)  # the pool's proxy is a connection to the stubs
    transaction = conn.transaction(isolation="repeatable_read", readonly=True)
    try:
        await transaction.start()
        await conn.execute(audiences.WORK_MEM)
        stored = await offsets.load(conn, ledger.settings.topic)
        token = encode_snapshot_token([stored.get(p, 0) for p in range(ledger.partitions)])
        published = await notices.load(conn)
        check = await _check(ledger, conn, ask, now, published, token) if ask.campaign_id else None
    except BaseException:
        await _close(ledger, proxy, transaction)
        raise
    headers = {TOKEN_HEADER: token, "Cache-Control": "no-store"}
    if check is not None:
        headers[CHECK_HEADER] = check["check_id"]
    body = _stream(request, ledger, proxy, transaction, ask, now, published, token, check)
    return StreamingResponse(body, media_type=MEDIA_TYPES[ask.format], headers=headers)


async def _close(ledger: Ledger, proxy: Any, transaction: Any) -> None:
    """Roll back (read only: nothing to keep) and return the connection. When the request was
    cancelled mid-read (the client left), the connection may still be cancelling that read:
    the pool's release waits for it and rolls back itself."""
    try:
        await transaction.rollback()
    except asyncpg.InterfaceError:
        log.info("audience stream cut short: the pool rolls its transaction back")
    finally:
        await ledger.pool.release(proxy)


async def _stream(
    request: Request,
    ledger: Ledger,
    proxy: Any,
    transaction: Any,
    ask: AudienceAsk,
    now: datetime,
    published: Notices,
    token: str,
    check: dict[str, Any] | None,
) -> AsyncIterator[bytes]:
    """The rows, chunk by chunk, then the trailer; the export is logged when it ends."""
    conn = cast(asyncpg.Connection, proxy)
    verdicts, tally, rows, complete = _verdicts(ask, now, published), AudienceTally(), 0, False
    try:
        yield header_line(ask)
        # without addresses no other query shares the connection: the next chunk is read
        # while this one is decided and sent
        prefetch = ask.addresses is None
        async with aclosing(_everyone(conn, ask, now, published, prefetch=prefetch)) as chunks:
            async for chunk in chunks:
                allowed = allowed_of(chunk, verdicts, tally)
                if ask.addresses is None:
                    rows += len(allowed)
                    if allowed:
                        yield id_lines(ask, allowed)
                    continue
                sealed = await audiences.sealed_addresses(conn, ask.addresses, allowed)
                opened = open_addresses(ledger.secrets.master, ask.addresses, sealed)
                # addresses are personal data: who read them is logged before they leave
                await record_reads(request, list(dict.fromkeys(s for s, _ in opened)))
                missing = len(set(allowed) - {s for s, _ in opened})
                tally.allowed -= missing
                tally.left_out[NO_ADDRESS] += missing
                rows += len(opened)
                if opened:
                    yield address_lines(ask, opened)
        yield trailer(ask, tally, rows, token)
        complete = True
    finally:
        # logged first: when the client left, the awaits of the close may be cancelled too
        _log_export(request, ask, token, check, rows, complete)
        await _close(ledger, proxy, transaction)


def _log_export(
    request: Request,
    ask: AudienceAsk,
    token: str,
    check: dict[str, Any] | None,
    rows: int,
    complete: bool,
) -> None:
    """Who exported which audience and how many rows: one line when the stream ends (the count
    is known only then); `complete` is false when the client left or the stream failed."""
    caller = caller_of(request)
    fields = {
        "key_id": caller.key_id if caller else None,
        "key_name": caller.name if caller else None,
        "purpose": ask.purpose.id,
        "channel": ask.channel,
        "format": ask.format,
        "include_identifiers": ask.addresses is not None,
        "campaign_id": ask.campaign_id,
        "check_id": check["check_id"] if check else None,
        "token": token,
        "rows": rows,
        "complete": complete,
        "at": rfc3339(datetime.now(UTC)),
    }
    log.info("audience exported", extra={"fields": fields})


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
