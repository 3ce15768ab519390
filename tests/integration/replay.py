"""Helpers for projector tests: a generated log, projector processes, and a clean replay to
compare the projections against."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from projections import offsets
from projections.state import SUPPRESSION, Fact, FactKey, fold
from projections.subject_state import fact_from_row
from schemas import events as ev
from schemas.codec import default_codec, kafka_headers
from schemas.events import Event, Source
from services.config import Settings
from services.ledger.kafka_clients import new_producer
from services.ledger.topic import highwaters
from services.rules.catalogue import Purpose
from services.rules.catalogue_events import defined_data, retired_data
from tests.conftest import make_settings, new_projector, wait_until
from tests.servers import Servers
from tests.writer_macs import sealed

PURPOSES = ("newsletter", "marketing_own", "research", "customer_relationship")
CATALOGUE_PURPOSE = Purpose("p", "A purpose", "consent", False, ("email",), retention="P1Y")


def random_event(rng: random.Random, subject: str, at: datetime) -> Event:
    kind = rng.choice(ev.EVENT_TYPES)
    purpose = rng.choice(PURPOSES)
    request_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{subject}/{rng.randrange(2)}")
    choices: dict[str, dict[str, Any]] = {
        ev.CONSENT_GRANTED: {"purpose": purpose, "channel": rng.choice([None, "email"])},
        ev.CONSENT_WITHDRAWN: {"purpose": rng.choice([None, purpose]), "channel": None},
        ev.DIRECT_MARKETING_OBJECTED: {"channel": rng.choice([None, "email", "sms"])},
        ev.DIRECT_MARKETING_OBJECTION_LIFTED: {"channel": None, "evidence": "ticket"},
        ev.PROCESSING_OBJECTED: {"purpose": purpose},
        ev.PROCESSING_OBJECTION_RESOLVED: {"purpose": purpose, "outcome": "upheld"},
        ev.PROCESSING_RESTRICTED: {"ground": "legal_claims", "purposes": [purpose]},
        ev.RESTRICTION_LIFTED: {"ground": None, "purposes": [], "subject_informed_at": at},
        ev.RELATIONSHIP_RECORDED: {"basis": "contract", "purposes": [], "valid_until": None},
        ev.RELATIONSHIP_ENDED: {"basis": None, "purposes": []},
        # a few shared indexes, so links and unlinks of one identifier interleave
        ev.IDENTIFIER_LINKED: {
            "identifier_type": "email",
            "blind_index": bytes([rng.randrange(8)]) * 32,
            "ciphertext": rng.randbytes(40),
        },
        ev.IDENTIFIER_UNLINKED: {
            "identifier_type": "email",
            "blind_index": bytes([rng.randrange(8)]) * 32,
        },
        # erasures suppress those shared indexes for whoever links them
        ev.SUBJECT_ERASED: {"ground": "objection", "request_id": None},
        ev.LINKS_REVOKED: {"reason": None},
        # sign-ups, some already expired
        ev.CONSENT_REQUESTED: {
            "purpose": purpose,
            "channel": "email",
            "expires_at": at + timedelta(days=rng.choice([-1, 7])),
            "language": None,
        },
        # each subject's own few requests, so a request's events share a partition
        **{
            kind: {"request_id": request_id, **extra}
            for kind, extra in (
                (ev.RIGHTS_REQUEST_RECEIVED, {"kind": rng.choice(ev.REQUEST_KINDS)}),
                (ev.RIGHTS_REQUEST_IDENTITY_VERIFIED, {"evidence": None}),
                (ev.RIGHTS_REQUEST_EXTENDED, {"months": rng.choice([1, 2]), "reason": "t"}),
                (ev.RIGHTS_REQUEST_COMPLETED, {"evidence": None}),
                (ev.RIGHTS_REQUEST_REFUSED, {"reason": "t"}),
            )
        },
    }
    if kind == ev.NOTICE_PUBLISHED:
        # a few versions, some published twice with other content: the first in log order wins
        version = f"v{rng.randrange(6)}"
        notice = {
            "version": version,
            "effective_from": at,
            "text_sha256": f"{rng.randrange(2):064x}",
            "url": f"https://example.com/privacy/{version}",
            "material": rng.random() < 0.5,
            "purposes": [purpose],
            "language": None,
        }
        event_id = uuid.UUID(int=rng.getrandbits(128))
        key = ev.notice_key(version)
        return Event(kind, event_id, key, at, at, Source(), notice_version=version, data=notice)
    if kind in ev.PURPOSE_EVENTS:
        # a few versions of a few purposes, some recorded twice: the first in log order wins
        pid, number = f"p{rng.randrange(3)}", rng.randrange(1, 4)
        data = (
            retired_data(pid, number, at, None)
            if kind == ev.PURPOSE_RETIRED
            else defined_data(replace(CATALOGUE_PURPOSE, id=pid, version=number), at)
        )
        key = ev.purpose_key(pid)
        return Event(kind, uuid.UUID(int=rng.getrandbits(128)), key, at, at, Source(), data=data)
    data = choices[kind]
    return Event(kind, uuid.UUID(int=rng.getrandbits(128)), subject, at, at, Source(), data=data)


async def produce_log(settings: Settings, count: int, subjects: int, seed: int) -> int:
    """Append `count` random events for `subjects` subjects, some sent twice (retries)."""
    rng = random.Random(seed)
    codec = default_codec()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    producer = new_producer(settings.kafka, acks="all", linger_ms=5)
    await producer.start()
    sent = 0
    try:
        futures = []
        for i in range(count):
            event = random_event(
                rng, f"subj-{rng.randrange(subjects)}", start + timedelta(seconds=i)
            )
            copies = 2 if rng.random() < 0.02 else 1
            for _ in range(copies):
                key, value = event.subject_id.encode(), codec.encode(event)
                futures.append(
                    await producer.send(
                        settings.topic,
                        value,
                        key=key,
                        headers=sealed(key, value, kafka_headers(event)),
                    )
                )
                sent += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent


async def produce_to_partition(
    settings: Settings, partition: int, count: int, prefix: str, seed: int
) -> None:
    """Append `count` random events, one subject each, all to one partition of the topic."""
    codec = default_codec()
    rng = random.Random(seed)
    producer = new_producer(settings.kafka, acks="all")
    await producer.start()
    try:
        for i in range(count):
            event = random_event(rng, f"{prefix}-{i}", datetime.now(UTC))
            value = codec.encode(event)
            await producer.send_and_wait(
                settings.topic,
                value,
                partition=partition,
                headers=sealed(None, value, kafka_headers(event)),
            )
    finally:
        await producer.stop()


async def caught_up(settings: Settings, conn: asyncpg.Connection) -> bool:
    marks = await highwaters(settings.kafka, settings.topic)
    stored = await offsets.load(conn, settings.topic)
    return all(stored.get(p, 0) >= end for p, end in marks.items())


async def answers_decisions(api: httpx.AsyncClient) -> bool:
    """The API answers decisions: its staleness guard has seen the projector catch up."""
    return (await api.get("/readyz")).status_code == 200


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[Any]]:
    """Every projected row, in a stable order, for comparing two databases. The projector's
    operational tables (projector_partitions, projector_stops, dead_letter_outbox,
    metric_histograms) are left out: they describe a run, not the log."""
    return {
        "journal": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT event_id, subject_id, event_type, log_partition, log_offset, payload,"
                " record_value, chain_hash, record_mac FROM journal ORDER BY event_id"
            )
        ],
        "notices": [tuple(r) for r in await conn.fetch("SELECT * FROM notices ORDER BY version")],
        "purposes": [
            tuple(r)
            for r in await conn.fetch("SELECT * FROM purpose_versions ORDER BY purpose_id, version")
        ],
        "facts": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT * FROM subject_facts ORDER BY subject_id, kind, scope_a, scope_b"
            )
        ],
        "identifiers": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT * FROM identifiers ORDER BY identifier_type, blind_index, subject_id"
            )
        ],
        "offsets": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT topic, log_partition, next_offset FROM projector_offsets"
                " ORDER BY log_partition"
            )
        ],
        # the running digest does not depend on where checkpoints were cut
        "digests": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT topic, log_partition, next_offset, digest FROM checkpoint_state"
                " ORDER BY log_partition"
            )
        ],
        "duplicates": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT topic, log_partition, log_offset, event_id, record_value, record_mac"
                " FROM duplicate_records ORDER BY log_partition, log_offset"
            )
        ],
        "suppressed": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT * FROM suppressed_identifiers ORDER BY identifier_type, blind_index"
            )
        ],
        "erasures": [tuple(r) for r in await conn.fetch("SELECT * FROM erasures ORDER BY 1")],
        # when a key was shredded is the projector's clock; that it was is the replay's
        "shredded": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT subject_id, wrapped_key IS NULL FROM subject_keys ORDER BY 1"
            )
        ],
        "requests": [
            tuple(r) for r in await conn.fetch("SELECT * FROM rights_requests ORDER BY 1")
        ],
        "link_revocations": [
            tuple(r) for r in await conn.fetch("SELECT * FROM link_revocations ORDER BY 1, 2, 3")
        ],
    }


async def state_by_subject(conn: asyncpg.Connection) -> dict[str, dict[FactKey, Fact]]:
    """What subject_facts holds, as the pure state type."""
    out: dict[str, dict[FactKey, Fact]] = {}
    for row in await conn.fetch("SELECT * FROM subject_facts"):
        fact = fact_from_row(row)
        out.setdefault(row["subject_id"], {})[fact.key] = fact
    return out


def own_facts(states: dict[str, dict[FactKey, Fact]]) -> dict[str, dict[FactKey, Fact]]:
    """The facts a subject's own events set: without the `suppression` facts, which come from
    other subjects' erasures (the snapshot compares those with a clean replay)."""
    kept = {s: {k: f for k, f in st.items() if f.kind != SUPPRESSION} for s, st in states.items()}
    return {s: st for s, st in kept.items() if st}


