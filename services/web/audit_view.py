"""What the auditor's page shows, built from the loaded rows (pure) and rendered with Jinja2.

The timeline is the journal in log order, as the history export has it: both times, the
source, the actor, the notice version and the type-specific fields. Identifier events show
only what happened ("e-mail address linked"): never the blind index nor the ciphertext, and
no bytes field of any schema (tests/unit/services/web/test_audit_view.py checks the schemas).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote
from uuid import UUID

from jinja2 import Environment, PackageLoader, StrictUndefined

from projections.chain_verify import Break, JournalEntry
from schemas import events as ev
from schemas.events import rfc3339
from services.identity.context_sealing import ContextOpener
from services.proof import receipts
from services.proof.decision_history import Band
from services.proof.history_formats import FORMATS
from services.web.audit_chart import Chart, band_label
from services.web.pages import LANG

#: the envelope of every payload; shown in columns of their own
COMMON_KEYS: Final = frozenset(
    {
        "type",
        "event_id",
        "subject_id",
        "occurred_at",
        "recorded_at",
        "source",
        "actor",
        "notice_version",
    }
)
#: bytes fields (base64 in the payload): never shown as stored (a context's client address and
#: user agent are shown only decrypted, `context_details`)
HIDDEN_FIELDS: Final = frozenset({"blind_index", "ciphertext", "client_address", "user_agent"})
#: how a context's fields are labelled, in the order shown
CONTEXT_LABELS: Final = {
    "page": "page",
    "page_version": "page version",
    "language": "language",
    "one_click": "one-click POST",
    "client_address": "client network",
    "user_agent": "user agent",
    "captured": "captured by the ledger",
    "asserted": "asserted by the caller",
}
IDENTIFIER_WORDS: Final = {"email": "e-mail address", "phone": "phone number"}
#: what a null (or empty list) means for a field, as docs/integrators/events.md says
NULL_MEANING: Final = {
    "purpose": "every purpose",
    "channel": "all channels",
    "expires_at": "no expiry",
    "valid_until": "open-ended",
    "basis": "every basis",
    "ground": "every ground",
    "purposes": "all purposes",
    "request_id": "none recorded",
}
#: the page is /audit/subjects/{subject}; the API's routes are two levels up, relatively, so
#: a path prefix in front of the ledger keeps working
ROOT: Final = "../../"

_ENV: Final = Environment(
    loader=PackageLoader("services.web", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    href: str


@dataclass(frozen=True, slots=True)
class TimelineRow:
    number: int
    anchor: str
    event_id: str
    type: str
    partition: int
    offset: int
    occurred_at: str
    recorded_at: str
    #: occurred before an event already recorded (counts from recorded_at: docs/auditors/as-of.md)
    late: bool
    method: str
    system: str
    collection_point: str
    actor: str
    notice_version: str
    details: tuple[tuple[str, str], ...]
    receipts: tuple[Link, ...]
    #: the reason when this entry is the first broken link of the chain
    broken: str | None


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One segment of the chart, as a row of its text alternative."""

    scope: str
    start: str
    until: str
    allowed: bool
    reason: str
    evidence: tuple[Link, ...]
    #: the purpose version the decision was made with (None: not in the catalogue then)
    version: int | None = None


@dataclass(frozen=True, slots=True)
class Verification:
    valid: bool
    events: int
    head: str | None
    broken: Break | None
    #: the timeline number of the broken entry
    broken_number: int | None


@dataclass(frozen=True, slots=True)
class Erasure:
    """The erasure record, when the subject was erased; `purged_at` once its proof is gone."""

    erased_at: datetime
    ground: str
    purged_at: datetime | None
    purged_events: int | None
    chain_head: str | None


