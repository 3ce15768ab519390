"""GET /v1/suppressions: a channel's do-not-contact list, by blind index, paged, for tools
that keep their own list of addresses; as JSON or CSV, and with `include_identifiers=true` (a
key with the audience scope) each live entry's decrypted address, for a mail tool to import.
Entries of erased subjects stay blind indexes: their keys are shredded.

Design: docs/developers/design/suppression.md
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urlencode

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from projections import audiences, erasure, identifiers
from schemas.events import CHANNELS, rfc3339
from services.api import openapi_responses as answers
from services.api.projector_status import require_fresh
from services.http.access_logging import record_reads
from services.http.app_state import caller_of, ledger_of
from services.http.body import Fields, query_fields
from services.http.csv_text import csv_bytes
from services.http.openapi_parts import STRING, problem_answer, query_param
from services.http.problems import ProblemError
from services.http.whole_numbers import whole_number_field
from services.identity.api_keys import AUDIENCE, permits
from services.identity.sealed_addresses import open_addresses
from services.rules.suppression import (
    CHANNEL_IDENTIFIERS,
    Suppression,
    suppression,
    withdrawable_purposes,
)

DEFAULT_LIMIT: Final = 1000
MAX_LIMIT: Final = 10000
PATH: Final = "/v1/suppressions"
FORMATS: Final = ("json", "csv")
CSV_COLUMNS: Final = ("blind_index", "identifier_type", "reason", "since", "event_id")


async def find(
    conn: asyncpg.Connection | asyncpg.Pool,
    identifier_type: str,
    channel: str,
    purposes: Sequence[str],
    after: bytes,
    limit: int,
) -> tuple[list[tuple[bytes, Suppression]], bool]:
    """Up to `limit` suppressed identifiers after `after`, and whether more follow."""
    found: list[tuple[bytes, Suppression]] = []
    cursor = after
    while True:
        states = await identifiers.objecting_holders(
            conn, identifier_type, channel, cursor, limit + 1
        )
        for index, state in states.items():
            why = suppression(state, channel, purposes)
            if why is not None:
                found.append((index, why))
                if len(found) > limit:
                    return found[:limit], True
        if len(states) <= limit:
            return found, False
        cursor = max(states)


def _cursor(f: Fields) -> bytes:
    raw = f.raw("after")
    if raw is None:
        return b""
    try:
        index = bytes.fromhex(raw) if isinstance(raw, str) and len(raw) <= 128 else b""
    except ValueError:
        index = b""
    if not index:
        f.error("after", "is not a cursor of this list; use the `next` link of a page")
    return index


def _channel(f: Fields) -> str | None:
    value = f.raw("channel", required=True)
    if value is None or value in CHANNEL_IDENTIFIERS:
        return value if isinstance(value, str) else None
    why = "has no e-mail or phone identifier" if value in CHANNELS else "is not a channel"
    f.error("channel", f"{value!r} {why} to list", list(CHANNEL_IDENTIFIERS))
    return None


def _entry(index: bytes, identifier_type: str, why: Suppression) -> dict[str, Any]:
    return {
        "blind_index": index.hex(),
        "identifier_type": identifier_type,
        "reason": why.reason,
        "since": rfc3339(why.fact.occurred_at),
        "event_id": str(why.fact.event_id),
    }


def _erased_entry(row: asyncpg.Record, identifier_type: str) -> dict[str, Any]:
    return {
        "blind_index": bytes(row["blind_index"]).hex(),
        "identifier_type": identifier_type,
        "reason": row["reason"],
        "since": rfc3339(row["since"]),
        "event_id": str(row["event_id"]),
    }


def _flag(f: Fields, name: str) -> bool:
    value = f.raw(name)
    if value is None or value == "false":
        return False
    if value != "true":
        f.error(name, f"{str(value)[:20]!r} is not accepted", ["true", "false"])
    return bool(value == "true")


def _needs_audience(request: Request) -> None:
    """Decrypted addresses need the audience scope (or admin), whatever the route's level."""
    caller = caller_of(request)
    if caller is None or not permits(caller.scopes, AUDIENCE):
        raise ProblemError(
            403,
            "Forbidden",
            f"include_identifiers=true needs an API key with the {AUDIENCE} scope (or admin)",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{AUDIENCE}"'},
            kind="forbidden",
        )