async def fold_of_journal(conn: asyncpg.Connection) -> dict[str, dict[FactKey, Fact]]:
    """The pure fold of every journaled event, per subject: what the SQL upserts must equal."""
    codec = default_codec()
    events: dict[str, list[tuple[Event, tuple[int, int]]]] = {}
    rows = await conn.fetch("SELECT log_partition, log_offset, record_value FROM journal")
    for row in rows:
        event = codec.decode(bytes(row["record_value"]))
        position = (row["log_partition"], row["log_offset"])
        events.setdefault(event.subject_id, []).append((event, position))
    folded = {subject: fold(pairs) for subject, pairs in events.items()}
    return {subject: state for subject, state in folded.items() if state}


async def clean_replay(real_servers: Servers, settings: Settings) -> dict[str, list[Any]]:
    """Project the same topic into a fresh database with one uninterrupted projector."""
    fresh = await make_settings(real_servers)
    fresh = replace(fresh, topic=settings.topic)
    conn = await asyncpg.connect(fresh.database_url)
    projector = new_projector(fresh, group=f"clean-{uuid.uuid4().hex[:8]}")
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(stop))
    try:
        await wait_until(lambda: caught_up(fresh, conn), 120, "the clean replay to catch up")
        return await snapshot(conn)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await conn.close()


def start_projector_process(settings: Settings, log_path: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.as_environment()}
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "projector"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
