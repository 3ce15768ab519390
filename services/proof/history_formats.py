"""A subject's history as JSON, CSV or an Avro object container file, encoded page by page so
a route can stream a history of any length.

Design: docs/developers/design/proof.md
"""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import IO, Any, Final, cast

from fastavro import parse_schema
from fastavro.write import Writer

from projections.history_pages import HistoryRow
from schemas.codec import COMMON_FIELDS, NAMESPACE, EventCodec
from schemas.events import rfc3339
from services.identity.context_sealing import ContextOpener

FORMATS: Final = ("json", "csv", "avro")
MEDIA_TYPES: Final = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "avro": "application/avro",
}

#: the CSV header; `data` is the JSON object of the type-specific fields
CSV_COLUMNS: Final = (
    "event_id",
    "type",
    "subject_id",
    "partition",
    "offset",
    "occurred_at",
    "recorded_at",
    "source_method",
    "source_system",
    "source_collection_point",
    "actor_type",
    "actor_id",
    "notice_version",
    "data",
)

HISTORY_RECORD: Final = "ledger.history.HistoryEntry"


class HistoryFormatError(Exception):
    """The history file could not be built or written; a bug, never the caller's input."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def shown_payload(row: HistoryRow, open_context: ContextOpener | None) -> dict[str, Any]:
    """The row's payload with its context opened (the client network and user agent
    decrypted while the subject's key exists); without an opener, as stored."""
    payload = row.payload
    record = payload.get("context")
    if open_context is None or not isinstance(record, dict):
        return payload
    return {**payload, "context": open_context(record)}


def entry_json(row: HistoryRow, open_context: ContextOpener | None = None) -> dict[str, Any]:
    """One history entry: what /events shows, with both times beside the position."""
    return {
        "event_id": str(row.event_id),
        "type": row.event_type,
        "partition": row.partition,
        "offset": row.offset,
        "occurred_at": rfc3339(row.occurred_at),
        "recorded_at": rfc3339(row.recorded_at),
        "payload": shown_payload(row, open_context),
    }


class JsonHistory:
    def __init__(self, subject_id: str, open_context: ContextOpener | None = None) -> None:
        self.subject_id = subject_id
        self.open_context = open_context
        self._first = True

    def head(self) -> bytes:
        return f'{{"subject_id":{_dumps(self.subject_id)},"events":['.encode()

    def page(self, rows: Sequence[HistoryRow]) -> bytes:
        if not rows:
            return b""
        text = ",".join(_dumps(entry_json(r, self.open_context)) for r in rows)
        out = text if self._first else "," + text
        self._first = False
        return out.encode()

    def tail(self) -> bytes:
        return b"]}"


#: what makes a spreadsheet read a cell as a formula (OWASP's CSV injection list: = + - @,
#: tab and carriage return) and the full-width forms some spreadsheets take for them
FORMULA_STARTS: Final = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")


def spreadsheet_safe(cell: str) -> str:
    """`cell` as a spreadsheet shows it as text: with a leading `'` when it starts like a
    formula (`=HYPERLINK(...)` in a source system stays text). Strip one leading `'` from such
    a cell to get the stored value back."""
    return "'" + cell if cell[:1] in FORMULA_STARTS else cell


def csv_row(row: HistoryRow, open_context: ContextOpener | None = None) -> list[str]:
    """One CSV row: common fields flattened, null as the empty field, the rest as JSON; every
    cell spreadsheet-safe."""
    payload = shown_payload(row, open_context)
    source = payload.get("source") or {}
    actor = payload.get("actor") or {}
    data = {k: v for k, v in payload.items() if k not in COMMON_FIELDS and k != "type"}
    values: list[Any] = [
        str(row.event_id),
        row.event_type,
        payload.get("subject_id"),
        row.partition,
        row.offset,
        rfc3339(row.occurred_at),
        rfc3339(row.recorded_at),
        source.get("method"),
        source.get("system"),
        source.get("collection_point"),
        actor.get("type"),
        actor.get("id"),
        payload.get("notice_version"),
        _dumps(data),
    ]
    return ["" if v is None else spreadsheet_safe(str(v)) for v in values]


class CsvHistory:
    def __init__(self, subject_id: str, open_context: ContextOpener | None = None) -> None:
        self.subject_id = subject_id
        self.open_context = open_context

    def _lines(self, rows: Sequence[Sequence[str]]) -> bytes:
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(rows)
        return out.getvalue().encode("utf-8")

    def head(self) -> bytes:
        return self._lines([CSV_COLUMNS])

    def page(self, rows: Sequence[HistoryRow]) -> bytes:
        return self._lines([csv_row(r, self.open_context) for r in rows])

    def tail(self) -> bytes:
        return b""


