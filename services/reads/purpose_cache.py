"""The purpose catalogue's history, kept in memory by each process that decides and followed
as the projector applies new versions; `ledger.catalogue` is its current catalogue.

Design: docs/developers/design/purpose-catalogue.md
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import asyncpg

from projections import purposes
from services.rules.catalogue import Catalogue
from services.rules.catalogue_events import PurposeDifference, differences, seeds, version_of
from services.rules.catalogue_history import CatalogueHistory, PurposeVersion

log = logging.getLogger(__name__)

#: how often each process asks whether the catalogue changed (one count of a small table)
REFRESH_S: Final = 1.0

#: records the versions the log lacks (services/bootstrap.py binds it to the append path)
Seeder = Callable[[Sequence[PurposeVersion]], Awaitable[object]]


class PurposeCache:
    def __init__(self, pool: asyncpg.Pool | None, file: Catalogue) -> None:
        #: where versions are read (None: each call passes its connection, as the state feed)
        self.pool = pool
        #: the catalogue file as read at start-up: seeds what the log lacks, else only compared
        self.file = file
        #: the log's versions alone
        self.log = CatalogueHistory(())
        #: the log's versions; before the first start recorded any, the file's purposes as the
        #: seeds will record them (never merged into a log that holds versions: a purpose
        #: added to the file later would otherwise answer for instants before it existed)
        self.history = CatalogueHistory.from_catalogue(file)
        self.drift: list[PurposeDifference] = []
        self._mark: purposes.Mark = (-1, None)
        self._lock = asyncio.Lock()

    @property
    def catalogue(self) -> Catalogue:
        return self.history.current

    async def reload(self, conn: asyncpg.Connection | None = None) -> None:
        """Read every version again (after a change, or to see one this process recorded)."""
        async with self._lock:
            rows = await purposes.all_versions(self._db(conn))
            versions = []
            for row in rows:
                try:
                    versions.append(version_of(row.event_type, row.event_data()))
                except (KeyError, TypeError) as exc:  # not a purpose version this code reads
                    log.error("purpose %s v%s is unreadable: %s", row.purpose_id, row.version, exc)
            self.log = CatalogueHistory(versions)
            first_start = not self.log.ids
            self.history = CatalogueHistory(seeds(self.file, self.log)) if first_start else self.log
            self._mark = purposes.mark_of(rows)
            self._report(differences(self.file, self.log) if rows else [])

    async def refresh(self, conn: asyncpg.Connection | None = None) -> bool:
        """Reload when the table's count or last position moved; whether it did."""
        if await purposes.mark(self._db(conn)) == self._mark:
            return False
        await self.reload(conn)
        return True

    def _db(self, conn: asyncpg.Connection | None) -> asyncpg.Connection | asyncpg.Pool:
        if conn is not None:
            return conn
        if self.pool is None:
            raise TypeError("this purpose cache reads through the connection it is given")
        return self.pool

    def missing(self) -> list[PurposeVersion]:
        """What the first start records: the file's purposes while the log holds none."""
        return seeds(self.file, self.log)

    async def record_missing(self, seed: Seeder) -> None:
        """Read the table if it moved, and record what the log lacks of the file."""
        await self.refresh()
        missing = self.missing()
        if missing:
            await seed(missing)
            await self.reload()

    async def follow(self, seed: Seeder) -> None:
        """Until cancelled: follow the table, and record what the log lacks of the file."""
        while True:
            try:
                await self.record_missing(seed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or the broker is away: try again later
                log.warning("purpose catalogue not followed this time: %s", exc)
            await asyncio.sleep(REFRESH_S)

    def _report(self, found: list[PurposeDifference]) -> None:
        if found != self.drift and found:
            log.warning(
                "the purpose catalogue file differs from the log, which stays in force (see"
                " `consent-ledger purposes diff`; `purposes apply` records the file): %s",
                "; ".join(map(str, found)),
            )
        self.drift = found
