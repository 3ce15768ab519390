"""`consent-ledger import` against the real servers: each format's sample becomes decisions,
bad rows land in the rejects file, a re-run sends nothing, and no address is stored in clear."""

from __future__ import annotations

import csv
import re
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import TopicPartition

from schemas.events import NOT_ABOUT_A_SUBJECT
from services.bootstrap import close_ledger, open_ledger
from services.config import Settings
from services.importing import formats
from services.importing.run import ImportOptions, import_file, prepare, run_import
from services.ledger.kafka_clients import new_consumer
from services.ledger.topic import highwaters
from services.rules.catalogue import load_catalogue
from services.stack.embedded import EmbeddedKafka
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.faults.log_audit import read_log
from tests.servers import Servers

pytestmark = pytest.mark.integration

SAMPLES = Path(formats.__file__).parent / "samples"
ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

#: sample -> (format, {address: (allowed, reason)}, {rejected line: reason fragment})
CASES = {
    "generic.csv": (
        "generic",
        {
            "ada@example.com": (True, "consent_given"),
            "bob@example.org": (True, "consent_given"),
            "cy@example.com": (False, "consent_withdrawn"),
            "dee@example.org": (False, "objected_direct_marketing"),
            "eve@example.com": (False, "unknown_subject"),
            "fay@example.org": (False, "unknown_subject"),
        },
        {
            6: "email: ",
            7: "status: not one of subscribed, unsubscribed, blocklisted",
            8: "opted_in_at: is in the future",
        },
    ),
    "listmonk.csv": (
        "listmonk",
        {
            "ann@example.com": (True, "consent_given"),
            "ben@example.org": (False, "objected_direct_marketing"),
            "cat@example.com": (True, "consent_given"),
            "dan@example.org": (False, "unknown_subject"),
            "fin@example.org": (False, "unknown_subject"),
        },
        {5: "status: 'disabled'", 6: "email: ", 7: "created_at: not a time"},
    ),
    "mailchimp.csv": (
        "mailchimp",
        {
            "gus@example.com": (True, "consent_given"),
            "hal@example.org": (True, "consent_given"),
            "ida@example.com": (True, "consent_given"),
            "jo@example.org": (False, "unknown_subject"),
        },
        {5: "CONFIRM_TIME or OPTIN_TIME: required", 6: "Email Address: "},
    ),
    "mailchimp-unsubscribed.csv": (
        "mailchimp",
        {
            "lea@example.com": (False, "consent_withdrawn"),
            "max@example.org": (False, "consent_withdrawn"),
            "ned@example.com": (False, "unknown_subject"),
        },
        {4: "UNSUB_TIME or LAST_CHANGED: required"},
    ),
}


def options(path: Path, format_name: str) -> ImportOptions:
    return ImportOptions(path, format_name, "newsletter", "email", progress=False)


def projected(settings: Settings, db: asyncpg.Connection) -> Callable[[], Awaitable[bool]]:
    """True once the projector has applied everything the topic holds."""

    async def check() -> bool:
        ends = await highwaters(settings.kafka, settings.topic)
        rows = await db.fetch(
            "SELECT log_partition, next_offset FROM projector_offsets WHERE topic = $1",
            settings.topic,
        )
        done = {r["log_partition"]: r["next_offset"] for r in rows}
        return all(done.get(p, 0) >= end for p, end in ends.items())

    return check


async def decision(api: httpx.AsyncClient, email: str) -> tuple[bool, str]:
    answer = await api.get(
        "/v1/decision", params={"email": email, "purpose": "newsletter", "channel": "email"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["allowed"], answer.json()["reason"]


def read_rejects(path: Path) -> dict[int, str]:
    with path.open(encoding="utf-8", newline="") as stream:
        header, *rows = csv.reader(stream)
    assert header == ["line", "reason"]
    assert all(len(row) == 2 for row in rows)
    return {int(line): reason for line, reason in rows}


def rejects_files(directory: Path) -> list[Path]:
    return list(directory.glob("*.rejects.csv"))


async def topic_bytes(settings: Settings) -> list[bytes]:
    """Every key, header and value in the topic."""
    ends = await highwaters(settings.kafka, settings.topic)
    consumer = new_consumer(settings.kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic, p) for p in ends]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[bytes] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp.partition]]:
            batches = await consumer.getmany(*tps, timeout_ms=200)
            for records in batches.values():
                for record in records:
                    out += [record.key or b"", record.value or b""]
                    out += [k.encode() + v for k, v in record.headers]
        return out
    finally:
        await consumer.stop()


