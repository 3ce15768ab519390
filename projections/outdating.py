"""When a material privacy notice outdates a consent (pure): a published `Notice`, and the
published `Notices` as the decision rules read them (the `notices` table and its projection:
projections/notices.py).

A grant is *judged by* the `effective_from` of the notice version it names when the ledger has
that version, and by its own `occurred_at` otherwise (no version, or one never published). It
is outdated at `now` by a material notice covering the purpose whose `effective_from` is later
than that instant and not later than `now`. Notices that take effect at the same instant do not
outdate each other (services/rules/decisions.py applies the rule, per purpose).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from uuid import UUID

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