def _plain(schema: Any) -> Any:
    """A parsed schema without fastavro's private keys, safe to embed and to mutate."""
    if isinstance(schema, dict):
        return {k: _plain(v) for k, v in schema.items() if not k.startswith("__")}
    if isinstance(schema, list):
        return [_plain(v) for v in schema]
    return schema


def _share_named_types(
    schema: Any, defined: dict[str, Any], renames: dict[str, str], owner: str
) -> Any:
    """Avro allows each named type once per schema: the first event type's definition of
    Source, Actor, Method... stays, later identical ones become references by name. A later
    definition that differs (a type whose envelope moved on) gets its own name."""
    if isinstance(schema, str):
        return renames.get(schema, schema)
    if isinstance(schema, list):
        return [_share_named_types(s, defined, renames, owner) for s in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind in ("record", "enum", "fixed"):
        name = schema["name"]
        held = defined.get(name)
        if held is not None and held == schema:
            return name
        if held is not None:
            renames[name] = f"{name}_{owner}"
            schema = {**schema, "name": renames[name]}
        defined[schema["name"]] = copy.deepcopy(schema)
        if kind == "record":
            fields = [
                {**f, "type": _share_named_types(f["type"], defined, renames, owner)}
                for f in schema["fields"]
            ]
            return {**schema, "fields": fields}
        return schema
    if kind == "array":
        return {**schema, "items": _share_named_types(schema["items"], defined, renames, owner)}
    if kind == "map":
        values = _share_named_types(schema["values"], defined, renames, owner)
        return {**schema, "values": values}
    return schema


def history_schema(writer_schemas: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The Avro schema of a history file: one record per event, wrapping the event in a union
    of every event type's writer schema (the newest version, as the codec writes them)."""
    defined: dict[str, Any] = {}
    branches = []
    for event_type in sorted(writer_schemas):
        plain = _plain(writer_schemas[event_type])
        branches.append(_share_named_types(plain, defined, {}, event_type))
    return {
        "type": "record",
        "name": HISTORY_RECORD,
        "doc": "One event of a subject's history in the consent ledger, in log order.",
        "fields": [
            {"name": "partition", "type": "int", "doc": "Partition of the event topic."},
            {"name": "offset", "type": "long", "doc": "Offset in that partition."},
            {"name": "event_type", "type": "string", "doc": "The event type, e.g. ConsentGranted."},
            {"name": "event", "type": branches, "doc": "The event, as its writer schema says."},
        ],
    }


class _Sink(io.RawIOBase):
    """Collects what the Avro writer writes, so each page's blocks can be streamed out."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self.chunks = b"".join(self.chunks), []
        return out


class AvroHistory:
    """An Avro object container file (deflate), one block per page."""

    def __init__(self, subject_id: str, codec: EventCodec) -> None:
        self.codec = codec
        self.schema = history_schema(codec.schemas())
        self._sink = _Sink()
        try:
            parsed = parse_schema(self.schema)
        except Exception as exc:
            raise HistoryFormatError(f"cannot build the history file's schema: {exc}") from exc
        sink = cast(IO[bytes], self._sink)  # a writable binary stream, all the writer needs
        self._writer = Writer(
            sink, parsed, codec="deflate", metadata={"ledger.subject_id": subject_id}
        )

    def head(self) -> bytes:
        return self._sink.take()

    def record(self, row: HistoryRow) -> dict[str, Any]:
        event = self.codec.decode(row.value)
        body = {**event.envelope(), **event.data}
        return {
            "partition": row.partition,
            "offset": row.offset,
            "event_type": event.type,
            "event": (f"{NAMESPACE}.{event.type}", body),
        }

    def page(self, rows: Sequence[HistoryRow]) -> bytes:
        records = [self.record(row) for row in rows]
        try:
            for record in records:
                self._writer.write(record)
            self._writer.flush()
        except Exception as exc:
            raise HistoryFormatError(f"cannot write the history file: {exc}") from exc
        return self._sink.take()

    def tail(self) -> bytes:
        self._writer.flush()
        return self._sink.take()


def encoder(
    fmt: str, subject_id: str, codec: EventCodec, open_context: ContextOpener | None = None
) -> JsonHistory | CsvHistory | AvroHistory:
    """The encoder of `fmt`; JSON and CSV show contexts opened, the Avro file carries each
    event as its writer schema has it (the personal context fields as ciphertext)."""
    if fmt == "csv":
        return CsvHistory(subject_id, open_context)
    if fmt == "avro":
        return AvroHistory(subject_id, codec)
    return JsonHistory(subject_id, open_context)
