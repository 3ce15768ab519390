"""The history encoders: JSON, CSV and an Avro container file that any Avro reader opens."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

import avro.datafile
import avro.io
import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.history_pages import HistoryRow
from projections.journal import event_payload
from schemas import events as ev
from schemas.codec import default_codec
from schemas.events import CONTEXT_EVENT_TYPES, Actor, Event, Source
from services.proof.history_formats import (
    CSV_COLUMNS,
    HISTORY_RECORD,
    AvroHistory,
    CsvHistory,
    JsonHistory,
    history_schema,
)
from tests.properties import examples
from tests.unit.event_strategies import any_event

CODEC = default_codec()
OCCURRED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RECORDED = datetime(2026, 2, 1, 12, 30, 0, 123456, tzinfo=UTC)

GRANT = Event(
    type=ev.CONSENT_GRANTED,
    event_id=UUID(int=1),
    subject_id="cust-1",
    occurred_at=OCCURRED,
    recorded_at=RECORDED,
    source=Source("form", "website", "footer, signup"),
    actor=Actor("subject", None),
    notice_version="2023-05-04",
    data={
        "purpose": "newsletter",
        "channel": "email",
        "expires_at": None,
        "request_event_id": None,
        "evidence": None,
    },
)
LINK = Event(
    type=ev.IDENTIFIER_LINKED,
    event_id=UUID(int=2),
    subject_id="cust-1",
    occurred_at=RECORDED,
    recorded_at=RECORDED,
    source=Source("api", None, None),
    actor=Actor("system", "crm"),
    data={"identifier_type": "email", "blind_index": b"\x01" * 32, "ciphertext": b"\xff\x00"},
)


def row(event: Event, offset: int, partition: int = 2) -> HistoryRow:
    return HistoryRow(
        event_id=event.event_id,
        event_type=event.type,
        partition=partition,
        offset=offset,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        payload=json.loads(json.dumps(event_payload(event))),
        value=CODEC.encode(event),
    )


ROWS = [row(GRANT, 7), row(LINK, 9)]


def whole(
    encoder: JsonHistory | CsvHistory | AvroHistory, pages: Sequence[Sequence[HistoryRow]]
) -> bytes:
    return encoder.head() + b"".join(encoder.page(p) for p in pages) + encoder.tail()


@pytest.mark.parametrize(
    "pages", [[], [[]], [ROWS], [ROWS[:1], [], ROWS[1:]]], ids=["none", "empty", "one", "split"]
)
def test_json_is_one_document_however_paged(pages: list[list[HistoryRow]]) -> None:
    doc = json.loads(whole(JsonHistory("cust-1"), pages))
    expected = [r for p in pages for r in p]
    assert doc["subject_id"] == "cust-1"
    assert [e["offset"] for e in doc["events"]] == [r.offset for r in expected]


def test_json_entry_is_the_events_entry_with_both_times() -> None:
    (entry, _) = json.loads(whole(JsonHistory("cust-1"), [ROWS]))["events"]
    assert entry == {
        "event_id": str(UUID(int=1)),
        "type": "ConsentGranted",
        "partition": 2,
        "offset": 7,
        "occurred_at": "2026-01-05T09:00:00Z",
        "recorded_at": "2026-02-01T12:30:00.123456Z",
        "payload": ROWS[0].payload,
    }


def test_csv_flattens_the_common_fields_and_keeps_the_rest_as_json() -> None:
    text = whole(CsvHistory("cust-1"), [ROWS[:1], ROWS[1:]]).decode("utf-8")
    assert text.startswith(",".join(CSV_COLUMNS) + "\r\n")
    grant, link = list(csv.DictReader(io.StringIO(text)))
    assert grant == {
        "event_id": str(UUID(int=1)),
        "type": "ConsentGranted",
        "subject_id": "cust-1",
        "partition": "2",
        "offset": "7",
        "occurred_at": "2026-01-05T09:00:00Z",
        "recorded_at": "2026-02-01T12:30:00.123456Z",
        "source_method": "form",
        "source_system": "website",
        "source_collection_point": "footer, signup",
        "actor_type": "subject",
        "actor_id": "",
        "notice_version": "2023-05-04",
        "data": '{"purpose":"newsletter","channel":"email","expires_at":null,'
        '"request_event_id":null,"evidence":null}',
    }
    assert link["actor_id"] == "crm" and link["notice_version"] == ""
    data = json.loads(link["data"])
    assert base64.b64decode(data["blind_index"]) == b"\x01" * 32
    assert base64.b64decode(data["ciphertext"]) == b"\xff\x00"


def _expected_record(r: HistoryRow) -> dict[str, Any]:
    event = CODEC.decode(r.value)
    return {
        "partition": r.partition,
        "offset": r.offset,
        "event_type": event.type,
        "event": {**event.envelope(), **_context_default(event.type), **event.data},
    }


def _context_default(event_type: str) -> dict[str, Any]:
    """An Avro reader fills a field's default in: a missing context reads as null."""
    return {"context": None} if event_type in CONTEXT_EVENT_TYPES else {}


