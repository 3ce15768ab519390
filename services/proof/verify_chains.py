"""`consent-ledger verify`: recompute every subject's hash chain from the journal's stored bytes
and report the first broken link.

The journal is read subject after subject through one server-side cursor in one read-only
snapshot, so memory stays bounded however large it is. Exit codes: 0 every chain is intact,
1 a broken link was found, 2 the database could not be read.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import asyncpg
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from projections import chain_store, journal
from projections.chain_verify import Break, SubjectVerifier
from schemas.codec import EventCodec, default_codec
from services.bootstrap import connect_database
from services.config import Settings

#: broken subjects listed by name; the rest are counted
LISTED: Final = 20
#: entries between two progress-bar updates
_STEP: Final = 500


@dataclass(slots=True)
class Summary:
    subjects: int = 0
    events: int = 0
    broken_subjects: int = 0
    #: the first LISTED broken subjects (in subject order) with their first broken link
    broken: list[tuple[str, Break]] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.broken_subjects == 0

    def add(self, verifier: SubjectVerifier) -> None:
        self.subjects += 1
        self.events += verifier.events
        if verifier.first_broken is not None:
            self.broken_subjects += 1
            if len(self.broken) < LISTED:
                self.broken.append((verifier.subject_id, verifier.first_broken))


async def verify_all(
    conn: asyncpg.Connection,
    codec: EventCodec,
    advance: Callable[[int], None] = lambda _: None,
) -> Summary:
    """Every subject's chain; `advance(n)` reports progress in entries."""
    summary = Summary()
    current: SubjectVerifier | None = None
    pending = 0
    async for entry in chain_store.all_entries(conn):
        if current is None or entry.subject_id != current.subject_id:
            if current is not None:
                summary.add(current)
            current = SubjectVerifier(entry.subject_id, codec)
        current.feed(entry)
        pending += 1
        if pending >= _STEP:
            advance(pending)
            pending = 0
    if current is not None:
        summary.add(current)
    advance(pending)
    return summary


def report(summary: Summary) -> str:
    if summary.valid:
        return (
            f"verify: {summary.subjects:,} subjects, {summary.events:,} events:"
            " every chain is intact"
        )
    lines = [
        f"verify: BROKEN: {summary.broken_subjects:,} of {summary.subjects:,} subjects have a"
        f" broken chain ({summary.events:,} events checked)"
    ]
    for i, (subject_id, found) in enumerate(summary.broken):
        label = "first broken link:" if i == 0 else "                  "
        lines.append(
            f"  {label} subject {subject_id}, event {found.event_id}"
            f" (partition {found.partition}, offset {found.offset}): {found.reason}: {found.detail}"
        )
    if summary.broken_subjects > len(summary.broken):
        lines.append(f"  ... and {summary.broken_subjects - len(summary.broken):,} more subjects")
    return "\n".join(lines)


async def run_verify(settings: Settings, *, progress: bool = True) -> int:
    try:
        conn = await connect_database(settings)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"consent-ledger verify: cannot reach the database ({exc})", file=sys.stderr)
        return 2
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            total = await journal.entry_count(conn)
            with Progress(
                TextColumn("verifying"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("events"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                disable=not progress or not sys.stdout.isatty(),
            ) as bar:
                task = bar.add_task("journal", total=total)
                summary = await verify_all(conn, default_codec(), lambda n: bar.advance(task, n))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"consent-ledger verify: reading the journal failed ({exc})", file=sys.stderr)
        return 2
    finally:
        await conn.close()
    print(report(summary))
    return 0 if summary.valid else 1
