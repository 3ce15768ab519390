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


#: the methods of a schema written before the website banner (no `context` field): those
#: schemas are released and never edited, so they keep the symbols they had
EARLIER_METHODS = tuple(m for m in events.METHODS if m not in events.BROWSER_METHODS)


def _with_methods(fields: list[dict[str, Any]], methods: tuple[str, ...]) -> list[dict[str, Any]]:
    """COMMON_TYPES with `methods` as the Method enum's symbols."""
    out: list[dict[str, Any]] = json.loads(json.dumps(fields))
    out[4]["type"]["fields"][0]["type"]["symbols"] = list(methods)
    return out


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
    has_context = "context" in names
    methods = events.METHODS if has_context else EARLIER_METHODS
    assert _without_docs(schema["fields"][: len(COMMON_FIELDS)]) == _with_methods(
        COMMON_TYPES, methods
    )
    assert all(field.get("doc") for node in _walk(schema) for field in node.get("fields", []))
    enums = [node for node in _walk(schema) if node.get("type") == "enum"]
    assert enums
    for enum in enums:
        expected = methods if enum["name"] == "Method" else ENUM_SYMBOLS[enum["name"]]
        assert tuple(enum["symbols"]) == expected, enum["name"]
