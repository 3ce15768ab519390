"""`consent-ledger backup` and `restore` against the real broker: a log with duplicates,
undecodable and empty records goes into the file and back into fresh topics record for record;
restore refuses topics that cannot take it; the file is plain Avro with the documented schema;
the purpose catalogue's versions come back with the log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from avro.datafile import DataFileReader
from avro.io import DatumReader
from fastavro import parse_schema, reader, writer

from services.config import Settings
from services.ledger.topic import highwaters, partition_count
from services.operations.backup_format import META_TOPICS, PARSED_SCHEMA, SCHEMA
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.integration.chain_log import produce_events
from tests.integration.purpose_support import (
    FILE_PURPOSES,
    current,
    purpose_rows,
    put_body,
    seeded,
)
from tests.integration.topic_records import Seen, all_records, produce_raw, run_cli
from tests.servers import Servers

pytestmark = pytest.mark.integration


@dataclass(frozen=True, slots=True)
class BackedUp:
    settings: Settings
    path: Path
    events: list[Seen]
    checks: list[Seen]


@pytest.fixture(scope="module")
async def backed_up(real_servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> BackedUp:
    """A log of events (2% sent twice), undecodable records, a record with no key or value and
    a header without a value, contact checks on their own topic, and its backup."""
    settings = await make_settings(real_servers)
    sent = await produce_events(settings, count=240, subjects=24, seed=17, garbage=3)
    servers = settings.kafka
    await produce_raw(servers, settings.topic, [(1, None, None, [("empty", None)])])
    await produce_raw(
        servers,
        settings.checks_topic,
        [(i % 3, b"campaign-%d" % i, b"check-%d" % i, [("event_type", b"X")]) for i in range(7)],
    )
    path = tmp_path_factory.mktemp("backup") / "ledger.avro"
    done = run_cli(settings, "backup", str(path), "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"backup: wrote {path}" in done.stdout
    events = await all_records(servers, settings.topic)
    checks = await all_records(servers, settings.checks_topic)
    assert (len(events), len(checks)) == (sent + 1, 7)
    return BackedUp(settings, path, events, checks)


async def test_restore_puts_every_record_back_where_it_was(
    backed_up: BackedUp, real_servers: Servers
) -> None:
    fresh = await make_settings(real_servers)
    done = run_cli(fresh, "restore", str(backed_up.path), "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every record at its original offset; high-water marks verified" in done.stdout
    servers = fresh.kafka
    assert await all_records(servers, fresh.topic) == backed_up.events
    assert await all_records(servers, fresh.checks_topic) == backed_up.checks
    by_partition = {p: n for p, n in (await highwaters(servers, fresh.topic)).items()}
    assert sum(by_partition.values()) == len(backed_up.events)

    again = run_cli(fresh, "restore", str(backed_up.path), "--no-progress")
    assert again.returncode == 2
    assert f"topic {fresh.topic} is not empty" in again.stderr
    assert f"topic {fresh.checks_topic} is not empty" in again.stderr
    assert await highwaters(servers, fresh.topic) == by_partition


async def test_restore_refuses_another_partition_count_and_can_create_the_topic(
    backed_up: BackedUp, real_servers: Servers
) -> None:
    narrower = await make_settings(real_servers, LEDGER_TOPIC_PARTITIONS="3")
    refused = run_cli(narrower, "restore", str(backed_up.path), "--only", "events")
    assert refused.returncode == 2
    assert (
        f"topic {narrower.topic} has 3 partitions; the backup of {backed_up.settings.topic} has 4"
    ) in refused.stderr
    assert not any((await highwaters(narrower.kafka, narrower.topic)).values())

    missing = replace(narrower, topic=f"{narrower.topic}.new")
    absent = run_cli(missing, "restore", str(backed_up.path), "--only", "events")
    assert absent.returncode == 2
    assert f"topic {missing.topic} does not exist" in absent.stderr
    created = run_cli(missing, "restore", str(backed_up.path), "--only", "events", "--create-topic")
    assert created.returncode == 0, created.stdout + created.stderr
    assert await partition_count(missing.kafka, missing.topic) == 4
    assert await all_records(missing.kafka, missing.topic) == backed_up.events
    # --only events left the checks topic alone
    assert not any((await highwaters(missing.kafka, missing.checks_topic)).values())


def test_the_file_is_plain_avro_with_the_documented_schema(backed_up: BackedUp) -> None:
    with backed_up.path.open("rb") as stream:
        plain = reader(stream)
        # the schema as written (fastavro spells names in full: the same schema)
        assert parse_schema(json.loads(plain.metadata["avro.schema"])) == PARSED_SCHEMA
        assert plain.metadata["avro.codec"] == "deflate"
        topics = json.loads(plain.metadata[META_TOPICS])
        rows = list(plain)
    assert [(t["role"], t["topic"], t["partitions"]) for t in topics] == [
        ("events", backed_up.settings.topic, 4),
        ("checks", backed_up.settings.checks_topic, 3),
    ]
    assert [t["end_offsets"] for t in topics] == [
        [sum(1 for s in backed_up.events if s.partition == p) for p in range(4)],
        [sum(1 for s in backed_up.checks if s.partition == p) for p in range(3)],
    ]
    expected = [(backed_up.settings.topic, s) for s in backed_up.events] + [
        (backed_up.settings.checks_topic, s) for s in backed_up.checks
    ]
    assert len(rows) == len(expected)
    for row, (topic, seen) in zip(rows, expected, strict=True):
        assert isinstance(row, dict)
        assert (row["topic"], row["partition"], row["offset"]) == (
            topic,
            seen.partition,
            seen.offset,
        )
        assert (row["key"], row["value"], row["timestamp"]) == (
            seen.key,
            seen.value,
            seen.timestamp,
        )
        assert [(h["key"], h["value"]) for h in row["headers"]] == list(seen.headers)

    with DataFileReader(backed_up.path.open("rb"), DatumReader()) as apache:
        assert parse_schema(json.loads(apache.get_meta("avro.schema") or b"")) == PARSED_SCHEMA
        assert json.loads(apache.get_meta(META_TOPICS) or b"") == topics
        again = list(apache)
    assert again == rows


def test_backup_never_overwrites_a_file(backed_up: BackedUp) -> None:
    before = backed_up.path.read_bytes()
    refused = run_cli(backed_up.settings, "backup", str(backed_up.path))
    assert refused.returncode == 2
    assert f"{backed_up.path} exists; not overwritten" in refused.stderr
    assert backed_up.path.read_bytes() == before
    assert [p.name for p in backed_up.path.parent.iterdir()] == [backed_up.path.name]


async def test_restore_refuses_a_file_that_is_not_a_backup(
    backed_up: BackedUp, real_servers: Servers, tmp_path: Path
) -> None:
    fresh = await make_settings(real_servers)
    text = tmp_path / "notes.avro"
    text.write_text("not avro\n")
    refused = run_cli(fresh, "restore", str(text))
    assert refused.returncode == 2
    assert "is not a readable Avro object container file" in refused.stderr
    # an Avro file without the ledger's metadata
    other = tmp_path / "other.avro"
    with backed_up.path.open("rb") as source, other.open("wb") as out:
        writer(out, SCHEMA, list(reader(source))[:3], codec="deflate")
    refused = run_cli(fresh, "restore", str(other))
    assert refused.returncode == 2
    assert "metadata ledger.backup_format is missing" in refused.stderr
    assert not any((await highwaters(fresh.kafka, fresh.topic)).values())


async def test_backup_and_restore_keep_the_purpose_versions(
    real_servers: Servers, tmp_path: Path
) -> None:
    """The catalogue's versions are events like any other: a restored log, projected afresh,
    answers the same history, and the catalogue file seeds nothing over it."""
    settings = await make_settings(real_servers)
    async with running_projector(settings), running_api(settings) as api:
        await seeded(settings)
        changed = put_body(await current(api, "newsletter"), title="Weekly news")
        assert (await api.put("/v1/purposes/newsletter", json=changed)).status_code == 201
        before = (await api.get("/v1/purposes/newsletter/history")).json()
        listed = (await api.get("/v1/purposes")).json()
    path = tmp_path / "ledger.avro"
    done = run_cli(settings, "backup", str(path), "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr

    fresh = await make_settings(real_servers)
    done = run_cli(fresh, "restore", str(path), "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    async with running_projector(fresh), running_api(fresh) as api:

        async def restored() -> bool:
            return await purpose_rows(fresh) == FILE_PURPOSES + 1

        await wait_until(restored, 60, "the restored purpose versions to be projected")
        await wait_until(
            lambda: follows(api, listed), 30, "the API to follow the restored catalogue"
        )
        after = (await api.get("/v1/purposes/newsletter/history")).json()
    assert [v["version"] for v in after["versions"]] == [1, 2]
    assert after == before
    assert await purpose_rows(fresh) == FILE_PURPOSES + 1


async def follows(api: httpx.AsyncClient, listed: dict[str, object]) -> bool:
    return bool((await api.get("/v1/purposes")).json() == listed)