async def table_texts(db: asyncpg.Connection) -> list[str]:
    """Every value of every table of the ledger's database, bytes read as Latin-1."""
    tables = await db.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    out = []
    for table in tables:
        for row in await db.fetch(f'SELECT * FROM "{table["table_name"]}"'):
            for value in row.values():
                out.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return out


@pytest.mark.parametrize("sample", sorted(CASES))
async def test_a_sample_becomes_decisions_and_a_rerun_records_nothing(
    settings: Settings,
    db: asyncpg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sample: str,
) -> None:
    format_name, expected, rejected = CASES[sample]
    path = Path(shutil.copy(SAMPLES / sample, tmp_path / sample))
    async with running_projector(settings), running_api(settings) as api:
        assert await run_import(settings, options(path, format_name)) == 0
        first = capsys.readouterr().out
        recorded = sum(1 for allowed, reason in expected.values() if reason != "unknown_subject")
        assert f"recorded          {recorded}\n" in first
        assert f"rejected          {len(rejected)}\n" in first
        await wait_until(projected(settings, db), 30, "the import to be projected")
        for email, answer in expected.items():
            assert await decision(api, email) == answer, email
            assert await decision(api, email.upper()) == answer, email

        reasons = read_rejects(tmp_path / f"{sample}.rejects.csv")
        assert sorted(reasons) == sorted(rejected)
        for line, fragment in rejected.items():
            assert fragment in reasons[line]

        email, _ = next(iter(expected.items()))
        history = await api.get("/v1/subjects/by-identifier/events", params={"email": email})
        events = history.json()["events"]
        assert len(events) == 2 and events[0]["type"] == "IdentifierLinked"
        payload = events[-1]["payload"]
        assert payload["source"] == {
            "method": "import",
            "system": f"import:{format_name}",
            "collection_point": None,
        }
        assert payload["actor"] == {"type": "system", "id": f"import:{format_name}"}
        if payload["type"] == "ConsentGranted":
            # what the source says of a double opt-in is evidence; the method stays import
            confirmed = {"mailchimp.csv": "2022-01-10T08:03:12Z (mailchimp)"}.get(sample)
            assert payload["evidence"] == (
                f"double_opt_in confirmed {confirmed}" if confirmed else None
            )
        assert history.json()["subject_id"].startswith("s-")

        before = await highwaters(settings.kafka, settings.topic)
        assert await run_import(settings, options(path, format_name)) == 0
        again = capsys.readouterr().out
        assert "recorded          0\n" in again
        assert f"already recorded  {recorded}\n" in again
        assert await highwaters(settings.kafka, settings.topic) == before

        tables = [t.encode("latin-1", "replace") for t in await table_texts(db)]
        stored = await topic_bytes(settings) + tables
        assert len(stored) > 2 * recorded
        with (SAMPLES / sample).open(encoding="utf-8") as text:
            addresses = {a.lower() for a in ADDRESS.findall(text.read())}
        for address in addresses:
            assert not any(address.encode() in blob.lower() for blob in stored), address