async def _addresses(request: Request, kind: str, entries: list[dict[str, Any]]) -> dict[str, str]:
    """Blind index (hex) -> decrypted address of the entries' current holders; each holder's
    read is access-logged first. Erased subjects hold nothing any more."""
    ledger = ledger_of(request)
    indexes = [bytes.fromhex(e["blind_index"]) for e in entries]
    rows = await audiences.sealed_holders(ledger.pool, kind, indexes)
    await record_reads(request, list(dict.fromkeys(r["subject_id"] for r in rows)))
    opened = await open_addresses(ledger.secrets.master, kind, rows)
    return {bytes(r["blind_index"]).hex(): a for r, (_, a) in zip(rows, opened, strict=True)}


def _csv(
    entries: list[dict[str, Any]], with_addresses: bool, safe: bool, following: str | None
) -> Response:
    columns = [*CSV_COLUMNS, *(["address"] if with_addresses else [])]
    records = [columns, *([e.get(c) or "" for c in columns] for e in entries)]
    headers = {"Link": f'<{following}>; rel="next"'} if following else {}
    body = csv_bytes(records, spreadsheet_safe=safe)
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


async def suppressions(request: Request) -> Response:
    ledger = ledger_of(request)
    f = query_fields(request)
    channel = _channel(f)
    limit = whole_number_field(f, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    after = _cursor(f)
    fmt = f.choice("format", FORMATS, default="json")
    with_addresses = _flag(f, "include_identifiers")
    safe = _flag(f, "spreadsheet_safe")
    if safe and fmt != "csv":
        f.error("spreadsheet_safe", "applies to format=csv only (JSON holds no formulas)")
    f.finish()
    if with_addresses:
        _needs_audience(request)
    await require_fresh(ledger)  # sending systems send from this list: fail closed when stale
    assert channel is not None
    kind = CHANNEL_IDENTIFIERS[channel]
    purposes = withdrawable_purposes(ledger.catalogue, channel)
    chosen, more = await find(ledger.pool, kind, channel, purposes, after, limit)
    erased = await erasure.entries_after(ledger.pool, kind, after, limit + 1)
    entries = {index: _entry(index, kind, why) for index, why in chosen}
    entries.update({bytes(r["blind_index"]): _erased_entry(r, kind) for r in erased})
    found = sorted(entries.items())
    more = more or len(erased) > limit or len(found) > limit
    found = found[:limit]
    following = None
    if more:
        query = {"channel": channel, "limit": str(limit), "after": found[-1][0].hex()}
        query.update({"format": str(fmt)} if fmt != "json" else {})
        query.update({"include_identifiers": "true"} if with_addresses else {})
        query.update({"spreadsheet_safe": "true"} if safe else {})
        following = f"{PATH}?{urlencode(query)}"
    listed = [entry for _, entry in found]
    if with_addresses:
        live = [e for e in listed if e["reason"] != erasure.ERASED]
        opened = await _addresses(request, kind, live)
        for entry in listed:
            entry["address"] = opened.get(entry["blind_index"])
    if fmt == "csv":
        return _csv(listed, with_addresses, safe, following)
    return JSONResponse(
        {
            "channel": channel,
            "identifier_type": kind,
            "suppressions": listed,
            "next": following,
        }
    )


OPERATION: Final[dict[str, Any]] = {
    "summary": "A channel's do-not-contact list (blind indexes), paged",
    "parameters": [
        query_param("channel", True),
        query_param("limit"),
        query_param("after"),
        query_param("format"),
        query_param("include_identifiers"),
        query_param("spreadsheet_safe"),
    ],
    "responses": {
        "200": {
            **answers.SUPPRESSIONS,
            "description": "a page; `next` is null on the last (with format=csv, the CSV's"
            " columns are blind_index, identifier_type, reason, since, event_id and, with"
            " include_identifiers=true, address; the next page is the `Link: rel=next` header)",
            "content": {**answers.SUPPRESSIONS["content"], "text/csv": {"schema": STRING}},
        },
        "4XX": problem_answer("problem"),
        "503": problem_answer("problem"),
    },
}
