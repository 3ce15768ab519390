"""Privacy notices: the `notices` projection, and the pure rule of when a material change
outdates a consent.

A NoticePublished event is keyed `notice/<version>` on the event topic, so the projector that
folds subjects folds notices too, the journal keeps them (restore covers them) and a command's
token waits for them like for any event. The first event of a version in log order wins: every
event of one version is on one partition.

The rule (services/rules/decisions.py applies it, per purpose): a grant is *judged by* the
`effective_from` of the notice version it names when the ledger has that version, and by its
own `occurred_at` otherwise (no version, or one never published). It is outdated at `now` by a
material notice covering the purpose whose `effective_from` is later than that instant and not
later than `now`. Notices that take effect at the same instant do not outdate each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg

from projections.state import Fact, Position
from schemas import events as ev
from schemas.events import Event, rfc3339

#: the event id of a notice built in memory (tests, a command not yet logged)
NO_EVENT: Final = UUID(int=0)


@dataclass(frozen=True, slots=True)
class Notice:
    version: str
    effective_from: datetime
    text_sha256: str
    url: str
    material: bool
    #: purpose ids the change affects; empty = every purpose
    purposes: tuple[str, ...] = ()
    language: str | None = None
    event_id: UUID = NO_EVENT
    published_at: datetime | None = None
    position: Position = (0, 0)

    def covers(self, purpose_id: str) -> bool:
        return not self.purposes or purpose_id in self.purposes

    def content(self) -> dict[str, Any]:
        """What defines the version: two publications of it must agree on all of it."""
        return {
            "version": self.version,
            "effective_from": rfc3339(self.effective_from),
            "text_sha256": self.text_sha256,
            "url": self.url,
            "material": self.material,
            "purposes": sorted(self.purposes),
            "language": self.language,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            **self.content(),
            "purposes": list(self.purposes),
            "event_id": str(self.event_id),
            "published_at": rfc3339(self.published_at) if self.published_at else None,
        }


@dataclass(frozen=True, slots=True)
class Notices:
    """The published notices, as the decision rules read them."""

    by_version: Mapping[str, Notice]
    #: the material notices, by effective_from
    material: tuple[Notice, ...] = field(default=())

    @classmethod
    def of(cls, notices: Iterable[Notice]) -> Notices:
        by_version = {n.version: n for n in notices}
        material = sorted(
            (n for n in by_version.values() if n.material),
            key=lambda n: (n.effective_from, n.version),
        )
        return cls(by_version, tuple(material))

    def reference(self, grant: Fact) -> datetime:
        """The instant a grant is judged by: its notice's effective_from, else its own time."""
        notice = self.by_version.get(grant.notice_version) if grant.notice_version else None
        return notice.effective_from if notice is not None else grant.occurred_at

    def outdating(self, purpose_id: str, grant: Fact, now: datetime) -> Notice | None:
        """The latest material change for the purpose in effect at `now` that took effect
        after the grant's reference instant; None when the grant is current."""
        since = self.reference(grant)
        found = None
        for notice in self.material:
            if notice.effective_from > now:
                break
            if notice.effective_from > since and notice.covers(purpose_id):
                found = notice
        return found

    def next_outdating(self, purpose_id: str, grant: Fact, now: datetime) -> Notice | None:
        """The first material change for the purpose still to take effect after `now` that
        will outdate the grant: when an allowing decision ends by the clock alone."""
        since = max(self.reference(grant), now)
        for notice in self.material:
            if notice.effective_from > since and notice.covers(purpose_id):
                return notice
        return None

    def cutoff(self, purpose_id: str, now: datetime) -> datetime | None:
        """The effective_from of the latest material change for the purpose in effect at
        `now`: a grant whose reference instant is earlier is outdated."""
        found = None
        for notice in self.material:
            if notice.effective_from > now:
                break
            if notice.covers(purpose_id):
                found = notice.effective_from
        return found


NO_NOTICES: Final = Notices({})


def notice_from_event(event: Event, position: Position) -> Notice | None:
    if event.type != ev.NOTICE_PUBLISHED:
        return None
    data = event.data
    return Notice(
        version=data["version"],
        effective_from=data["effective_from"],
        text_sha256=data["text_sha256"],
        url=data["url"],
        material=data["material"],
        purposes=tuple(data.get("purposes") or ()),
        language=data.get("language"),
        event_id=event.event_id,
        published_at=event.recorded_at,
        position=position,
    )


INSERT = """
INSERT INTO notices (version, effective_from, text_sha256, url, material, purposes, language,
                     event_id, log_partition, log_offset, published_at)
SELECT v, ef, d, u, m, coalesce(string_to_array(nullif(p, ''), E'\\x1f'), '{}'),
       l, e, lp, lo, pa
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::bool[], $6::text[],
            $7::text[], $8::uuid[], $9::int[], $10::bigint[], $11::timestamptz[])
     AS x(v, ef, d, u, m, p, l, e, lp, lo, pa)
ORDER BY lp, lo
ON CONFLICT (version) DO NOTHING
"""


