"""The purpose_versions projection against the real PostgreSQL: the first event of a version
is kept, and apply counts the versions a batch added, so a duplicate (another process's event
for a number already taken) refills no state feed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from projections import purposes
from services.reads.purpose_cache import PurposeCache
from services.rules import catalogue
from services.rules.catalogue import load_catalogue
from services.rules.catalogue_events import APPLY_ACTOR, FILE_ACTOR, version_event
from services.rules.catalogue_history import EPOCH, PurposeVersion

pytestmark = pytest.mark.integration

FILE = load_catalogue(Path(catalogue.__file__).parent / "purposes.toml")
NL = "newsletter"
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def test_apply_counts_the_versions_it_added(db: asyncpg.Connection) -> None:
    seed = version_event(PurposeVersion(EPOCH, FILE.purposes[NL]), T0, FILE_ACTOR)
    ours = replace(FILE.purposes[NL], version=2, title="Weekly news")
    theirs = replace(ours, title="Daily news")
    first = version_event(PurposeVersion(T0, ours), T0, APPLY_ACTOR)
    later = version_event(PurposeVersion(T0 + timedelta(seconds=1), theirs), T0, APPLY_ACTOR)
    assert await purposes.apply(db, [(seed, (0, 0)), (first, (0, 1))]) == 2
    # another process's event for version 2, in a later batch: nothing added
    assert await purposes.apply(db, [(later, (0, 2))]) == 0
    assert await purposes.apply(db, []) == 0
    kept = await purposes.get(db, NL, 2)
    assert kept is not None and kept.data["title"] == "Weekly news"
    assert await purposes.count(db) == 2


async def test_the_cache_sees_a_table_replaced_by_as_many_versions(
    db: asyncpg.Connection,
) -> None:
    """A rebuild or restore from another log can leave as many versions at other positions:
    the count alone would miss it, the last position does not."""
    seed = version_event(PurposeVersion(EPOCH, FILE.purposes[NL]), T0, FILE_ACTOR)
    await purposes.apply(db, [(seed, (0, 0))])
    cache = PurposeCache(None, FILE)
    await cache.reload(db)
    assert not await cache.refresh(db)
    other = replace(FILE.purposes[NL], title="Weekly news")
    await db.execute("DELETE FROM purpose_versions")
    moved = version_event(PurposeVersion(EPOCH, other), T0, FILE_ACTOR)
    await purposes.apply(db, [(moved, (1, 5))])
    assert await cache.refresh(db)
    assert cache.catalogue.purposes[NL].title == "Weekly news"
