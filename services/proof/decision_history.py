"""A subject's decisions per purpose and channel over time, for the auditor's page: the as-of
answer, decided with the purpose versions then in force, at every instant it can change, merged
into segments of equal outcome.

Design: docs/developers/design/proof.md
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from projections.as_of import PurgedProof, Suppression, known_at
from projections.outdating import Notice
from projections.state import FactKey, Position, facts_for
from schemas import events as ev
from schemas.events import Event
from services.rules.catalogue import Purpose
from services.rules.catalogue_history import CatalogueHistory

# the chart's reason where the purpose (or the channel) was not in the catalogue then: not
# defined yet, or retired
from services.rules.decisions import NOT_IN_CATALOGUE, Decision, decide


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of time with the same outcome; `evidence` is the decision's at `start`.
    The last segment of a band ends at the chart's end (now), and may be empty when the
    outcome changed at that very instant."""

    start: datetime
    end: datetime
    allowed: bool
    reason: str
    evidence: tuple[UUID, ...]
    #: the purpose version in force at `start` (None where the purpose was not in force)
    version: int | None = None


@dataclass(frozen=True, slots=True)
class Band:
    """The decisions for one purpose on one channel, from the first instant to the end;
    `purpose` is its latest definition."""

    purpose: Purpose
    channel: str
    segments: tuple[Segment, ...]


def instants(
    events: Sequence[tuple[Event, Position]],
    end: datetime,
    published: Iterable[Notice] = (),
    suppressed: Iterable[Suppression] = (),
    purged: PurgedProof | None = None,
    history: CatalogueHistory | None = None,
) -> list[datetime]:
    """Every instant, from the first the ledger knew of the subject up to `end` (included),
    at which an answer may change; empty when the ledger knew nothing of the subject by
    `end` (no event, or each recorded after it)."""
    points = {e.recorded_at for e, _ in events}
    if history is not None:
        points.update(v.in_force_from for pid in history.ids for v in history.versions(pid))
    for event, _ in events:
        limit = None
        if event.type in (ev.CONSENT_GRANTED, ev.CONSENT_REQUESTED):
            limit = event.data.get("expires_at")  # a grant lapses, a sign-up stops pending
        elif event.type == ev.RELATIONSHIP_RECORDED:
            limit = event.data.get("valid_until")
        if isinstance(limit, datetime):
            points.add(limit)
    if any(e.type == ev.CONSENT_GRANTED for e, _ in events):
        for notice in published:
            points.add(notice.effective_from)
            if notice.published_at is not None:
                points.add(notice.published_at)
    points.update(s.known_from for s in suppressed)
    start = min((e.recorded_at for e, _ in events), default=None)
    if purged is not None:
        points.add(purged.erased_at)
        # before a purged erasure the answer is not known any more (ProofPurged)
        start = purged.erased_at if start is None else max(start, purged.erased_at)
    if start is None:
        return []
    points.add(end)
    return sorted(p for p in points if start <= p <= end)


def bands(
    events: Sequence[tuple[Event, Position]],
    history: CatalogueHistory,
    end: datetime,
    published: Sequence[Notice] = (),
    suppressed: Sequence[Suppression] = (),
    purged: PurgedProof | None = None,
) -> list[Band]:
    """Per purpose and channel ever defined (in catalogue order), the segments of equal
    outcome and purpose version from the first instant to `end`, each instant decided with
    the definitions then in force; a scope never in force over the chart is left out. Empty
    when the ledger knew nothing of the subject by `end`."""
    points = instants(events, end, published, suppressed, purged, history)
    if not points:
        return []
    scopes = scopes_of(history)
    decided: list[list[tuple[Decision, int | None]]] = [[] for _ in scopes]
    for at, counted in zip(points, recorded_subsets(events, points), strict=True):
        known = known_at(counted, at, published, suppressed, purged)
        catalogue = history.at(at)
        for made, (latest, channel) in zip(decided, scopes, strict=True):
            purpose = catalogue.get(latest.id)
            if purpose is None or channel not in purpose.channels:
                made.append((Decision(False, NOT_IN_CATALOGUE, latest.basis, ()), None))
            else:
                decision = decide(known.state, purpose, channel, at, known.notices)
                made.append((decision, purpose.version))
    return [
        Band(latest, channel, tuple(segments(points, made, end)))
        for made, (latest, channel) in zip(decided, scopes, strict=True)
        if any(version is not None for _, version in made)
    ]


def scopes_of(history: CatalogueHistory) -> list[tuple[Purpose, str]]:
    """(latest definition, channel) of every purpose ever defined, with every channel any of
    its versions had, in catalogue order."""
    out: list[tuple[Purpose, str]] = []
    for pid in history.ids:
        versions = [v.definition for v in history.versions(pid)]
        defined = [d for d in versions if isinstance(d, Purpose)]
        if not defined:
            continue
        channels = dict.fromkeys(c for d in defined for c in d.channels)
        out.extend((defined[-1], c) for c in channels)
    return out


def recorded_subsets(
    events: Sequence[tuple[Event, Position]], points: Sequence[datetime]
) -> Iterator[list[tuple[Event, Position]]]:
    """Per instant (ascending), the few events recorded by then that `known_at` needs: per
    fact key the event of its latest fact, and every identifier link and unlink (the held
    identifiers are their sequence). The fold keeps only the latest fact per key, so it gives
    the same state as over every event recorded by then, and the page stays linear in the
    length of the history instead of quadratic."""
    order = sorted(events, key=lambda x: x[0].recorded_at)
    latest: dict[FactKey, tuple[Event, Position]] = {}
    identifiers: list[tuple[Event, Position]] = []
    i = 0
    for at in points:
        while i < len(order) and order[i][0].recorded_at <= at:
            event, position = order[i]
            for fact in facts_for(event, position):
                held = latest.get(fact.key)
                if held is None or position > held[1]:
                    latest[fact.key] = (event, position)
            if event.type in (ev.IDENTIFIER_LINKED, ev.IDENTIFIER_UNLINKED):
                identifiers.append((event, position))
            i += 1
        kept = {position: (event, position) for event, position in latest.values()}
        kept.update((position, (event, position)) for event, position in identifiers)
        yield list(kept.values())


def segments(
    points: Sequence[datetime],
    made: Sequence[tuple[Decision, int | None]],
    end: datetime,
) -> list[Segment]:
    """Merge consecutive decisions with the same outcome under the same purpose version;
    each segment runs until the next change, the last until `end`."""

    def outcome(i: int) -> tuple[bool, str, int | None]:
        decision, version = made[i]
        return decision.allowed, decision.reason, version

    starts = [i for i in range(len(made)) if i == 0 or outcome(i) != outcome(i - 1)]
    out = []
    for n, i in enumerate(starts):
        until = points[starts[n + 1]] if n + 1 < len(starts) else end
        d, version = made[i]
        out.append(Segment(points[i], until, d.allowed, d.reason, d.evidence, version))
    return out


def outcome_at(band: Band, at: datetime) -> Segment | None:
    """The segment in force at `at`: the last one starting at or before it."""
    found = None
    for segment in band.segments:
        if segment.start <= at:
            found = segment
    return found