async def insert(conn: asyncpg.Connection, notices: Sequence[Notice]) -> None:
    """Keep the first publication of each version (in log order); later ones change nothing."""
    if not notices:
        return
    first: dict[str, Notice] = {}
    for n in sorted(notices, key=lambda n: n.position):
        first.setdefault(n.version, n)
    rows = list(first.values())
    await conn.execute(
        INSERT,
        [n.version for n in rows],
        [n.effective_from for n in rows],
        [n.text_sha256 for n in rows],
        [n.url for n in rows],
        [n.material for n in rows],
        ["\x1f".join(n.purposes) for n in rows],
        [n.language for n in rows],
        [n.event_id for n in rows],
        [n.position[0] for n in rows],
        [n.position[1] for n in rows],
        [n.published_at for n in rows],
    )


def _from_row(row: asyncpg.Record) -> Notice:
    return Notice(
        version=row["version"],
        effective_from=row["effective_from"],
        text_sha256=row["text_sha256"],
        url=row["url"],
        material=row["material"],
        purposes=tuple(row["purposes"]),
        language=row["language"],
        event_id=row["event_id"],
        published_at=row["published_at"],
        position=(row["log_partition"], row["log_offset"]),
    )


SELECT: Final = """
SELECT version, effective_from, text_sha256, url, material, purposes, language, event_id,
       log_partition, log_offset, published_at
FROM notices
"""


async def all_notices(conn: asyncpg.Connection | asyncpg.Pool) -> list[Notice]:
    """Every published version, by effective_from."""
    rows = await conn.fetch(SELECT + " ORDER BY effective_from, version")
    return [_from_row(r) for r in rows]


async def load(conn: asyncpg.Connection | asyncpg.Pool) -> Notices:
    return Notices.of(await all_notices(conn))


async def get(conn: asyncpg.Connection | asyncpg.Pool, version: str) -> Notice | None:
    row = await conn.fetchrow(SELECT + " WHERE version = $1", version)
    return _from_row(row) if row is not None else None


#: Subjects holding a grant for one of `$1` (every purpose when NULL): a material notice that
#: is already in effect changes their decisions, so the state feed must publish them again.
GRANTEES = """
SELECT DISTINCT subject_id, log_partition, log_offset FROM subject_facts
WHERE kind = 'consent' AND event_type = 'ConsentGranted'
  AND ($1::text[] IS NULL OR scope_a = ANY($1::text[]))
"""


async def grantees(
    conn: asyncpg.Connection, purposes: Sequence[str] | None
) -> list[tuple[str, Position]]:
    rows = await conn.fetch(GRANTEES, list(purposes) if purposes is not None else None)
    return [(r["subject_id"], (r["log_partition"], r["log_offset"])) for r in rows]


#: Subjects after the cursor holding a grant for the purpose judged by an instant before the
#: cutoff (the grant's notice's effective_from, else its own time), in subject order.
GRANTED_BEFORE: Final = """
SELECT f.subject_id FROM subject_facts f
LEFT JOIN notices n ON n.version = f.notice_version
WHERE f.kind = 'consent' AND f.event_type = 'ConsentGranted' AND f.scope_a = $1
  AND coalesce(n.effective_from, f.occurred_at) < $2 AND f.subject_id > $3
GROUP BY f.subject_id
ORDER BY f.subject_id
LIMIT $4
"""


async def granted_before(
    conn: asyncpg.Connection | asyncpg.Pool, purpose: str, cutoff: datetime, after: str, limit: int
) -> list[str]:
    """Up to `limit` subjects after `after` whose grant for the purpose predates `cutoff`:
    the candidates for asking again after a material notice (GRANTED_BEFORE)."""
    rows = await conn.fetch(GRANTED_BEFORE, purpose, cutoff, after, limit)
    return [r["subject_id"] for r in rows]


async def apply(
    conn: asyncpg.Connection, events: Iterable[tuple[Event, Position]]
) -> list[tuple[str, Position]]:
    """Project the NoticePublished events among `events` (in the batch's transaction).

    Returns the subjects whose published state a material notice changes, for the state feed:
    every holder of a grant for a purpose it covers, whether it is in effect already (their
    decisions change now) or takes effect later (their entries' `until` changes)."""
    published = [n for e, pos in events if (n := notice_from_event(e, pos)) is not None]
    if not published:
        return []
    await insert(conn, published)
    touched: list[tuple[str, Position]] = []
    for notice in published:
        if notice.material:
            touched += await grantees(conn, notice.purposes or None)
    return touched
