"""Link revocations (table `link_revocations`): which of a subject's links no longer open.

Design: docs/developers/design/links.md
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

import asyncpg

from projections.journal import JournalRow
from schemas import events as ev
from schemas.events import Event

#: the link kinds (services/identity/links.py LinkKind)
UNSUBSCRIBE: Final = "unsubscribe"
PREFERENCES: Final = "preferences"
CONFIRM: Final = "confirm"
#: the address of a row that covers every link of its kind
EVERY_ADDRESS: Final = "*"
#: the address of a row that covers the links issued by subject id
NO_ADDRESS: Final = ""
#: bytes of the blind index a link seals as its address
ADDRESS_BYTES: Final = 8


@dataclass(frozen=True, slots=True)
class Revocation:
    """The links of `kind` for `address` issued at or before `through` no longer open."""

    kind: str
    address: str
    through: datetime
    event_id: UUID


def address_key(blind_index: bytes | None) -> str:
    """How a row names the address a link was issued for (NO_ADDRESS: by subject id)."""
    return NO_ADDRESS if blind_index is None else blind_index[:ADDRESS_BYTES].hex()


def revocations_for(event: Event) -> list[Revocation]:
    """What an event revokes (nothing for most)."""

    def every(*kinds: str) -> list[Revocation]:
        return [Revocation(k, EVERY_ADDRESS, event.recorded_at, event.event_id) for k in kinds]

    match event.type:
        case ev.LINKS_REVOKED:
            return every(PREFERENCES)
        case ev.SUBJECT_ERASED:
            return every(UNSUBSCRIBE, PREFERENCES, CONFIRM)
        case ev.IDENTIFIER_UNLINKED:
            address = address_key(bytes(event.data["blind_index"]))
            # a confirmation link mailed to the address stops too
            return [
                Revocation(kind, a, event.recorded_at, event.event_id)
                for kind in (PREFERENCES, CONFIRM)
                for a in (address, NO_ADDRESS)
            ]
    return []


def is_revoked(
    kind: str, address: bytes | None, issued_at: datetime, revocations: Iterable[Revocation]
) -> bool:
    """Whether a link of `kind`, issued at `issued_at` for `address` (its sealed blind index
    prefix; None: by subject id), is revoked by one of its subject's revocations."""
    key = address_key(address)
    return any(
        r.kind == kind and r.address in (EVERY_ADDRESS, key) and issued_at <= r.through
        for r in revocations
    )


def latest(
    revocations: Iterable[tuple[str, Revocation]],
) -> dict[tuple[str, str, str], Revocation]:
    """Per (subject, kind, address), the revocation reaching furthest (ties: the larger event
    id), as the table keeps it."""
    out: dict[tuple[str, str, str], Revocation] = {}
    for subject_id, r in revocations:
        key = (subject_id, r.kind, r.address)
        held = out.get(key)
        if held is None or (r.through, r.event_id) > (held.through, held.event_id):
            out[key] = r
    return out


def covered(revocations: Iterable[Revocation]) -> list[Revocation]:
    """The rows an every-address row of their kind makes useless: what the table drops."""
    rows = list(revocations)
    widest = {r.kind: r.through for r in rows if r.address == EVERY_ADDRESS}
    return [
        r
        for r in rows
        if r.address != EVERY_ADDRESS and r.kind in widest and r.through <= widest[r.kind]
    ]


UPSERT = """
INSERT INTO link_revocations AS r (subject_id, kind, address, revoked_through, event_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::uuid[])
ON CONFLICT (subject_id, kind, address) DO UPDATE SET
    revoked_through = EXCLUDED.revoked_through, event_id = EXCLUDED.event_id
WHERE (r.revoked_through, r.event_id) < (EXCLUDED.revoked_through, EXCLUDED.event_id)
"""

#: rows the every-address row of their kind covers (SQL form of `covered`)
DROP_COVERED = """
DELETE FROM link_revocations r
WHERE r.subject_id = ANY($1::text[]) AND r.address <> '*'
  AND EXISTS (SELECT 1 FROM link_revocations w
              WHERE w.subject_id = r.subject_id AND w.kind = r.kind AND w.address = '*'
                AND w.revoked_through >= r.revoked_through)
"""

LOAD = """
SELECT kind, address, revoked_through, event_id FROM link_revocations WHERE subject_id = $1
"""


async def apply(conn: asyncpg.Connection, fresh: Sequence[JournalRow]) -> None:
    """Fold the batch's revoking events into the table (in the batch's transaction)."""
    rows = latest((row.event.subject_id, r) for row in fresh for r in revocations_for(row.event))
    if not rows:
        return
    keys = list(rows)
    await conn.execute(
        UPSERT,
        [s for s, _, _ in keys],
        [k for _, k, _ in keys],
        [a for _, _, a in keys],
        [rows[k].through for k in keys],
        [rows[k].event_id for k in keys],
    )
    await conn.execute(DROP_COVERED, sorted({s for s, _, _ in keys}))


async def load(conn: asyncpg.Connection | asyncpg.Pool, subject_id: str) -> list[Revocation]:
    """The subject's revocations, for checking a link it presents."""
    rows = await conn.fetch(LOAD, subject_id)
    return [Revocation(r["kind"], r["address"], r["revoked_through"], r["event_id"]) for r in rows]
