"""The durable log of audience pulls (table audience_exports; its SQL is
projections/audience_exports.py): a row written before the first row of a stream leaves,
refused with 503 when it cannot be written, and its end (rows sent; completed, or cut and why)
written when the stream ends.

For auditors: docs/auditors/access-log.md

Design: docs/developers/design/audiences.md
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Final

import asyncpg
from starlette.requests import Request

from projections import audience_exports
from projections.audience_exports import ExportStart
from services.api.audience_rows import AudienceAsk
from services.http.app_state import caller_of, ledger_of
from services.http.problems import unavailable

log = logging.getLogger(__name__)

#: why a stream ended early, beside the bounded stream's deadline and idle
CANCELLED: Final = "cancelled"
FAILED: Final = "failed"

#: ends being written: a task the event loop holds only weakly must be kept until it is done
_ENDING: set[asyncio.Task[None]] = set()


async def start(
    request: Request, ask: AudienceAsk, token: str, check_id: str | None, at: datetime
) -> ExportStart:
    """Write the pull's row before any of its rows leaves: 503 when it cannot be written."""
    caller = caller_of(request)
    if caller is None:  # the route checks a key first
        raise RuntimeError(f"{request.url.path} exports an audience but checked no API key")
    export = ExportStart(
        export_id=uuid.uuid4(),
        key_id=caller.key_id,
        key_name=caller.name,
        purpose=ask.purpose.id,
        channel=ask.channel,
        format=ask.format,
        include_identifiers=ask.addresses is not None,
        spreadsheet_safe=ask.spreadsheet_safe,
        campaign_id=ask.campaign_id,
        check_id=uuid.UUID(check_id) if check_id else None,
        snapshot_token=token,
        started_at=at,
    )
    try:
        await audience_exports.start(ledger_of(request).pool, export)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("could not write the audience export log: %s", type(exc).__name__)
        raise unavailable(
            "the export could not be logged, so it is refused; retry shortly"
        ) from None
    return export


def end(
    request: Request,
    export: ExportStart,
    rows: int,
    cut_reason: str | None,
    then: Awaitable[None],
) -> None:
    """Log the end and write it to the export's row in a task of its own, after `then` (the
    stream's release): the request may be cancelled already, and a cancelled request's awaits
    are cancelled too."""
    fields = {
        "export_id": str(export.export_id),
        "key_id": export.key_id,
        "purpose": export.purpose,
        "channel": export.channel,
        "campaign_id": export.campaign_id,
        "check_id": str(export.check_id) if export.check_id else None,
        "token": export.snapshot_token,
        "rows": rows,
        "complete": cut_reason is None,
        "cut_reason": cut_reason,
    }
    log.info("audience exported", extra={"fields": fields})
    pool = ledger_of(request).pool
    task = asyncio.ensure_future(_write_end(pool, export.export_id, rows, cut_reason, then))
    _ENDING.add(task)
    task.add_done_callback(_ENDING.discard)


async def _write_end(
    pool: asyncpg.Pool,
    export_id: uuid.UUID,
    rows: int,
    cut_reason: str | None,
    then: Awaitable[None],
) -> None:
    try:
        await then
    finally:
        try:
            at = datetime.now(UTC)
            await audience_exports.end(
                pool, export_id, ended_at=at, rows=rows, cut_reason=cut_reason
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # the row stays 'started', which the auditors' page says to read as cut
            log.warning("could not write an audience export's end: %s", type(exc).__name__)
