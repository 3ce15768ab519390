"""One request's events through the ledger's one append path (services/ledger/append.py), with
this process's parts, counted in /metrics: what the API's commands and the pages both call.
services/http/ledger_problems.py answers its errors."""

from __future__ import annotations

from schemas.events import Event
from services.bootstrap import Ledger
from services.http.event_context import seal_contexts
from services.ledger import append as ledger_append
from services.ledger.append import Appended
from services.telemetry import api_metrics


async def append_request(
    ledger: Ledger,
    events: list[Event],
    *,
    key: str | None,
    digest: bytes,
    subject_id: str,
) -> Appended:
    """One request's events through the ledger's append (services/ledger/append.py) with this
    process's parts, counted in /metrics; services/http/ledger_problems.py answers its errors.
    A clear `context` is sealed first (services/http/event_context.py)."""
    appended = await ledger_append.append(
        await seal_contexts(ledger.data_keys, events),
        key=key,
        digest=digest,
        subject_id=subject_id,
        codec=ledger.codec,
        pool=ledger.pool,
        publisher=ledger.publisher,
        health=ledger.health,
        erased=ledger.erased,
        hash_key=ledger.secrets.blind_index_key,
    )
    api_metrics.count_commands(appended.events, appended.replayed)
    return appended
