"""The schema files themselves: one per event type, the common fields first, enums that match
the code, and a doc on every field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas import events
from schemas.codec import COMMON_FIELDS, DEFAULT_SCHEMA_DIR

SCHEMA_FILES = sorted(DEFAULT_SCHEMA_DIR.glob("*.avsc"))

TIMESTAMP = {"type": "long", "logicalType": "timestamp-micros"}
OPTIONAL_STRING = {"type": ["null", "string"], "default": None}
COMMON_TYPES: list[dict[str, Any]] = [
    {"name": "event_id", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "subject_id", "type": "string"},
    {"name": "occurred_at", "type": TIMESTAMP},
    {"name": "recorded_at", "type": TIMESTAMP},
    {
        "name": "source",
        "type": {
            "type": "record",
            "name": "Source",
            "fields": [
                {
                    "name": "method",
                    "type": {
                        "type": "enum",
                        "name": "Method",
                        "symbols": list(events.METHODS),
                        "default": "api",
                    },
                },
                {"name": "system", **OPTIONAL_STRING},
                {"name": "collection_point", **OPTIONAL_STRING},
            ],
        },
    },
    {
        "name": "actor",
        "type": {
            "type": "record",
            "name": "Actor",
            "fields": [
                {
                    "name": "type",
                    "type": {
                        "type": "enum",
                        "name": "ActorType",
                        "symbols": list(events.ACTOR_TYPES),
                    },
                },
                {"name": "id", **OPTIONAL_STRING},
            ],
        },
    },
    {"name": "notice_version", **OPTIONAL_STRING},
]
ENUM_SYMBOLS = {
    "Method": events.METHODS,
    "ActorType": events.ACTOR_TYPES,
    "RestrictionGround": events.RESTRICTION_GROUNDS,
    "RelationshipBasis": events.RELATIONSHIP_BASES,
    "ResolutionOutcome": events.RESOLUTION_OUTCOMES,
    "IdentifierType": events.IDENTIFIER_TYPES,
    "ErasureGround": events.ERASURE_GROUNDS,
    "RequestKind": events.REQUEST_KINDS,
}


def _without_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_docs(v) for k, v in node.items() if k != "doc"}
    if isinstance(node, list):
        return [_without_docs(v) for v in node]
    return node


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_every_event_type_has_a_v1_schema_and_nothing_else_does() -> None:
    assert {p.name.split(".")[0] for p in SCHEMA_FILES} == set(events.EVENT_TYPES)
    assert all((DEFAULT_SCHEMA_DIR / f"{t}.v1.avsc").is_file() for t in events.EVENT_TYPES)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_schema_file_follows_the_contract(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert schema["type"] == "record"
    assert schema["name"] == path.name.split(".")[0]
    assert schema["namespace"] == "ledger.events"
    assert schema["doc"]
    names = [field["name"] for field in schema["fields"]]
    assert tuple(names[: len(COMMON_FIELDS)]) == COMMON_FIELDS
    assert _without_docs(schema["fields"][: len(COMMON_FIELDS)]) == COMMON_TYPES
    assert all(field.get("doc") for node in _walk(schema) for field in node.get("fields", []))
    enums = [node for node in _walk(schema) if node.get("type") == "enum"]
    assert enums
    for enum in enums:
        assert tuple(enum["symbols"]) == ENUM_SYMBOLS[enum["name"]], enum["name"]
