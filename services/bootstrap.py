"""The one place that opens real connections and wires them into a `Ledger`."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import cast

import asyncpg

from projections import erasure, subject_state
from schemas.codec import EventCodec, default_codec
from services.config import Settings
from services.db_pool import open_pool
from services.identity.keystore import DataKeys
from services.identity.secrets import Secrets
from services.ledger import idempotency
from services.ledger.publisher import Publisher, make_producer
from services.ledger.record_producer import writer_macs
from services.reads.coalescer import Coalescer
from services.reads.notice_cache import NoticeCache
from services.reads.progress import ProjectionProgress
from services.reads.projection_health import ProjectionHealth
from services.rules.catalogue import Catalogue, load_catalogue


@dataclass(slots=True)
class Ledger:
    """Everything a request handler needs, opened once per process."""

    settings: Settings
    catalogue: Catalogue
    codec: EventCodec
    pool: asyncpg.Pool
    publisher: Publisher
    progress: ProjectionProgress
    partitions: int
    secrets: Secrets
    data_keys: DataKeys
    health: ProjectionHealth
    notices: NoticeCache
    #: concurrent decisions' state reads, one statement per batch (services/reads/coalescer.py)
    states: Coalescer[tuple[str, int], subject_state.Loaded]
    #: concurrent commands' "is this subject erased?" checks, one statement per batch
    erased: Coalescer[str, bool]


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool connections are returned without asyncpg's reset query (a round trip per use):
    request handlers set no session state, take no advisory locks and LISTEN on nothing."""


async def _erased(pool: asyncpg.Pool, subject_ids: Sequence[str]) -> dict[str, bool]:
    found = await erasure.erased_among(pool, subject_ids)
    return {s: s in found for s in subject_ids}


async def open_ledger(settings: Settings) -> Ledger:
    catalogue = load_catalogue(settings.catalogue_file)
    secrets = settings.secrets()
    pool = await open_pool(
        settings.database_url,
        min_size=2,
        max_size=10,
        acquire_timeout_ms=settings.db_acquire_timeout_ms,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        reset=_keep_session,
    )
    producer = make_producer(
        settings.kafka,
        idempotence=settings.kafka_idempotence,
        timeout_ms=settings.produce_timeout_ms,
    )
    try:
        # before any request: a retry of a request claimed before migration 0016 finds its key
        async with pool.acquire() as proxy:
            conn = cast(asyncpg.Connection, proxy)  # the pool's proxy is a connection to the stubs
            await idempotency.hash_legacy_keys(conn, secrets.blind_index_key)
        await producer.start()
        publisher = Publisher(
            producer,
            settings.topic,
            settings.produce_timeout_ms / 1000,
            writer_macs(secrets.writers),
        )
        partitions = await publisher.partition_count()
        progress = ProjectionProgress(pool, settings.topic)
        await progress.start(settings.database_url)
    except BaseException:
        await producer.stop()
        await pool.close()
        raise
    return Ledger(
        settings,
        catalogue,
        default_codec(),
        pool,
        publisher,
        progress,
        partitions,
        secrets,
        DataKeys(pool, secrets.master),
        ProjectionHealth(
            pool, settings.topic, partitions, settings.max_staleness_ms, secrets.writers.current_id
        ),
        NoticeCache(pool),
        Coalescer(partial(subject_state.load_many, pool, settings.topic)),
        Coalescer(partial(_erased, pool)),
    )


async def close_ledger(ledger: Ledger) -> None:
    await ledger.states.close()
    await ledger.erased.close()
    with contextlib.suppress(Exception):
        await ledger.progress.close()
    with contextlib.suppress(Exception):
        await ledger.publisher.producer.stop()
    await ledger.pool.close()
