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
from schemas.events import NOTICE_KEY_PREFIX, PURPOSE_KEY_PREFIX
from services.bootstrap import connect_database
from services.config import Settings

#: broken subjects listed by name; the rest are counted
LISTED: Final = 20
#: entries between two progress-bar updates
_STEP: Final = 500


#: what a chain's key names: a subject, a purpose (purpose/<id>) or a privacy notice
#: (notice/<version>), each with its own chain
KINDS: Final = (("purpose", PURPOSE_KEY_PREFIX), ("notice", NOTICE_KEY_PREFIX))


def chain_of(key: str) -> tuple[str, str]:
    """(kind, name) of the chain keyed `key`: ("purpose", "newsletter"), ("subject", "s-1")."""
    for kind, prefix in KINDS:
        if key.startswith(prefix):
            return kind, key.removeprefix(prefix)
    return "subject", key


@dataclass(slots=True)
class Summary:
    #: chains of subjects, of purposes and of privacy notices
    subjects: int = 0
    events: int = 0
    broken_chains: int = 0
    #: the first LISTED broken chains (in key order) with their first broken link
    broken: list[tuple[str, Break]] = field(default_factory=list)
    purposes: int = 0
    notices: int = 0

    @property
    def valid(self) -> bool:
        return self.broken_chains == 0

    @property
    def chains(self) -> int:
        return self.subjects + self.purposes + self.notices

    def add(self, verifier: SubjectVerifier) -> None:
        kind, _ = chain_of(verifier.subject_id)
        if kind == "purpose":
            self.purposes += 1
        elif kind == "notice":
            self.notices += 1
        else:
            self.subjects += 1
        self.events += verifier.events
        if verifier.first_broken is not None:
            self.broken_chains += 1
            if len(self.broken) < LISTED:
                self.broken.append((verifier.subject_id, verifier.first_broken))


async def verify_all(
    conn: asyncpg.Connection,
    codec: EventCodec,
    advance: Callable[[int], None] = lambda _: None,
) -> Summary:
    """Every chain (subjects', purposes', notices'); `advance(n)` reports progress in entries."""
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
    kinds = (
        f"{summary.subjects:,} subjects, {summary.purposes:,} purposes,"
        f" {summary.notices:,} privacy notices"
    )
    if summary.valid:
        return (
            f"verify: {summary.events:,} events in {summary.chains:,} chains ({kinds}):"
            " every chain is intact"
        )
    lines = [
        f"verify: BROKEN: {summary.broken_chains:,} of {summary.chains:,} chains ({kinds}) have a"
        f" broken link ({summary.events:,} events checked)"
    ]
    for i, (key, found) in enumerate(summary.broken):
        label = "first broken link:" if i == 0 else "                  "
        kind, name = chain_of(key)
        lines.append(
            f"  {label} {kind} {name}, event {found.event_id}"
            f" (partition {found.partition}, offset {found.offset}): {found.reason}: {found.detail}"
        )
    if summary.broken_chains > len(summary.broken):
        lines.append(f"  ... and {summary.broken_chains - len(summary.broken):,} more chains")
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
