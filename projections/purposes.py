"""The purpose catalogue's versions: the `purpose_versions` projection of the PurposeDefined and
PurposeRetired events (keyed `purpose/<id>`). The same concept as services/api/purposes.py, on
the projections' side.

Design: docs/developers/design/purpose-catalogue.md
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg

from projections.state import Position
from schemas.events import PURPOSE_EVENTS, PURPOSE_RETIRED, Event


@dataclass(frozen=True, slots=True)
class PurposeRow:
    """One version as recorded: the event's fields, who recorded it and where in the log."""

    purpose_id: str
    version: int
    retired: bool
    in_force_from: datetime
    data: dict[str, Any]
    event_id: UUID
    actor_type: str
    actor_id: str | None
    position: Position
    recorded_at: datetime

    @property
    def event_type(self) -> str:
        return PURPOSE_RETIRED if self.retired else "PurposeDefined"

    def event_data(self) -> dict[str, Any]:
        """The event's fields after the envelope, as the codec decoded them."""
        return {**self.data, "in_force_from": self.in_force_from}


def row_for(event: Event, position: Position) -> PurposeRow | None:
    """The row a purpose event sets; None for every other event."""
    if event.type not in PURPOSE_EVENTS:
        return None
    data = {k: v for k, v in event.data.items() if k != "in_force_from"}
    return PurposeRow(
        purpose_id=event.data["purpose"],
        version=event.data["version"],
        retired=event.type == PURPOSE_RETIRED,
        in_force_from=event.data["in_force_from"],
        data=data,
        event_id=event.event_id,
        actor_type=event.actor.type,
        actor_id=event.actor.id,
        position=position,
        recorded_at=event.recorded_at,
    )


INSERT: Final = """
INSERT INTO purpose_versions (purpose_id, version, retired, in_force_from, data, event_id,
                              actor_type, actor_id, log_partition, log_offset, recorded_at)
SELECT * FROM unnest($1::text[], $2::int[], $3::bool[], $4::timestamptz[], $5::jsonb[],
                     $6::uuid[], $7::text[], $8::text[], $9::int[], $10::bigint[],
                     $11::timestamptz[])
ORDER BY 9, 10
ON CONFLICT (purpose_id, version) DO NOTHING
"""


async def apply(conn: asyncpg.Connection, events: Iterable[tuple[Event, Position]]) -> int:
    """Keep the first event of each purpose's version (in log order; every event of a purpose
    is on one partition); a later one under the same version changes nothing. Returns how many
    versions the batch added: a duplicate of a kept version (another process's event for the
    same number) is no change, and must not send every subject's state again."""
    rows = sorted(
        (r for e, pos in events if (r := row_for(e, pos)) is not None), key=lambda r: r.position
    )
    if not rows:
        return 0
    status: str = await conn.execute(
        INSERT,
        [r.purpose_id for r in rows],
        [r.version for r in rows],
        [r.retired for r in rows],
        [r.in_force_from for r in rows],
        [json.dumps(r.data) for r in rows],
        [r.event_id for r in rows],
        [r.actor_type for r in rows],
        [r.actor_id for r in rows],
        [r.position[0] for r in rows],
        [r.position[1] for r in rows],
        [r.recorded_at for r in rows],
    )
    return int(status.rsplit(" ", 1)[1])  # "INSERT 0 <rows>"


SELECT: Final = """
SELECT purpose_id, version, retired, in_force_from, data, event_id, actor_type, actor_id,
       log_partition, log_offset, recorded_at
FROM purpose_versions
"""


def _from_row(row: asyncpg.Record) -> PurposeRow:
    return PurposeRow(
        purpose_id=row["purpose_id"],
        version=row["version"],
        retired=row["retired"],
        in_force_from=row["in_force_from"],
        data=json.loads(row["data"]),
        event_id=row["event_id"],
        actor_type=row["actor_type"],
        actor_id=row["actor_id"],
        position=(row["log_partition"], row["log_offset"]),
        recorded_at=row["recorded_at"],
    )


async def all_versions(conn: asyncpg.Connection | asyncpg.Pool) -> list[PurposeRow]:
    """Every version of every purpose, in log order (the catalogue's order)."""
    rows = await conn.fetch(SELECT + " ORDER BY recorded_at, log_partition, log_offset")
    return [_from_row(r) for r in rows]


async def get(
    conn: asyncpg.Connection | asyncpg.Pool, purpose_id: str, version: int
) -> PurposeRow | None:
    row = await conn.fetchrow(
        SELECT + " WHERE purpose_id = $1 AND version = $2", purpose_id, version
    )
    return _from_row(row) if row is not None else None


async def count(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """How many versions the table holds: it only grows, so a changed count is a change."""
    found: int = await conn.fetchval("SELECT count(*) FROM purpose_versions")
    return found


#: where the table stands: how many versions, and the log position of the last one
Mark = tuple[int, Position | None]

MARK: Final = """
SELECT (SELECT count(*) FROM purpose_versions) AS n,
       (SELECT ARRAY[log_partition::bigint, log_offset] FROM purpose_versions
        ORDER BY log_partition DESC, log_offset DESC LIMIT 1) AS last
"""


def mark_of(rows: list[PurposeRow]) -> Mark:
    """The mark of the versions as read."""
    return len(rows), max((r.position for r in rows), default=None)


async def mark(conn: asyncpg.Connection | asyncpg.Pool) -> Mark:
    """Where the table stands, in one cheap query: a changed count or last position is a change
    (a rebuild or restore from another log can hold as many versions at other positions)."""
    row = await conn.fetchrow(MARK)
    if row is None:  # a SELECT without FROM answers one row
        raise TypeError("the mark query answered no row")
    last = row["last"]
    return row["n"], (int(last[0]), int(last[1])) if last is not None else None
