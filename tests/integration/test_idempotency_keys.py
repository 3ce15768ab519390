"""Idempotency keys hold no personal data: a key is stored only as its keyed hash, and a key
stored in clear before the upgrade is still honoured (hashed at start, never two events). That a
key that looks like an address or a phone number is refused before anything is recorded is
checked in-process: tests/unit/services/api/test_idempotency_key_input.py."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from projections.migrate import migrate, migration_files
from schemas.codec import default_codec, kafka_headers
from schemas.events import NOT_ABOUT_A_SUBJECT, PURPOSE_KEY_PREFIX
from services.api.commands import Context, grant_consent
from services.cli.main import run_init
from services.config import Settings
from services.http.body import Fields
from services.importing import formats
from services.importing.run import ImportOptions, run_import
from services.ledger import idempotency
from services.ledger.kafka_clients import new_producer
from services.ledger.topic import highwaters
from services.rules.catalogue import load_catalogue
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.faults.log_audit import read_log
from tests.servers import Servers
from tests.writer_macs import sealed

pytestmark = pytest.mark.integration

BODY = {"purpose": "newsletter", "channel": "email", "method": "form"}
FIRST_HASHED_MIGRATION = "0016_privacy.sql"


async def events_of(api: httpx.AsyncClient, subject: str, token: str) -> list[str]:
    response = await api.get(f"/v1/subjects/{subject}/events", params={"min_token": token})
    assert response.status_code == 200, response.text
    return [e["event_id"] for e in response.json()["events"]]


async def test_a_key_is_stored_only_as_its_keyed_hash_and_a_retry_gets_the_same_event(
    api: httpx.AsyncClient, settings: Settings, db: asyncpg.Connection
) -> None:
    key = f"order-{uuid.uuid4()}"
    headers = {"Idempotency-Key": key}
    first = await api.post("/v1/subjects/idem-hashed/consents", json=BODY, headers=headers)
    again = await api.post("/v1/subjects/idem-hashed/consents", json=BODY, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["event_id"] == first.json()["event_id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert await events_of(api, "idem-hashed", again.json()["token"]) == [first.json()["event_id"]]

    # the subject's key (the purpose catalogue the API records at start has its own)
    (row,) = await db.fetch("SELECT * FROM idempotency_keys WHERE subject_id = 'idem-hashed'")
    assert row["idempotency_key"] is None
    secret = settings.secrets().blind_index_key
    assert bytes(row["key_hash"]) == idempotency.key_hash(secret, key)
    assert bytes(row["key_hash"]) != idempotency.key_hash(secret, key + "x")
    text = await db.fetchval("SELECT string_agg(k::text, ' ') FROM idempotency_keys k")
    assert key not in text and key.encode().hex() not in text


async def _database_before_hashing(settings: Settings) -> asyncpg.Connection:
    """The test's database as a ledger before migration 0016 left it: every table made again
    by the migrations that came before."""
    conn = await asyncpg.connect(settings.database_url)
    await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    await conn.execute(
        "CREATE TABLE schema_migrations (name text PRIMARY KEY,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for name, sql in migration_files():
        if name >= FIRST_HASHED_MIGRATION:
            break
        await conn.execute(sql)
        await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
    return conn


async def test_a_key_stored_in_clear_before_the_upgrade_is_still_honoured(
    real_servers: Servers,
) -> None:
    """An earlier version claimed the key and sent the record, but its answer was lost. After
    the upgrade (migration, then the API's start hashes the key), the retry replays that
    record: the same event, once."""
    settings = await make_settings(real_servers)
    conn = await _database_before_hashing(settings)
    try:
        catalogue = load_catalogue(settings.catalogue_file)
        context = Context("idem-legacy", datetime.now(UTC), catalogue)
        (event,) = grant_consent(Fields(dict(BODY)), context)
        value = default_codec().encode(event)
        digest = idempotency.request_digest("consents", "idem-legacy", dict(BODY))
        await conn.execute(
            "INSERT INTO idempotency_keys (idempotency_key, request_digest, event_ids,"
            " record_values, subject_id) VALUES ($1, $2, $3, $4, $5)",
            "signup-form-4711",
            digest,
            [event.event_id],
            [value],
            "idem-legacy",
        )
        producer = new_producer(settings.kafka)
        await producer.start()
        try:
            # written by the ledger before the upgrade: MACed as every ledger record is
            await producer.send_and_wait(
                settings.topic,
                value,
                key=b"idem-legacy",
                headers=sealed(b"idem-legacy", value, kafka_headers(event)),
            )
        finally:
            await producer.stop()

        assert FIRST_HASHED_MIGRATION in await migrate(conn)
        assert await conn.fetchval("SELECT idempotency_key FROM idempotency_keys")
        async with running_projector(settings), running_api(settings) as api:
            (row,) = await conn.fetch(
                "SELECT idempotency_key, key_hash FROM idempotency_keys"
                " WHERE subject_id = 'idem-legacy'"
            )
            assert row["idempotency_key"] is None
            secret = settings.secrets().blind_index_key
            assert bytes(row["key_hash"]) == idempotency.key_hash(secret, "signup-form-4711")
            retry = await api.post(
                "/v1/subjects/idem-legacy/consents",
                json=BODY,
                headers={"Idempotency-Key": "signup-form-4711"},
            )
            assert retry.status_code == 201, retry.text
            assert retry.json()["event_id"] == str(event.event_id)
            assert retry.headers["idempotent-replayed"] == "true"
            assert await events_of(api, "idem-legacy", retry.json()["token"]) == [
                str(event.event_id)
            ]
            logged = await read_log(settings.kafka, settings.topic)
            subjects = [r for r in logged if r.type not in NOT_ABOUT_A_SUBJECT]
            # the replay may re-send the same bytes; the projector keeps one
            assert {r.event_id for r in subjects} == {str(event.event_id)}
            assert len(subjects) in (1, 2)
    finally:
        await conn.close()


async def test_processes_hashing_together_hash_every_key_once(settings: Settings) -> None:
    keys = [f"legacy-{n}" for n in range(2 * idempotency.LEGACY_BATCH + 7)]
    conns = [await asyncpg.connect(settings.database_url) for _ in range(2)]
    try:
        await conns[0].execute(
            "INSERT INTO idempotency_keys (idempotency_key, request_digest, event_ids,"
            " record_values, subject_id) SELECT k, '', '{}', '{}', 's' FROM unnest($1::text[]) k",
            keys,
        )
        secret = settings.secrets().blind_index_key
        counts = await asyncio.gather(
            *(idempotency.hash_legacy_keys(conn, secret) for conn in conns)
        )
        assert sum(counts) == len(keys)
        assert await idempotency.hash_legacy_keys(conns[0], secret) == 0
        rows = await conns[0].fetch("SELECT idempotency_key, key_hash FROM idempotency_keys")
        assert all(r["idempotency_key"] is None for r in rows)
        assert {bytes(r["key_hash"]) for r in rows} == {
            idempotency.key_hash(secret, k) for k in keys
        }
    finally:
        for conn in conns:
            await conn.close()


async def test_a_process_waits_for_another_hashing_whatever_its_statement_timeout(
    settings: Settings,
) -> None:
    """The API pool's connections run with LEDGER_DB_STATEMENT_TIMEOUT_MS: waiting for a
    process that hashes a large table must not be cancelled by it (a start-up crash loop)."""
    holder = await asyncpg.connect(settings.database_url)
    waiter = await asyncpg.connect(
        settings.database_url, server_settings={"statement_timeout": "200"}
    )
    try:
        await holder.execute(
            "INSERT INTO idempotency_keys (idempotency_key, request_digest, event_ids,"
            " record_values, subject_id) VALUES ('crm-8', '', '{}', '{}', 's')"
        )
        await holder.execute("SELECT pg_advisory_lock($1)", idempotency._LEGACY_LOCK)
        secret = settings.secrets().blind_index_key
        hashing = asyncio.create_task(idempotency.hash_legacy_keys(waiter, secret))
        waiter_pid = waiter.get_server_pid()

        async def waited_past_its_timeout() -> bool:
            return hashing.done() or bool(
                await holder.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                    " WHERE l.locktype = 'advisory' AND NOT l.granted AND l.pid = $1"
                    " AND now() - a.query_start > interval '400 milliseconds')",
                    waiter_pid,
                )
            )

        await wait_until(waited_past_its_timeout, 10, "the lock wait to outlast the timeout")
        assert not hashing.done(), hashing.exception()
        await holder.execute("SELECT pg_advisory_unlock($1)", idempotency._LEGACY_LOCK)
        assert await asyncio.wait_for(hashing, 10) == 1
        assert await waiter.fetchval("SHOW statement_timeout") == "200ms"  # kept afterwards
    finally:
        await holder.close()
        await waiter.close()


async def test_the_importer_stores_its_keys_hashed_too(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    path = Path(shutil.copy(Path(formats.__file__).parent / "samples" / "generic.csv", tmp_path))
    options = ImportOptions(path, "generic", "newsletter", "email", progress=False)
    async with running_projector(settings):
        assert await run_import(settings, options) == 0
        rows = await db.fetch(
            "SELECT idempotency_key, key_hash FROM idempotency_keys"
            " WHERE NOT starts_with(subject_id, $1)",
            PURPOSE_KEY_PREFIX,
        )  # the subjects' keys, not the purpose catalogue's
        assert rows and all(r["idempotency_key"] is None and r["key_hash"] for r in rows)
        before = await highwaters(settings.kafka, settings.topic)
        assert await run_import(settings, options) == 0  # found again by the hash: sends nothing
        assert await highwaters(settings.kafka, settings.topic) == before


async def test_init_hashes_keys_kept_in_clear_when_it_has_the_secrets(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await db.execute(
        "INSERT INTO idempotency_keys (idempotency_key, request_digest, event_ids,"
        " record_values, subject_id) VALUES ('crm-7', '', '{}', '{}', 's')"
    )
    assert await run_init(settings) == 0
    (row,) = await db.fetch("SELECT idempotency_key, key_hash FROM idempotency_keys")
    assert row["idempotency_key"] is None
    secret = settings.secrets().blind_index_key
    assert bytes(row["key_hash"]) == idempotency.key_hash(secret, "crm-7")
