"""States of 100k, 1M and 10M subjects for the growth scenario, built by bulk load.

Replaying 10M subjects' events through the projector would take hours on a small machine, so
these states are written directly: the same generator's histories, folded by the projector's
own pure fold (`projections.state.fold`), copied into `subject_facts` with its indexes built
afterwards. A single decision reads only that table (and the stored offsets and notices, empty
here), so the decision sees exactly what a replay would have left. Each state is its own
database, kept between runs and reused when complete.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import asyncpg

from bench.dataset import VERSION, subject_events
from bench.processes import database_exists, fresh_database, with_database
from projections.migrate import migrate
from projections.state import fold
from projections.subject_state import COLUMNS, row_of
from services.ledger.partitioning import partition_for

SUBJECT_PREFIX = "g"


def database_name(subjects: int, seed: int) -> str:
    return f"bench_growth_v{VERSION}_{subjects}_seed{seed}"


def fact_rows(subjects: int, partitions: int, seed: int) -> Iterator[tuple[object, ...]]:
    """The state rows a replay of `subjects` generated histories would leave."""
    offsets = [0] * partitions
    events = subject_events(seed, SUBJECT_PREFIX, subjects)
    for subject_id, history in itertools.groupby(events, key=lambda e: e.subject_id):
        partition = partition_for(subject_id, partitions)
        positioned = []
        for event in history:
            positioned.append((event, (partition, offsets[partition])))
            offsets[partition] += 1
        for f in fold(positioned).values():
            yield row_of(subject_id, f)


async def ensure_growth_state(
    dsn: str, subjects: int, partitions: int, seed: int = 1, chunk: int = 200_000
) -> tuple[str, bool]:
    """The DSN of a complete state of `subjects` subjects, and whether it was built now."""
    name = database_name(subjects, seed)
    url = with_database(dsn, name)
    if await database_exists(dsn, name) and await _complete(url, subjects):
        # a state kept from an earlier run gets the migrations added since (new tables the
        # API reads at start-up); migrating is a no-op when it has them all
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        return url, False
    url = await fresh_database(dsn, name)
    conn = await asyncpg.connect(url)
    try:
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'subject_facts'"
            " AND indexname <> 'subject_facts_pkey'"
        )
        await conn.execute("ALTER TABLE subject_facts DROP CONSTRAINT subject_facts_pkey")
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
        rows = fact_rows(subjects, partitions, seed)
        while batch := list(itertools.islice(rows, chunk)):
            await conn.copy_records_to_table("subject_facts", records=batch, columns=COLUMNS)
        await conn.execute(
            "ALTER TABLE subject_facts ADD PRIMARY KEY (subject_id, kind, scope_a, scope_b)"
        )
        for index in indexes:
            await conn.execute(index["indexdef"])
        await conn.execute("ANALYZE subject_facts")
        await conn.execute(
            "CREATE TABLE bench_state (subjects bigint NOT NULL);"
            f" INSERT INTO bench_state VALUES ({int(subjects)})"
        )
    finally:
        await conn.close()
    return url, True


async def warm(url: str) -> None:
    """Read the state's table and its primary key once, so that the measurement compares
    lookups in a state the server holds in memory (as a database sized for its state serves
    them), not the disk reads of a cache that a long-built 10M-subject state starts cold in."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT count(*) FROM subject_facts")  # the table's pages
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            await conn.execute("SELECT count(*) FROM subject_facts WHERE subject_id >= ''")
    finally:
        await conn.close()


async def _complete(url: str, subjects: int) -> bool:
    conn = await asyncpg.connect(url)
    try:
        if await conn.fetchval("SELECT to_regclass('bench_state')") is None:
            return False
        return bool(await conn.fetchval("SELECT subjects FROM bench_state") == subjects)
    finally:
        await conn.close()
