"""The purpose catalogue over time: every version of every purpose, and which were in force at
an instant, so a decision as of last spring reads last spring's definitions.

Pure: built from the `PurposeDefined` and `PurposeRetired` events the purposes projection keeps,
or, on a log that has none yet, from the catalogue file as one version in force since the epoch.

Design: docs/developers/design/purpose-catalogue.md
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from services.rules.catalogue import Catalogue, Purpose

#: the instant the versions seeded from the catalogue file are in force from: the file governed
#: every decision the ledger made before the log recorded it
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: the least step between a purpose's versions: each is in force at an instant of its own
TICK: Final = timedelta(microseconds=1)


class HistoryError(ValueError):
    """The versions contradict each other (two definitions under one version number)."""


@dataclass(frozen=True, slots=True)
class PurposeRetirement:
    """A purpose withdrawn from a version on: absent from the catalogue afterwards, so no
    decision allows it, while its earlier versions still answer for the past."""

    id: str
    version: int


class PurposeVersion(NamedTuple):
    """One version of a purpose and the instant from which it is in force."""

    in_force_from: datetime
    definition: Purpose | PurposeRetirement

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def version(self) -> int:
        return self.definition.version

    @property
    def retired(self) -> bool:
        return isinstance(self.definition, PurposeRetirement)


def same_definition(a: Purpose, b: Purpose) -> bool:
    """The two say the same thing, whatever their version numbers."""
    return replace(a, version=0) == replace(b, version=0)


class CatalogueHistory:
    """Every version of every purpose; `at(instant)` is the catalogue then in force."""

    __slots__ = ("_current", "_order", "_versions")

    def __init__(self, entries: Iterable[PurposeVersion | tuple[datetime, Purpose]]) -> None:
        given = [PurposeVersion(*entry) for entry in entries]
        for entry in given:
            if entry.in_force_from.tzinfo is None:
                raise HistoryError(f"{entry.id} v{entry.version}: in_force_from has no time zone")
        # the catalogue's order: by when a purpose first came into force, then as given
        first: dict[str, datetime] = {}
        for entry in given:
            if entry.id not in first or entry.in_force_from < first[entry.id]:
                first[entry.id] = entry.in_force_from
        self._order: tuple[str, ...] = tuple(sorted(first, key=first.__getitem__))
        self._versions: dict[str, tuple[PurposeVersion, ...]] = {}
        for pid in self._order:
            mine = sorted((e for e in given if e.id == pid), key=lambda e: e.version)
            numbers = [e.version for e in mine]
            if len(set(numbers)) != len(numbers):
                raise HistoryError(f"purpose {pid} has two definitions of one version: {numbers}")
            self._versions[pid] = tuple(_monotonic(mine))
        self._current = self._catalogue(v[-1] for v in self._versions.values())

    @classmethod
    def from_catalogue(
        cls, catalogue: Catalogue, in_force_from: datetime = EPOCH
    ) -> CatalogueHistory:
        """One version of each purpose of `catalogue`: the history of a log without events."""
        return cls(PurposeVersion(in_force_from, p) for p in catalogue.purposes.values())

    @property
    def current(self) -> Catalogue:
        """The latest version of each purpose not retired: what live decisions use."""
        return self._current

    def at(self, instant: datetime) -> Catalogue:
        """The catalogue in force at `instant`: each purpose's latest version in force by then,
        without the purposes retired by then or not yet defined."""
        in_force = []
        for versions in self._versions.values():
            then = [v for v in versions if v.in_force_from <= instant]
            if then:
                in_force.append(then[-1])
        return self._catalogue(in_force)

    def retired_at(self, instant: datetime | None = None) -> dict[str, Purpose]:
        """The purposes retired by `instant` (default: their latest version), each with its
        last definition: what a decision about one answers `not_in_catalogue` with."""
        out: dict[str, Purpose] = {}
        for pid, versions in self._versions.items():
            then = [v for v in versions if instant is None or v.in_force_from <= instant]
            defined = [v.definition for v in then if isinstance(v.definition, Purpose)]
            if then and then[-1].retired and defined:
                out[pid] = defined[-1]
        return out

    def versions(self, purpose_id: str) -> list[PurposeVersion]:
        """Every version of the purpose, oldest first; [] for an id never defined."""
        return list(self._versions.get(purpose_id, ()))

    def latest(self, purpose_id: str) -> PurposeVersion | None:
        versions = self._versions.get(purpose_id)
        return versions[-1] if versions else None

    def next_in_force(self, purpose_id: str, now: datetime) -> datetime:
        """When a version recorded `now` comes into force: `now`, or just after the purpose's
        latest version when this process's clock is behind the one that recorded it, so the
        versions stay in order whatever the clocks say."""
        latest = self.latest(purpose_id)
        return max(now, latest.in_force_from + TICK) if latest else now

    def next_version(self, purpose_id: str) -> int:
        """The number the purpose's next definition or retirement takes."""
        latest = self.latest(purpose_id)
        return latest.version + 1 if latest else 1

    @property
    def ids(self) -> tuple[str, ...]:
        """Every purpose ever defined, retired ones too, in catalogue order."""
        return self._order

    @staticmethod
    def _catalogue(entries: Iterable[PurposeVersion]) -> Catalogue:
        return Catalogue({e.id: e.definition for e in entries if isinstance(e.definition, Purpose)})


def _monotonic(versions: Iterable[PurposeVersion]) -> Iterable[PurposeVersion]:
    """The versions (by number) with each in force no earlier than the one before: a version
    recorded under a clock behind its predecessor's comes into force with it (the higher
    number answering for that instant, as for any tie), never before it. Recording keeps them
    apart (`next_in_force`); this repairs what an older or skewed log holds."""
    floor: datetime | None = None
    for v in versions:
        if floor is not None and v.in_force_from < floor:
            v = PurposeVersion(floor, v.definition)
        floor = v.in_force_from
        yield v
