"""The one way events reach the log: once per idempotency key, answered only after the broker's
ack, and refused before anything is claimed or sent while a projector would dead-letter it.

`append` takes one request's events (the API's commands, the pages, erasure, rights requests,
identifiers, notices); `append_many` the events of many keys at once (the importer), with one
transaction for the claims, one publish and one transaction for the acks. Both claim, replay
and acknowledge through `_log_claimed`: the first claim of a key stores the exact records it is
about to send; a later one answers from the broker's ack or the journal, else re-sends those
stored bytes (same event ids, which the projector deduplicates).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol
from uuid import UUID

import asyncpg

from projections.freshness import Verdict
from schemas.codec import EventCodec
from schemas.events import Event
from services.ledger import idempotency
from services.ledger.errors import IdempotencyKeyReused, SubjectErased, WriterKeyUnknown
from services.ledger.idempotency import Claim, Claimant
from services.ledger.publisher import Publisher
from services.rules.erasure import reopens

Position = tuple[int, int]

#: a failed note of the ack only costs a retry a re-send: the events are in the log
_ACK_NOT_NOTED: Final = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class WritesHealth(Protocol):
    """Whether a projector would dead-letter what this process writes
    (services/reads/projection_health.py)."""

    async def writes_verdict(self) -> Verdict: ...


class ErasedSubjects(Protocol):
    """Whether a subject is erased (the API's coalesced check, services/bootstrap.py)."""

    async def get(self, key: str, /) -> bool: ...


@dataclass(frozen=True, slots=True)
class Appended:
    """What one request put in the log (for a replay, what its key's first request put there),
    where, and whether this was a replay."""

    events: list[Event]
    positions: list[Position]
    replayed: bool


@dataclass(frozen=True, slots=True)
class Keyed:
    """The events of one idempotency key, all of one subject, in the order they must land.
    `digest` identifies the request for its key; it must not be a plain hash of personal data."""

    key: str
    digest: bytes
    subject_id: str
    events: list[Event]


async def refuse_unverifiable_writes(health: WritesHealth) -> None:
    """Raise WriterKeyUnknown while a projector would dead-letter what this process writes: an
    acknowledged append would never be applied."""
    refused = (await health.writes_verdict()).writes_refused
    if refused is not None:
        raise WriterKeyUnknown(refused)


async def refuse_reopening(
    erased: ErasedSubjects, subject_id: str, events: Sequence[Event]
) -> None:
    """Raise SubjectErased when an event would reopen processing of an erased subject."""
    if any(reopens(e.type, dict(e.data)) for e in events) and await erased.get(subject_id):
        raise SubjectErased()


def known_positions(claim: Claim, projected: Mapping[UUID, Position]) -> list[Position] | None:
    """Where the events of an earlier claim of the key landed: the broker's ack, else the
    journal's positions once all are projected; None when they must be sent (again)."""
    if claim.first:
        return None
    if claim.acked is not None:
        return claim.acked
    if all(i in projected for i in claim.event_ids):
        return [projected[i] for i in claim.event_ids]
    return None


async def append(
    events: list[Event],
    *,
    key: str | None,
    digest: bytes,
    subject_id: str,
    codec: EventCodec,
    pool: asyncpg.Pool,
    publisher: Publisher,
    health: WritesHealth,
    erased: ErasedSubjects,
    hash_key: bytes,
) -> Appended:
    """Put one request's `events` in the log, once per idempotency `key` (none: every call
    appends). `hash_key` is the blind-index key the stored key is hashed with. Raises
    WriterKeyUnknown or SubjectErased before anything is claimed or sent,
    IdempotencyKeyReused, BrokerUnavailable (nothing is confirmed; a retry with the same key
    completes it) or CodecError."""
    await refuse_unverifiable_writes(health)
    await refuse_reopening(erased, subject_id, events)
    values = [codec.encode(e) for e in events]
    if key is None:
        positions = await publisher.publish(list(zip(events, values, strict=True)))
        return Appended(events, positions, replayed=False)
    item = Keyed(key, digest, subject_id, events)
    [(claim, positions)] = await _log_claimed(
        [item], [values], codec=codec, pool=pool, publisher=publisher, hash_key=hash_key
    )
    if not claim.first:
        events = [codec.decode(v) for v in claim.record_values]
    return Appended(events, positions, replayed=not claim.first)


async def append_many(
    items: Sequence[Keyed],
    *,
    codec: EventCodec,
    pool: asyncpg.Pool,
    publisher: Publisher,
    health: WritesHealth,
    hash_key: bytes,
) -> list[bool]:
    """Put each item's events in the log once per key; returns, per item, whether an earlier
    claim of its key existed (a replay). Raises as `append` (the caller refuses erased
    subjects itself); after BrokerUnavailable a later call with the same keys completes the
    job."""
    await refuse_unverifiable_writes(health)
    values = [[codec.encode(e) for e in item.events] for item in items]
    logged = await _log_claimed(
        items, values, codec=codec, pool=pool, publisher=publisher, hash_key=hash_key
    )
    return [not claim.first for claim, _ in logged]


async def _log_claimed(
    items: Sequence[Keyed],
    values: Sequence[list[bytes]],
    *,
    codec: EventCodec,
    pool: asyncpg.Pool,
    publisher: Publisher,
    hash_key: bytes,
) -> list[tuple[Claim, list[Position]]]:
    """Claim each item's key, send what is not known to be in the log yet (in one publish,
    every ack awaited), note the acks; each item's claim and where its events are."""
    if not items:
        return []
    # the key is stored only as its keyed hash
    hashes = [idempotency.key_hash(hash_key, item.key) for item in items]
    claims = await idempotency.claim_all(
        pool,
        [
            Claimant(hashed, item.digest, item.subject_id, [e.event_id for e in item.events], v)
            for item, hashed, v in zip(items, hashes, values, strict=True)
        ],
    )
    if not all(claim.digest_matches for claim in claims):
        raise IdempotencyKeyReused()
    unacked = [i for c in claims if not c.first and c.acked is None for i in c.event_ids]
    projected = await idempotency.projected_positions(pool, unacked) if unacked else {}
    known = [known_positions(claim, projected) for claim in claims]
    sends: list[tuple[int, list[tuple[Event, bytes]]]] = []
    for n, (item, claim, mine) in enumerate(zip(items, claims, values, strict=True)):
        if known[n] is not None:
            continue
        if claim.first:
            sends.append((n, list(zip(item.events, mine, strict=True))))
        else:
            sends.append((n, [(codec.decode(v), v) for v in claim.record_values]))
    records = [record for _, batch in sends for record in batch]
    sent = await publisher.publish(records) if records else []
    positions: list[list[Position]] = [at or [] for at in known]
    start = 0
    for n, batch in sends:
        positions[n], start = sent[start : start + len(batch)], start + len(batch)
    if sends:
        with contextlib.suppress(*_ACK_NOT_NOTED):
            await idempotency.record_acks(pool, [(hashes[n], positions[n]) for n, _ in sends])
    return list(zip(claims, positions, strict=True))