def subject_path(subject_id: str) -> str:
    return f"{ROOT}v1/subjects/{quote(subject_id, safe='')}"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _value(key: str, value: Any) -> str:
    if value is None or value == []:
        return NULL_MEANING.get(key, "none")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def context_details(shown: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """An opened context (services/identity/context_sealing.py) as labelled rows; a field no
    key opens any more says it was erased."""
    if shown is None:
        return []
    out = []
    unreadable = set(shown.get("unreadable") or [])
    for key, label in CONTEXT_LABELS.items():
        value = shown.get(key)
        if key in unreadable:
            out.append((f"context: {label}", "erased (the subject's key is destroyed)"))
        elif value not in (None, [], False) or (key == "one_click" and value is not None):
            out.append((f"context: {label}", _value(key, value)))
    return out


def details(
    event_type: str, payload: Mapping[str, Any], open_context: ContextOpener | None = None
) -> tuple[tuple[str, str], ...]:
    """The type-specific fields, labelled; an identifier event is one phrase, a context one
    row per field it holds (the personal ones only decrypted, by `open_context`)."""
    if event_type in (ev.IDENTIFIER_LINKED, ev.IDENTIFIER_UNLINKED):
        kind = payload.get("identifier_type")
        word = IDENTIFIER_WORDS.get(kind, "identifier") if isinstance(kind, str) else "identifier"
        done = "linked" if event_type == ev.IDENTIFIER_LINKED else "unlinked"
        return (("identifier", f"{word} {done}"),)
    out = []
    for key, value in payload.items():
        if key == "context":
            record = value if isinstance(value, dict) else None
            out += context_details(open_context(record) if open_context else None)
        elif key not in COMMON_KEYS and key not in HIDDEN_FIELDS:
            out.append((key.replace("_", " "), _value(key, value)))
    return tuple(out)


def _payload(text: str) -> dict[str, Any]:
    """The stored JSON payload; anything else (an altered row) shows as empty."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _part(payload: Mapping[str, Any], key: str) -> dict[str, Any]:
    part = payload.get(key)
    return part if isinstance(part, dict) else {}


def anchor(event_id: UUID | str) -> str:
    return f"e-{event_id}"


def timeline(
    entries: Sequence[JournalEntry],
    broken: Break | None,
    open_context: ContextOpener | None = None,
) -> list[TimelineRow]:
    """The journal entries in log order as timeline rows; `open_context` shows contexts."""
    out = []
    latest: datetime | None = None
    for number, entry in enumerate(entries, start=1):
        payload = _payload(entry.payload)
        source, actor = _part(payload, "source"), _part(payload, "actor")
        links: tuple[Link, ...] = ()
        if entry.event_type in receipts.RECEIPT_TYPES:
            links = tuple(
                Link(fmt, f"{ROOT}v1/receipts/{entry.event_id}?format={fmt}")
                for fmt in receipts.FORMATS
            )
        is_broken = broken is not None and broken.event_id == entry.event_id
        out.append(
            TimelineRow(
                number=number,
                anchor=anchor(entry.event_id),
                event_id=str(entry.event_id),
                type=entry.event_type,
                partition=entry.partition,
                offset=entry.offset,
                occurred_at=rfc3339(entry.occurred_at),
                recorded_at=rfc3339(entry.recorded_at),
                late=latest is not None and entry.occurred_at < latest,
                method=_text(source.get("method")),
                system=_text(source.get("system")),
                collection_point=_text(source.get("collection_point")),
                actor=" ".join(_text(actor.get(k)) for k in ("type", "id") if actor.get(k)),
                notice_version=_text(payload.get("notice_version")),
                details=details(entry.event_type, payload, open_context),
                receipts=links,
                broken=broken.reason if is_broken and broken is not None else None,
            )
        )
        latest = entry.recorded_at if latest is None else max(latest, entry.recorded_at)
    return out


def decision_rows(found: Sequence[Band], rows: Sequence[TimelineRow]) -> list[DecisionRow]:
    """The chart's segments as table rows; evidence links to its timeline row."""
    by_id = {r.event_id: r for r in rows}

    def link(event_id: UUID) -> Link:
        row = by_id.get(str(event_id))
        if row is None:  # a NoticePublished, or an event purged since
            return Link(f"event {event_id}", "")
        return Link(f"#{row.number} {row.type}", f"#{row.anchor}")

    out = []
    for band in found:
        for s in band.segments:
            last = s is band.segments[-1]
            out.append(
                DecisionRow(
                    scope=band_label(band),
                    start=rfc3339(s.start),
                    until="now" if last else rfc3339(s.end),
                    allowed=s.allowed,
                    reason=s.reason,
                    evidence=tuple(link(e) for e in s.evidence),
                    version=s.version,
                )
            )
    return out


def downloads(subject_id: str) -> list[Link]:
    base = subject_path(subject_id)
    words = {"json": "JSON", "csv": "CSV", "avro": "Avro object container file"}
    return [
        *(Link(f"History as {words[fmt]}", f"{base}/history?format={fmt}") for fmt in FORMATS),
        Link("Access and portability export (JSON, identities decrypted)", f"{base}/export"),
        Link("Hash-chain verification (JSON)", f"{base}/verify"),
        Link("Current consent state (JSON)", f"{base}/consent"),
    ]


def subject_page(
    *,
    controller: str,
    subject_id: str,
    generated_at: datetime,
    rows: Sequence[TimelineRow],
    chart: Chart | None,
    decisions: Sequence[DecisionRow],
    verification: Verification,
    erasure: Erasure | None,
    undecodable: int,
    csrf_token: str | None = None,
) -> str:
    return _ENV.get_template("audit_subject.html").render(
        csrf_token=csrf_token,
        lang=LANG,
        controller=controller,
        subject_id=subject_id,
        generated_at=rfc3339(generated_at),
        rows=list(rows),
        chart=chart,
        decisions=list(decisions),
        verification=verification,
        erasure=erasure,
        undecodable=undecodable,
        downloads=downloads(subject_id),
        rfc3339=rfc3339,
    )


def render_page(template: str, **values: Any) -> str:
    """Any audit page of `template` (the pages of services/web/staff_view.py too)."""
    return _ENV.get_template(template).render(lang=LANG, **values)


def error_page(
    *,
    controller: str,
    heading: str,
    message: str,
    home_href: str = "/audit/",
    csrf_token: str | None = None,
) -> str:
    return _ENV.get_template("audit_error.html").render(
        lang=LANG,
        controller=controller,
        heading=heading,
        message=message,
        home_href=home_href,
        csrf_token=csrf_token,
    )
