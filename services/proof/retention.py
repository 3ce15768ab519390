"""`consent-ledger retention`: purge erased subjects' proof once its retention period ends.

Design: docs/developers/design/retention.md
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg

from projections import erased_proof, journal, webhook_retention
from schemas import events as ev
from services.bootstrap import operator_database
from services.config import Settings
from services.identity import session_store
from services.ledger import idempotency
from services.proof.dead_letter_retention import cutoff, purge_dead_letters
from services.reads.purpose_cache import PurposeCache
from services.rules.catalogue import DEFAULT_PROOF_RETENTION, Catalogue, Purpose, load_catalogue
from services.rules.catalogue_history import CatalogueHistory

log = logging.getLogger(__name__)

#: events whose purposes are named by `purpose` (null: every purpose)
_ONE_PURPOSE: Final = frozenset(
    {
        ev.CONSENT_GRANTED,
        ev.CONSENT_REQUESTED,
        ev.CONSENT_WITHDRAWN,
        ev.PROCESSING_OBJECTED,
        ev.PROCESSING_OBJECTION_RESOLVED,
    }
)
#: events whose purposes are named by `purposes` (empty: every purpose)
_LISTED_PURPOSES: Final = frozenset(
    {
        ev.PROCESSING_RESTRICTED,
        ev.RESTRICTION_LIFTED,
        ev.RELATIONSHIP_RECORDED,
        ev.RELATIONSHIP_ENDED,
    }
)
_DIRECT_MARKETING: Final = frozenset(
    {ev.DIRECT_MARKETING_OBJECTED, ev.DIRECT_MARKETING_OBJECTION_LIFTED}
)


def purposes_of(event_type: str, payload: Mapping[str, Any], catalogue: Catalogue) -> set[str]:
    """The purposes an event is proof for. Identifier events and the erasure itself prove no
    consent; rights requests count for every purpose (they prove a request was answered)."""
    everything = set(catalogue.ids)
    if event_type in _ONE_PURPOSE:
        return {payload["purpose"]} if payload.get("purpose") else everything
    if event_type in _LISTED_PURPOSES:
        return set(payload.get("purposes") or ()) or everything
    if event_type in _DIRECT_MARKETING:
        return {p.id for p in catalogue.purposes.values() if p.direct_marketing}
    if event_type in ev.RIGHTS_REQUEST_EVENTS:
        return everything
    return set()


def proof_until(
    erased_at: datetime, events: Iterable[tuple[str, Mapping[str, Any]]], catalogue: Catalogue
) -> datetime:
    """When an erased subject's proof may go: the erasure plus the longest proof retention of
    the purposes its events concern (a purpose no longer in the catalogue counts as the
    longest of all). With no such event, at the erasure."""
    concerned: set[str] = set()
    for event_type, payload in events:
        concerned |= purposes_of(event_type, payload, catalogue)
    ends = [p.proof_period().after(erased_at) for p in catalogue.purposes.values()]
    known = [
        catalogue.purposes[pid].proof_period().after(erased_at)
        for pid in concerned
        if pid in catalogue.purposes
    ]
    if concerned - set(catalogue.ids):
        known.append(max(ends))
    return max(known, default=erased_at)


@dataclass(frozen=True, slots=True)
class Outcome:
    checked: int
    purged: list[tuple[str, int]]
    #: (subject, when) of the subjects whose proof is still kept
    waiting: list[tuple[str, datetime]]


async def purge_due(
    conn: asyncpg.Connection, topic: str, catalogue: Catalogue, now: datetime, *, dry_run: bool
) -> Outcome:
    """Purge every erased subject whose proof period has ended (one transaction each)."""
    purged: list[tuple[str, int]] = []
    waiting: list[tuple[str, datetime]] = []
    candidates = await erased_proof.kept(conn)
    for subject, erased_at in candidates:
        events = await journal.subject_events(conn, subject)
        until = proof_until(erased_at, ((t, payload) for t, payload, _ in events), catalogue)
        if until > now:
            waiting.append((subject, until))
            continue
        if dry_run:
            purged.append((subject, len(events)))
            continue
        async with conn.transaction():
            partitions = sorted({p for _, _, p in events})
            count = await erased_proof.purge(conn, topic, subject, partitions)
            await idempotency.forget_subject(conn, subject)
            await webhook_retention.forget_subject(conn, subject)
        log.info("purged the proof of erased subject %s: %d journal entries", subject, count)
        purged.append((subject, count))
    return Outcome(len(candidates), purged, waiting)


def longest_kept(history: CatalogueHistory, at: datetime) -> Catalogue:
    """Each purpose ever defined (retired ones too) in its version that keeps proof longest
    from `at`: a proof period promised under any version is kept, and proof of a retired
    purpose keeps that purpose's own period."""
    chosen: dict[str, Purpose] = {}
    for pid in history.ids:
        defined = [v.definition for v in history.versions(pid) if isinstance(v.definition, Purpose)]
        ends = [(end, p) for p in defined if (end := _proof_end(p, at)) is not None]
        if ends:
            chosen[pid] = max(ends, key=lambda e: e[0])[1]
        elif defined:
            chosen[pid] = replace(defined[-1], proof_retention=DEFAULT_PROOF_RETENTION)
    return Catalogue(chosen)


