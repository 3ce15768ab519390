"""The `context` field: every released version before it still decodes (with no context),
the versions that carry it agree on one Context record, and a context round-trips."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastavro import parse_schema, schemaless_writer

from schemas import events
from schemas.codec import DEFAULT_SCHEMA_DIR, MAGIC, schema_fingerprint
from schemas.events import CONTEXT_EVENT_TYPES, Event
from tests.unit.codec_samples import CODEC, at

SCHEMA_FILES = sorted(DEFAULT_SCHEMA_DIR.glob("*.avsc"))
#: every released version of an event type that now carries a context, without it
BEFORE_CONTEXT = [
    p
    for p in SCHEMA_FILES
    if p.name.split(".")[0] in CONTEXT_EVENT_TYPES
    and "context" not in {f["name"] for f in json.loads(p.read_text())["fields"]}
]
WITH_CONTEXT = [
    p
    for p in SCHEMA_FILES
    if p not in BEFORE_CONTEXT and p.name.split(".")[0] in CONTEXT_EVENT_TYPES
]

#: event types that carried a context from their first version
BORN_WITH_CONTEXT = {events.CONSENT_REQUESTED}

#: the fields of each type's data as an older writer had them (the type's required ones)
DATA: dict[str, dict[str, Any]] = {
    events.CONSENT_REQUESTED: {
        "purpose": "newsletter",
        "channel": "email",
        "expires_at": at(2026, 5, 1),
        "language": "fi",
    },
    events.CONSENT_GRANTED: events.grant_data("newsletter", "email"),
    events.CONSENT_WITHDRAWN: {"purpose": None, "channel": None, "reason": None},
    events.DIRECT_MARKETING_OBJECTED: {"channel": None},
    events.DIRECT_MARKETING_OBJECTION_LIFTED: {"channel": None, "evidence": "asked by phone"},
}
SEALED = {
    "client_address": b"\x01" + bytes(12) + b"\xaa" * 16,
    "user_agent": b"\x01" + bytes(12) + b"\xbb" * 20,
    "page": "preferences",
    "page_version": "0123456789ab",
    "language": "fi",
    "one_click": False,
    "captured": ["client_address", "user_agent", "page", "page_version", "language", "one_click"],
    "asserted": [],
}


def _older_record(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A record as any producer of that version would have written it, and its schema."""
    raw = json.loads(path.read_text())
    event_type = path.name.split(".")[0]
    names = {f["name"] for f in raw["fields"]}
    record = {
        "event_id": UUID("00000000-0000-4000-8000-0000000000c1"),
        "subject_id": "sub-ctx",
        "occurred_at": at(2025, 3, 1),
        "recorded_at": at(2025, 3, 1, 0, 0, 1),
        "source": {"method": "api", "system": None, "collection_point": None},
        "actor": {"type": "subject", "id": None},
        "notice_version": None,
        **{k: v for k, v in DATA[event_type].items() if k in names},
    }
    return raw, record


@pytest.mark.parametrize("path", BEFORE_CONTEXT, ids=lambda p: p.name)
def test_a_record_older_than_context_reads_with_none(path: Path) -> None:
    raw, record = _older_record(path)
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema(raw), record)
    value = MAGIC + schema_fingerprint(raw) + buffer.getvalue()
    assert schema_fingerprint(raw) != CODEC.fingerprint_of(path.name.split(".")[0])
    event = CODEC.decode(value)
    assert event.subject_id == "sub-ctx"
    assert "context" not in event.data
    assert event.data.get("context") is None
    # re-encoded with the newest writer it carries no context either, and reads back equal
    assert CODEC.decode(CODEC.encode(event)) == event


def test_every_type_with_a_context_has_an_older_version_and_writes_the_newest() -> None:
    assert {p.name.split(".")[0] for p in BEFORE_CONTEXT} == (
        set(CONTEXT_EVENT_TYPES) - BORN_WITH_CONTEXT
    )
    assert {p.name.split(".")[0] for p in WITH_CONTEXT} == set(CONTEXT_EVENT_TYPES)
    for path in WITH_CONTEXT:
        assert CODEC.fingerprint_of(path.name.split(".")[0]) == schema_fingerprint(
            json.loads(path.read_text())
        )


def test_the_context_record_is_one_definition_in_every_schema() -> None:
    """One named type, identical everywhere: the history file shares it (history_formats)."""
    found = []
    for path in WITH_CONTEXT:
        field = next(f for f in json.loads(path.read_text())["fields"] if f["name"] == "context")
        assert field["type"][0] == "null" and field["default"] is None
        found.append(field)
    assert all(f == found[0] for f in found)
    names = [f["name"] for f in found[0]["type"][1]["fields"]]
    assert names == [*events.CONTEXT_FIELDS, "captured", "asserted"]


@pytest.mark.parametrize("event_type", CONTEXT_EVENT_TYPES)
def test_a_sealed_context_round_trips(event_type: str) -> None:
    event = Event(
        type=event_type,
        event_id=UUID("00000000-0000-4000-8000-0000000000c2"),
        subject_id="sub-ctx",
        occurred_at=at(2025, 3, 1),
        recorded_at=at(2025, 3, 1),
        data={**DATA[event_type], "context": SEALED},
    )
    if event_type in (events.CONSENT_WITHDRAWN, events.DIRECT_MARKETING_OBJECTED):
        event = Event(**{**_fields(event), "data": {**event.data, "campaign_id": None}})
    assert CODEC.decode(CODEC.encode(event)) == event


def _fields(event: Event) -> dict[str, Any]:
    return {name: getattr(event, name) for name in Event.__dataclass_fields__}