def test_avro_reads_back_with_fastavro_and_names_the_subject() -> None:
    reader = fastavro.reader(io.BytesIO(whole(AvroHistory("cust-1", CODEC), [ROWS[:1], ROWS[1:]])))
    assert list(reader) == [_expected_record(r) for r in ROWS]
    assert reader.metadata["ledger.subject_id"] == "cust-1"
    assert reader.metadata["avro.codec"] == "deflate"
    assert reader.writer_schema["name"] == HISTORY_RECORD  # type: ignore[index,call-overload]


def test_avro_reads_back_with_the_apache_implementation() -> None:
    """An independent reader (Apache Avro's own) opens the file with its embedded schema."""
    data = whole(AvroHistory("cust-1", CODEC), [ROWS])
    with avro.datafile.DataFileReader(io.BytesIO(data), avro.io.DatumReader()) as reader:
        records = [cast(dict[str, Any], r) for r in reader]
    assert [r["event"]["event_id"] for r in records] == [str(UUID(int=1)), str(UUID(int=2))]
    assert records[1]["event"]["blind_index"] == b"\x01" * 32
    assert records[0]["event"]["source"]["collection_point"] == "footer, signup"


def test_an_empty_history_is_a_valid_file_with_no_records() -> None:
    reader = fastavro.reader(io.BytesIO(whole(AvroHistory("cust-1", CODEC), [])))
    assert list(reader) == []


def test_the_schema_defines_every_event_type_once_and_shares_the_envelope() -> None:
    schema = history_schema(CODEC.schemas())
    branches = next(f["type"] for f in schema["fields"] if f["name"] == "event")
    assert [b["name"] for b in branches] == [f"ledger.events.{t}" for t in sorted(CODEC.schemas())]
    text = json.dumps(schema)
    assert text.count('"name": "ledger.events.Source"') == 1
    fastavro.parse_schema(schema)


def test_a_named_type_that_differs_between_event_types_gets_its_own_name() -> None:
    def event_schema(name: str, symbols: list[str]) -> dict[str, Any]:
        kind = {"type": "enum", "name": "ledger.events.Kind", "symbols": symbols}
        return {
            "type": "record",
            "name": f"ledger.events.{name}",
            "fields": [
                {"name": "k", "type": kind},
                {"name": "again", "type": "ledger.events.Kind"},
            ],
        }

    schema = history_schema({"A": event_schema("A", ["x"]), "B": event_schema("B", ["x", "y"])})
    a, b = schema["fields"][3]["type"]
    assert a["fields"][0]["type"]["name"] == "ledger.events.Kind"
    assert b["fields"][0]["type"]["name"] == "ledger.events.Kind_B"
    assert b["fields"][1]["type"] == "ledger.events.Kind_B"
    fastavro.parse_schema(schema)


@settings(max_examples=examples(100), deadline=None, database=None)
@given(st.lists(any_event(), max_size=8))
def test_every_event_of_every_type_survives_the_avro_file(events: list[Event]) -> None:
    rows = [row(e, i) for i, e in enumerate(events)]
    data = whole(AvroHistory("s", CODEC), [rows[:3], rows[3:]])
    assert list(fastavro.reader(io.BytesIO(data))) == [_expected_record(r) for r in rows]
