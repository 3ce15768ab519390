"""A subject's history as a download (json, csv, avro) and the access and portability export.

Both take the subject as the other subject routes do: its id in the path, or `by-identifier`
with `email=` or `phone=`. The history streams page by page; the export is one JSON document
read in one snapshot, so its state and its history agree.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Final, cast

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from projections import history_pages, notices, subject_state
from projections.history_pages import HistoryRow
from projections.outdating import NO_NOTICES, Notices
from projections.state import Fact, FactKey
from schemas.events import CONSENT_GRANTED
from services.api import openapi_responses as answers
from services.api.body_schemas import SUBJECT
from services.api.read import consent_json
from services.bootstrap import Ledger
from services.http.access_logging import record_read
from services.http.app_state import ledger_of, purpose_history_of
from services.http.openapi_parts import LOOKUP, MIN_TOKEN, PROBLEM, query_param
from services.http.subjects import lookup_fields, path_subject, wait_for_token
from services.identity.context_sealing import context_opener
from services.identity.identities import IdentifierError, decrypt_identifier
from services.ledger.partitioning import partition_for
from services.ledger.tokens import encode_token
from services.proof import access_export
from services.proof.history_formats import FORMATS, MEDIA_TYPES, encoder, entry_json

log = logging.getLogger(__name__)

HISTORY_PATH: Final = "/v1/subjects/{subject_id}/history"
EXPORT_PATH: Final = "/v1/subjects/{subject_id}/export"


def _filename(kind: str, subject_id: str, extension: str) -> str:
    safe = subject_id.replace(":", "_")  # a subject id is [A-Za-z0-9._:-]; ":" troubles Windows
    return f'attachment; filename="{kind}-{safe}.{extension}"'


async def history(request: Request) -> StreamingResponse:
    """GET /v1/subjects/{subject_id}/history?format=json|csv|avro: every event, in log order."""
    ledger = ledger_of(request)
    f = await lookup_fields(request)
    fmt = f.choice("format", FORMATS, default="json") or "json"
    await wait_for_token(ledger, f)
    subject_id = await path_subject(ledger, request, f)
    f.finish()
    await record_read(request, subject_id)
    # the first page is read before answering, so a database failure is still a 503 problem
    first = await history_pages.page(ledger.pool, subject_id)
    data_key = await ledger.data_keys.existing(subject_id)
    out = encoder(fmt, subject_id, ledger.codec, context_opener(subject_id, data_key))

    async def body() -> AsyncIterator[bytes]:
        yield out.head()
        async for rows in history_pages.pages(ledger.pool, subject_id, first):
            yield out.page(rows)
        yield out.tail()

    headers = {}
    if fmt != "json":
        headers["Content-Disposition"] = _filename("history", subject_id, fmt)
    return StreamingResponse(body(), media_type=MEDIA_TYPES[fmt], headers=headers)


async def _read_all(
    ledger: Ledger, subject_id: str
) -> tuple[dict[FactKey, Fact], int, Notices, list[HistoryRow]]:
    """The subject's state, its partition's position, the notices its decisions see and its
    whole history, from one snapshot."""
    partition = partition_for(subject_id, ledger.partitions)
    async with (
        ledger.pool.acquire() as proxy,
        proxy.transaction(isolation="repeatable_read", readonly=True),
    ):
        conn = cast(asyncpg.Connection, proxy)  # the pool's proxy is a connection to the stubs
        facts, position = await subject_state.load(
            conn, subject_id, ledger.settings.topic, partition
        )
        granted = any(f.event_type == CONSENT_GRANTED for f in facts.values())
        published = await notices.load(conn) if granted else NO_NOTICES  # as the live answer
        rows = [r async for page in history_pages.pages(conn, subject_id) for r in page]
    return facts, position, published, rows


async def export(request: Request) -> JSONResponse:
    """GET /v1/subjects/{subject_id}/export: the GDPR Art. 15 and 20 answer as one document."""
    ledger = ledger_of(request)
    f = await lookup_fields(request)
    await wait_for_token(ledger, f)
    subject_id = await path_subject(ledger, request, f)
    f.finish()
    await record_read(request, subject_id)
    facts, position, published, rows = await _read_all(ledger, subject_id)
    data_key = await ledger.data_keys.existing(subject_id)

    def open_(kind: str, ciphertext: bytes) -> str | None:
        assert data_key is not None
        try:
            return decrypt_identifier(data_key, subject_id, kind, ciphertext)
        except IdentifierError:
            # not sealed under this subject's key: the stored record was altered
            log.warning("an identifier ciphertext of a subject does not open with its key")
            return None

    now = datetime.now(UTC)
    state = consent_json(ledger.catalogue, facts, now, published)
    partition = partition_for(subject_id, ledger.partitions)
    document = access_export.export_document(
        subject_id=subject_id,
        controller=ledger.settings.controller_name,
        generated_at=now,
        catalogue=ledger.catalogue,
        identities=access_export.identities(
            (ledger.codec.decode(r.value) for r in rows), open_ if data_key else None
        ),
        state={**state, "token": encode_token(partition, position)},
        history=[entry_json(r, context_opener(subject_id, data_key)) for r in rows],
        purpose_versions=access_export.versions_in_force(
            purpose_history_of(ledger), min((r.recorded_at for r in rows), default=None), now
        ),
    )
    headers = {"Content-Disposition": _filename("export", subject_id, "json")}
    return JSONResponse(document, headers=headers)


HISTORY_OPERATION: Final[dict[str, Any]] = {
    "parameters": [
        SUBJECT,
        *LOOKUP,
        query_param("format", schema={"type": "string", "enum": list(FORMATS)}),
        MIN_TOKEN,
    ],
    "responses": {"200": answers.HISTORY, "4XX": PROBLEM, "503": PROBLEM},
}
EXPORT_OPERATION: Final[dict[str, Any]] = {
    "parameters": [SUBJECT, *LOOKUP, MIN_TOKEN],
    "responses": {"200": answers.EXPORT, "4XX": PROBLEM, "503": PROBLEM},
}