async def test_rows_go_to_the_subject_the_address_is_linked_to_unless_the_ledger_knows_better(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """ada is linked to cust-1 (nothing newer); bob to cust-2, who withdrew after the file's
    2022 opt-in: bob's row is superseded, because the log order would let it overrule."""
    path = Path(shutil.copy(SAMPLES / "generic.csv", tmp_path / "generic.csv"))
    async with running_projector(settings), running_api(settings) as api:
        for subject, email in (("cust-1", "ada@example.com"), ("cust-2", "Bob@Example.org")):
            linked = await api.post(
                f"/v1/subjects/{subject}/identifiers", json={"type": "email", "value": email}
            )
            assert linked.status_code == 201, linked.text
        withdrawn = await api.post(
            "/v1/subjects/cust-2/withdrawals", json={"purpose": "newsletter", "channel": "email"}
        )
        assert withdrawn.status_code == 201
        await wait_until(projected(settings, db), 30, "the links to be projected")

        assert await run_import(settings, options(path, "generic")) == 0
        await wait_until(projected(settings, db), 30, "the import to be projected")
        query = {"subject_id": "cust-1", "purpose": "newsletter", "channel": "email"}
        ada = await api.get("/v1/decision", params=query)
        assert (ada.json()["allowed"], ada.json()["reason"]) == (True, "consent_given")
        assert await decision(api, "bob@example.org") == (False, "consent_withdrawn")
        history = await api.get("/v1/subjects/cust-1/events")
        types = [e["type"] for e in history.json()["events"]]
        assert types == ["IdentifierLinked", "ConsentGranted"]
        assert read_rejects(tmp_path / "generic.csv.rejects.csv")[3].startswith("superseded: ")


async def test_unusable_arguments_and_files_exit_2_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env({})  # no servers: nothing may be reached
    generic = SAMPLES / "generic.csv"
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"email,status,opted_in_at\nl\xe9a@example.com,subscribed,\n")
    cases = [
        (ImportOptions(generic, "generic", "nope", "email"), "not in the catalogue"),
        (ImportOptions(generic, "generic", "legal_obligation", "email"), "rests on legal"),
        (ImportOptions(generic, "generic", "newsletter", "sms"), "not a channel of"),
        (ImportOptions(generic, "mailchimp", "newsletter", "email"), "header lacks Email Address"),
        (ImportOptions(tmp_path / "gone.csv", "generic", "newsletter", "email"), "cannot read"),
        (ImportOptions(latin, "generic", "newsletter", "email"), "is not UTF-8 text"),
    ]
    for given, message in cases:
        assert await run_import(settings, given) == 2, message
        err = capsys.readouterr().err
        assert message in err
        assert "@" not in err
    assert not rejects_files(tmp_path)


async def test_a_broker_outage_stops_the_import_and_a_rerun_finishes_it(
    real_servers: Servers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = Path(shutil.copy(SAMPLES / "generic.csv", tmp_path / "generic.csv"))
    given = options(path, "generic")
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedKafka(log_file=Path(tmp) / "broker.log")
        servers = Servers("embedded", broker.start(), real_servers.database_url, False)
        try:
            settings = await make_settings(servers, LEDGER_PRODUCE_TIMEOUT_MS="1500")
            ledger = await open_ledger(settings)
            try:
                broker.stop()
                total = prepare(load_catalogue(settings.catalogue_file), given)
                assert await import_file(ledger, given, total) == 1
            finally:
                await close_ledger(ledger)
            err = capsys.readouterr().err
            assert "the event log did not acknowledge in time" in err
            assert "Run the same command again" in err
        finally:
            broker.stop()

        broker = EmbeddedKafka(port=broker.port, log_file=Path(tmp) / "broker2.log")
        broker.start()
        try:
            settings = await make_settings(
                servers, DATABASE_URL=settings.database_url, LEDGER_TOPIC=settings.topic
            )
            async with running_projector(settings), running_api(settings) as api:
                assert await run_import(settings, given) == 0
                conn = await asyncpg.connect(settings.database_url)
                try:
                    await wait_until(projected(settings, conn), 30, "the re-run to be projected")
                finally:
                    await conn.close()
                assert await decision(api, "ada@example.com") == (True, "consent_given")
                dee = await decision(api, "dee@example.org")
                assert dee == (False, "objected_direct_marketing")
                # 4 rows, each a link and a decision. The purpose catalogue the first opening
                # recorded went with the first broker, which keeps its log in memory only
                logged = await read_log(settings.kafka, settings.topic)
                subjects = [r for r in logged if r.type not in NOT_ABOUT_A_SUBJECT]
                assert len(subjects) == 8, subjects
        finally:
            broker.stop()
