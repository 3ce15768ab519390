"""The audience's rows as JSON lines or CSV (GET /v1/audiences, services/api/audiences.py): the
header, the subjects (with their addresses when asked), and the end line.

Every stream that ends well ends with an end line: in JSON lines a `summary` line (with the
counts by reason when `reasons=true`); in CSV with `reasons=true` the count records and a last
`end` record. A plain CSV keeps the import shape (no extra records): its end is HTTP's last
chunk.

Design: docs/developers/design/audiences.md
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from services.http.csv_text import csv_bytes
from services.rules.audience import AudienceTally
from services.rules.catalogue import Purpose


@dataclass(frozen=True, slots=True)
class AudienceAsk:
    purpose: Purpose
    channel: str
    format: str
    #: the channel's identifier type when addresses are asked for, else None
    addresses: str | None
    reasons: bool
    campaign_id: str | None
    #: CSV only: cells a spreadsheet would read as a formula start with `'`
    spreadsheet_safe: bool = False


def header_line(ask: AudienceAsk) -> bytes:
    """The CSV header (JSON lines have none)."""
    if ask.format != "csv":
        return b""
    columns = ["subject_id", *([ask.addresses] if ask.addresses else [])]
    if ask.reasons:
        columns = ["record", *columns, "reason", "count"]
    return csv_bytes([columns])


def id_lines(ask: AudienceAsk, subject_ids: Sequence[str]) -> bytes:
    """Rows without addresses, encoded in one join: subject ids match SUBJECT_ID_RE, so
    nothing in them needs quoting in CSV or escaping in JSON (though one may start with `-`,
    a formula to a spreadsheet: those go through the guard when asked)."""
    if not subject_ids:
        return b""
    if ask.format == "csv":
        if ask.spreadsheet_safe:
            lead, tail = (["subject"], ["", ""]) if ask.reasons else ([], [])
            return csv_bytes([[*lead, s, *tail] for s in subject_ids], spreadsheet_safe=True)
        lead_s, tail_s = ("subject,", ",,") if ask.reasons else ("", "")
        return (lead_s + (tail_s + "\r\n" + lead_s).join(subject_ids) + tail_s + "\r\n").encode()
    return ('{"subject_id":"' + '"}\n{"subject_id":"'.join(subject_ids) + '"}\n').encode()


def address_lines(ask: AudienceAsk, rows: Iterable[tuple[str, str]]) -> bytes:
    """(subject id, address) rows: an address is free text, quoted and escaped in full."""
    key = ask.addresses or "address"
    if ask.format == "csv":
        lead = ["subject"] if ask.reasons else []
        tail = ["", ""] if ask.reasons else []
        records = [[*lead, s, a, *tail] for s, a in rows]
        return csv_bytes(records, spreadsheet_safe=ask.spreadsheet_safe)
    lines = (json.dumps({"subject_id": s, key: a}, ensure_ascii=False) for s, a in rows)
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def end_lines(ask: AudienceAsk, tally: AudienceTally, rows: int, token: str) -> bytes:
    """What ends a whole stream: in JSON lines one `summary` line (the counts by reason only
    with reasons=true); in CSV with reasons=true the count records and an `end` record of the
    rows sent; a plain CSV has none."""
    if ask.format == "csv":
        if not ask.reasons:
            return b""
        blanks = ["", ""] if ask.addresses else [""]
        records = [["allowed", *blanks, "", str(tally.allowed)]]
        records += [
            ["left_out", *blanks, reason, str(n)] for reason, n in tally.by_reason().items()
        ]
        records.append(["end", *blanks, "", str(rows)])
        return csv_bytes(records)
    summary: dict[str, Any] = {"token": token, "rows": rows}
    if ask.reasons:
        summary.update(
            considered=tally.considered,
            allowed=tally.allowed,
            left_out_by_reason=tally.by_reason(),
        )
    return (json.dumps({"summary": summary}) + "\n").encode("utf-8")
