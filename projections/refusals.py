"""Which records a projector batch refuses, and where they are kept.

A record of the event topic is refused when it has no valid MAC at or above its partition's
cut-off (`unauthenticated-record`: schemas/record_mac.py, projections/mac_cutoffs.py), or
when the codec cannot decode it (`undecodable-record`). A refused record is kept in
`rejected_records` with its key, value, headers, error and reason, and queued for the
dead-letter topic (projections/dead_letters.py); it is never journaled.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from projections import chain_store, dead_letters, mac_cutoffs
from projections.dead_letters import RESTORE_PLACEHOLDER, UNAUTHENTICATED, UNDECODABLE, DeadLetter
from projections.log_records import LogRecord
from schemas.codec import CodecError, EventCodec
from schemas.record_mac import Verdict, encode_headers, mac_text

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A record the batch refuses: the detail for people, the reason for machines."""

    record: LogRecord
    error: str
    reason: str


def screen(
    codec: EventCodec,
    records: Sequence[LogRecord],
    verdicts: Sequence[Verdict],
    cutoffs: Mapping[int, int],
) -> tuple[list[chain_store.Candidate], list[Refusal]]:
    """Refuse what has no valid MAC (`verdicts`, one per record) where `cutoffs` require one,
    then decode the rest: the candidates to journal, and the refusals."""
    candidates: list[chain_store.Candidate] = []
    rejects: list[Refusal] = []
    for rec, verdict in zip(records, verdicts, strict=True):
        mac: str | None = None
        if verdict is Verdict.VALID:
            mac = mac_text(rec.headers)
        elif mac_cutoffs.requires_mac(cutoffs, rec.partition, rec.offset):
            rejects.append(Refusal(rec, f"{UNAUTHENTICATED}: {verdict.value}", UNAUTHENTICATED))
            continue
        try:
            if rec.value is None:
                raise CodecError("record has no value")
            event = codec.decode(rec.value)
        except CodecError as exc:
            rejects.append(Refusal(rec, str(exc), UNDECODABLE))
            continue
        candidates.append((event, rec.partition, rec.offset, rec.value, mac))
    return candidates, rejects


async def keep(conn: asyncpg.Connection, topic: str, rejects: list[Refusal]) -> None:
    """Keep the refusals in rejected_records (with all their headers) and queue their dead
    letters, in the batch's transaction."""
    for x in rejects:
        log.error(
            "%s kept in rejected_records and queued for the dead-letter topic:"
            " partition=%d offset=%d: %s",
            x.reason,
            x.record.partition,
            x.record.offset,
            x.error,
        )
    await conn.executemany(
        "INSERT INTO rejected_records (topic, log_partition, log_offset, error, record_key,"
        " record_value, reason, record_headers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT DO NOTHING",
        [
            (
                topic,
                x.record.partition,
                x.record.offset,
                x.error,
                x.record.key,
                x.record.value,
                x.reason,
                encode_headers(x.record.headers),
            )
            for x in rejects
        ],
    )
    await dead_letters.enqueue(
        conn,
        [
            DeadLetter(
                topic,
                x.record.partition,
                x.record.offset,
                x.error,
                x.record.key,
                x.record.value,
                x.reason,
            )
            for x in rejects
        ],
    )


async def keep_placeholders(
    conn: asyncpg.Connection,
    topic: str,
    positions: Sequence[tuple[int, int]],
    *,
    key: bytes,
    error: str,
    headers: bytes,
) -> None:
    """Keep the placeholders a restore produced where the database held no record
    (services/operations/restore_plan.py): rejected records without a value."""
    await conn.executemany(
        "INSERT INTO rejected_records (topic, log_partition, log_offset, error, record_key,"
        " record_value, reason, record_headers) VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)",
        [(topic, p, o, error, key, RESTORE_PLACEHOLDER, headers) for p, o in positions],
    )