def _proof_end(purpose: Purpose, at: datetime) -> datetime | None:
    """When the purpose's proof period ends, counted from `at`; None (logged) for a version
    recorded under looser rules whose period cannot be counted: the job skips it and keeps
    running rather than failing every night over one stored version."""
    try:
        return purpose.proof_period().after(at)
    except (ValueError, OverflowError) as exc:  # DurationError, or beyond the calendar
        log.error(
            "purpose %s v%s: proof_retention %.40r cannot be counted (%s); the default %s"
            " stands in for it",
            purpose.id,
            purpose.version,
            purpose.proof_retention,
            exc,
            DEFAULT_PROOF_RETENTION,
        )
        return None


async def run_retention(settings: Settings, *, dry_run: bool = False) -> int:
    purposes = PurposeCache(None, load_catalogue(settings.catalogue_file))
    async with operator_database(settings) as conn:
        now = datetime.now(UTC)
        await purposes.reload(conn)
        catalogue = longest_kept(purposes.history, now)
        outcome = await purge_due(conn, settings.topic, catalogue, now, dry_run=dry_run)
        before = cutoff(now, settings.dead_letter_retention_days)
        letters = await purge_dead_letters(conn, settings.topic, before, dry_run=dry_run)
        sessions = await purge_staff_sessions(conn, now, settings, dry_run=dry_run)
    verb = "would purge" if dry_run else "purged"
    events = sum(n for _, n in outcome.purged)
    print(
        f"retention: {outcome.checked} erased subject(s) with proof kept;"
        f" {verb} {len(outcome.purged)} ({events} journal entries)"
    )
    if outcome.waiting:
        subject, until = min(outcome.waiting, key=lambda w: w[1])
        print(f"retention: next proof period ends {until.isoformat()} ({subject})")
    print(
        f"retention: {verb} {letters.rejected} rejected record(s) and {letters.letters} dead"
        f" letter(s) rejected before {letters.before.isoformat()}"
        f" (LEDGER_DEAD_LETTER_RETENTION_DAYS={settings.dead_letter_retention_days})"
    )
    print(
        f"retention: {verb} {sessions} staff session(s) ended more than"
        f" {settings.staff_session_retention_days} days ago"
        f" (LEDGER_STAFF_SESSION_RETENTION_DAYS)"
    )
    return 0


async def purge_staff_sessions(
    conn: asyncpg.Connection, now: datetime, settings: Settings, *, dry_run: bool
) -> int:
    """Delete the staff sessions (key id, the address that signed in) ended more than
    LEDGER_STAFF_SESSION_RETENTION_DAYS ago; a dry run counts them."""
    before = cutoff(now, settings.staff_session_retention_days)
    if dry_run:
        return await session_store.count_purgeable(conn, before)
    return await session_store.purge(conn, before)
