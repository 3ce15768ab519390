"""What a receiver does with a verified delivery of the consent ledger, once and only once.

A stand-in for a mail tool's or a CRM's own database (SQLite, standard library only): the
delivery's webhook-id and the change it asks for are saved in one transaction, so a
redelivery of the same webhook-id changes nothing, and the receiver answers 2xx only after
the commit. Replace `apply_event` with the calls your tool needs (see the tool pages).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS processed_webhooks (
    webhook_id   TEXT PRIMARY KEY,
    event_type   TEXT NOT NULL,
    processed_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
-- who must not get marketing, and why: scope is a purpose, or '*' for every purpose
CREATE TABLE IF NOT EXISTS suppressions (
    subject_id TEXT NOT NULL,
    scope      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    PRIMARY KEY (subject_id, scope)
);
-- the subject's addresses as its latest delivery with include_identifiers listed them, to
-- find the contact in the tool (and to erase it by them when an erasure carries none)
CREATE TABLE IF NOT EXISTS contact_addresses (
    subject_id TEXT NOT NULL,
    type       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (subject_id, type, value)
);
"""

#: the fields of every delivery (occurred_at and recorded_at too, unused here)
REQUIRED = frozenset({"type", "event_id", "subject_id", "data"})
#: the e-mail channel, or a change that covers every channel (channel null)
EMAIL_CHANNELS = frozenset({None, "email"})


def parse_event(body: bytes) -> dict[str, Any]:
    """The delivery's JSON object, or ValueError when it is not one of the ledger's events."""
    event = json.loads(body)
    if not isinstance(event, dict) or not event.keys() >= REQUIRED:
        raise ValueError(f"an event is a JSON object with {', '.join(sorted(REQUIRED))}")
    if not isinstance(event["data"], dict):
        raise ValueError("data must be a JSON object")
    identifiers = event["data"].get("identifiers")
    if identifiers is not None and not (
        isinstance(identifiers, list)
        and all(
            isinstance(i, dict)
            and isinstance(i.get("type"), str)
            and isinstance(i.get("value"), str)
            for i in identifiers
        )
    ):
        raise ValueError('data.identifiers must be a list of {"type": ..., "value": ...}')
    return event


def connect(path: str) -> sqlite3.Connection:
    """A connection per request; transactions are begun explicitly."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    connection.executescript(SCHEMA)
    return connection


def record_delivery(
    connection: sqlite3.Connection, webhook_id: str, event: Mapping[str, Any]
) -> bool:
    """Apply the event unless this webhook-id was applied before; False for a repeat.

    The webhook-id is claimed and the change saved in one transaction: a crash before the
    commit leaves neither, so the ledger's retry applies it; a retry after the commit finds
    the id and changes nothing.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        claimed = connection.execute(
            "INSERT INTO processed_webhooks (webhook_id, event_type) VALUES (?, ?)"
            " ON CONFLICT (webhook_id) DO NOTHING",
            (webhook_id, str(event["type"])),
        ).rowcount
        if claimed:
            apply_event(connection, event)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return bool(claimed)


def apply_event(connection: sqlite3.Connection, event: Mapping[str, Any]) -> None:
    """Suppress at once; never re-allow on a webhook alone (ask the ledger before a send)."""
    subject, kind, data = str(event["subject_id"]), event["type"], event["data"]
    if kind == "SubjectErased":
        erase(connection, subject, data)
        return
    if isinstance(data.get("identifiers"), list):
        # the subject's whole current set, read when the delivery was sent: replace what we
        # held, so an address the subject no longer holds (IdentifierUnlinked) is not kept
        connection.execute("DELETE FROM contact_addresses WHERE subject_id = ?", (subject,))
        connection.executemany(
            "INSERT INTO contact_addresses (subject_id, type, value) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [(subject, i["type"], i["value"]) for i in data["identifiers"]],
        )
    for scope, reason in suppressions_of(kind, data):
        connection.execute(
            "INSERT INTO suppressions (subject_id, scope, reason, event_id) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (subject_id, scope) DO UPDATE"
            " SET reason = excluded.reason, event_id = excluded.event_id",
            (subject, scope, reason, str(event["event_id"])),
        )


def erase(connection: sqlite3.Connection, subject: str, data: Mapping[str, Any]) -> None:
    """Art. 17: forget the person, addresses included; the ledger keeps the suppression.

    The contact is found by the subject id, and by the addresses the erasure carries (those
    the subject held, captured before its key was destroyed) where the tool does not store the
    id. `identifiers_withheld: true` says the ledger no longer holds them (a delivery parked,
    then redelivered after the capture was deleted): erase by the subject id alone, with the
    addresses kept for it from earlier deliveries.
    """
    connection.execute("DELETE FROM suppressions WHERE subject_id = ?", (subject,))
    connection.execute("DELETE FROM contact_addresses WHERE subject_id = ?", (subject,))
    if data.get("identifiers_withheld") is True:
        return
    connection.executemany(
        "DELETE FROM contact_addresses WHERE type = ? AND value = ?",
        [(i["type"], i["value"]) for i in data.get("identifiers") or ()],
    )


def suppressions_of(kind: object, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (scope, reason) pairs an event puts on e-mail marketing; none for other events.

    Every event the ledger's decisions deny on is here; lifts, grants and new relationships
    are not: the audience pulled before a send brings the person back.
    """
    if kind == "ConsentWithdrawn" and data.get("channel") in EMAIL_CHANNELS:
        return [(data.get("purpose") or "*", "withdrawn")]
    if kind == "DirectMarketingObjected" and data.get("channel") in EMAIL_CHANNELS:
        return [("*", "objected")]
    if kind == "ProcessingRestricted":
        return [(purpose, "restricted") for purpose in data.get("purposes") or ["*"]]
    if kind == "ProcessingObjected" or (
        # an upheld objection stands for good; compelling_grounds or withdrawn lift it
        kind == "ProcessingObjectionResolved" and data.get("outcome") == "upheld"
    ):
        return [(data.get("purpose") or "*", "objected_processing")]
    if kind == "RelationshipEnded":
        # the purposes that rested on it lose their basis; this store does not know which of
        # the tool's purposes rest on consent instead, so it stops all it names (empty: all)
        return [(purpose, "no_legal_basis") for purpose in data.get("purposes") or ["*"]]
    return []
