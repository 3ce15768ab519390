"""Verifying a subject's journal entries against its hash chain (pure: entries in, verdict out).

The chain covers the stored record bytes and their order. The other columns of a journal row
(ids, times, the JSON payload that history answers show) are derived from those bytes, so they
are checked by decoding the bytes again and comparing. The first entry that fails either check
is the subject's first broken link; later entries are still counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from projections.hash_chain import GENESIS, subject_link
from projections.journal import event_payload
from schemas.codec import CodecError, EventCodec
from schemas.events import Event

#: why an entry breaks the chain, in the order they are checked
HASH_MISMATCH: Final = "hash_mismatch"
UNDECODABLE: Final = "undecodable"
FIELDS_MISMATCH: Final = "fields_mismatch"
PAYLOAD_MISMATCH: Final = "payload_mismatch"
BREAK_REASONS: Final = (HASH_MISMATCH, UNDECODABLE, FIELDS_MISMATCH, PAYLOAD_MISMATCH)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One stored journal row, as read back for verification."""

    event_id: UUID
    subject_id: str
    event_type: str
    partition: int
    offset: int
    occurred_at: datetime
    recorded_at: datetime
    #: the stored JSON text of the payload column
    payload: str
    value: bytes
    chain_hash: bytes


@dataclass(frozen=True, slots=True)
class Break:
    event_id: UUID
    partition: int
    offset: int
    reason: str
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": str(self.event_id),
            "partition": self.partition,
            "offset": self.offset,
            "reason": self.reason,
            "detail": self.detail,
        }


class SubjectVerifier:
    """Feed one subject's entries in log order; then read `valid`, `first_broken`, `head`."""

    def __init__(self, subject_id: str, codec: EventCodec) -> None:
        self.subject_id = subject_id
        self.codec = codec
        self.events = 0
        self.first_broken: Break | None = None
        #: the chain recomputed from the stored bytes so far
        self.head = GENESIS

    @property
    def valid(self) -> bool:
        return self.first_broken is None

    def feed(self, entry: JournalEntry) -> None:
        self.events += 1
        self.head = subject_link(self.head, entry.value)
        if self.first_broken is not None:
            return
        problem = self._problem(entry)
        if problem is not None:
            reason, detail = problem
            self.first_broken = Break(entry.event_id, entry.partition, entry.offset, reason, detail)

    def _problem(self, entry: JournalEntry) -> tuple[str, str] | None:
        if entry.chain_hash != self.head:
            return HASH_MISMATCH, (
                "the stored hash differs from the one recomputed from the stored record bytes:"
                " this record, the order of the subject's records or an earlier one changed"
            )
        try:
            event = self.codec.decode(entry.value)
        except CodecError as exc:
            return UNDECODABLE, f"the stored record no longer decodes: {exc}"
        differing = _columns_differing(entry, event, self.subject_id)
        if differing:
            return FIELDS_MISMATCH, f"column {differing[0]} differs from the stored record"
        key = payload_difference(entry.payload, event)
        if key is not None:
            return PAYLOAD_MISMATCH, f"payload field {key!r} differs from the stored record"
        return None


def _columns_differing(entry: JournalEntry, event: Event, subject_id: str) -> list[str]:
    pairs = {
        "event_id": (entry.event_id, event.event_id),
        "subject_id": (entry.subject_id, event.subject_id),
        "event_type": (entry.event_type, event.type),
        "occurred_at": (entry.occurred_at, event.occurred_at),
        "recorded_at": (entry.recorded_at, event.recorded_at),
    }
    out = [name for name, (stored, decoded) in pairs.items() if stored != decoded]
    if event.subject_id != subject_id and "subject_id" not in out:
        out.append("subject_id")
    return out


def payload_difference(stored_text: str, event: Event) -> str | None:
    """The first payload field that differs from the event's own, or None.

    A field missing from the stored payload is accepted when the event's value is null: a
    newer schema version may add a field with a null default after the payload was written.
    """
    try:
        stored = json.loads(stored_text)
    except ValueError:
        return "(not JSON)"
    if not isinstance(stored, dict):
        return "(not an object)"
    fresh = json.loads(json.dumps(event_payload(event)))
    for key in sorted(stored.keys() | fresh.keys()):
        if key not in fresh or (key in stored and stored[key] != fresh[key]):
            return str(key)
        if key not in stored and fresh[key] is not None:
            return str(key)
    return None
