"""The purpose catalogue as events against the real servers: the file seeds the log once, a PUT
records a version that every API process decides with without a restart, `at=` answers the
catalogue then in force, a bad body is a 422 naming the field, and a changed file is reported,
not applied. The pure model: tests/unit/services/rules/test_catalogue_history.py."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import asyncpg
import httpx
import pytest

from services.bootstrap import close_ledger, open_ledger, record_purpose_versions
from services.config import Settings
from services.rules.catalogue import load_catalogue
from services.rules.catalogue_events import FILE_ACTOR
from services.rules.webhook_fields import WEBHOOK_EVENT_TYPES
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.integration.purpose_support import (
    FILE_PURPOSES,
    current,
    journaled_purpose_events,
    purpose_rows,
    put_body,
    seeded,
)
from tests.integration.topic_records import all_records
from tests.servers import Servers

pytestmark = pytest.mark.integration

NL = "newsletter"


async def email_decision(api: httpx.AsyncClient, subject: str) -> int:
    params = {"subject_id": subject, "purpose": NL, "channel": "email"}
    return (await api.get("/v1/decision", params=params)).status_code


async def test_the_file_seeds_the_log_once(settings: Settings) -> None:
    async with running_projector(settings), running_api(settings) as api:
        await seeded(settings)
        history = await api.get(f"/v1/purposes/{NL}/history")
        assert history.status_code == 200, history.text
        [first] = history.json()["versions"]
        assert (first["version"], first["in_force_from"]) == (1, "1970-01-01T00:00:00Z")
        assert first["recorded_by"] == {"type": "system", "id": "purpose-catalogue-file"}
        assert first["definition"]["basis"] == "consent"
        # the log's catalogue lists the purposes in the file's order, not by partition
        listed = (await api.get("/v1/purposes")).json()["purposes"]
        assert [p["id"] for p in listed] == list(load_catalogue(settings.catalogue_file).ids)
    # a second start, and a second process beside it, record nothing more
    async with running_projector(settings), running_api(settings), running_api(settings) as api:
        assert (await current(api, NL))["version"] == 1
        assert await purpose_rows(settings) == FILE_PURPOSES
        assert await journaled_purpose_events(settings) == FILE_PURPOSES


async def test_a_first_start_serves_once_its_catalogue_is_projected(
    real_servers: Servers,
) -> None:
    """The API records the file's purposes before it serves, and waits (within
    LEDGER_READ_WAIT_MS) for the projector to apply them: its first decisions do not meet a
    projection behind its own seeds."""
    settings = await make_settings(real_servers, LEDGER_READ_WAIT_MS="60000")
    async with running_projector(settings), running_api(settings):
        assert await purpose_rows(settings) == FILE_PURPOSES  # no waiting: already there


async def test_a_put_version_is_decided_with_at_once_in_every_process(settings: Settings) -> None:
    async with (
        running_projector(settings),
        running_api(settings) as one,
        running_api(settings) as other,
    ):
        await seeded(settings)
        granted = await one.post(
            "/v1/subjects/s-1/consents", json={"purpose": NL, "channel": "email"}
        )
        assert granted.status_code == 201, granted.text
        assert await email_decision(one, "s-1") == 200
        before = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        v1 = await current(one, NL)
        put = await one.put(f"/v1/purposes/{NL}", json=put_body(v1, channels=["sms"]))
        assert put.status_code == 201, put.text
        assert (put.json()["version"], put.json()["channels"]) == (2, ["sms"])
        # the recording process decides with it at once: email is no longer the purpose's
        assert await email_decision(one, "s-1") == 422

        async def other_follows() -> bool:
            return await email_decision(other, "s-1") == 422

        await wait_until(other_follows, 10, "the other API process to follow the catalogue")
        assert (await current(other, NL, at=before))["channels"] == ["email"]
        assert (await current(other, NL))["version"] == 2
        again = await one.put(f"/v1/purposes/{NL}", json=put_body(v1, channels=["sms"]))
        assert (again.status_code, again.json()["version"]) == (200, 2)
        history = (await other.get(f"/v1/purposes/{NL}/history")).json()["versions"]
        assert [v["version"] for v in history] == [1, 2]
        assert history[1]["recorded_by"]["type"] == "staff"
        # one instant: in force from the moment the log recorded it
        assert history[1]["in_force_from"] == history[1]["recorded_at"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"recipients": [{"name": "Mailer Inc", "country": "US"}]}, "recipients[0].safeguard"),
        (
            {
                "recipients": [
                    {"name": "Ops Pvt", "country": "IN", "safeguard": "adequacy_decision"}
                ]
            },
            "recipients[0].safeguard",
        ),
        ({"basis": "whim"}, "basis"),
        ({"channels": []}, "channels"),
        ({"channels": ["email", "email"]}, "channels"),
        ({"recipients": ["Mailer\u0007Inc"]}, "recipients[0].name"),
        ({"colour": "red"}, "colour"),
        ({"proof_retention": "P99999999999D"}, "proof_retention"),
        ({"proof_retention": "P" + "9" * 4400 + "D"}, "proof_retention"),
        ({"proof_retention": "P99999Y"}, "proof_retention"),
        ({"proof_retention": "P0D"}, "proof_retention"),
    ],
    ids=[
        "transfer-without-safeguard",
        "adequacy-without-decision",
        "basis",
        "no-channels",
        "duplicate-channel",
        "recipient-control-character",
        "unknown-key",
        "proof-overflow",
        "proof-4400-digits",
        "proof-beyond-calendar",
        "proof-nothing",
    ],
)
async def test_a_bad_version_is_refused_naming_the_field(
    api: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    body = put_body(await current(api, NL), **change)
    refused = await api.put(f"/v1/purposes/{NL}", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in refused.json()["errors"]] == [field]
    assert (await current(api, NL))["version"] == 1


async def test_a_changed_file_is_reported_not_applied(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_projector(settings), running_api(settings) as api:
        await seeded(settings)

        async def agrees() -> bool:
            answer = await api.get("/readyz")
            return answer.status_code == 200 and not answer.json()["catalogue"]["file_differs"]

        await wait_until(agrees, 30, "the API to be ready, its file agreeing with the log")
    edited = tmp_path / "purposes.toml"
    text = settings.catalogue_file.read_text(encoding="utf-8")
    edited.write_text(text.replace('title = "Newsletter"', 'title = "Weekly news"'))
    changed = replace(settings, catalogue_path=str(edited))
    with caplog.at_level(logging.WARNING, logger="services.reads.purpose_cache"):
        async with running_projector(changed), running_api(changed) as api:
            assert (await current(api, NL))["title"] == "Newsletter"

            async def ready() -> bool:
                return (await api.get("/readyz")).status_code == 200

            await wait_until(ready, 30, "the API to be ready")
            readyz = (await api.get("/readyz")).json()
            assert readyz["status"] == "ready"  # a changed file never makes the ledger unready
            # the edit renamed the English text's title too
            assert readyz["catalogue"] == {
                "file_differs": True,
                "differences": [{"purpose": NL, "change": "changed", "fields": ["title", "texts"]}],
            }
    assert any("newsletter changed title" in r.getMessage() for r in caplog.records)


async def test_a_seed_sent_again_while_the_projector_lags_is_one_record(
    real_servers: Servers,
) -> None:
    """No projector: the first send is never projected in time, and sending the same versions
    again (as the start-up does on each attempt) answers from the first send's ack."""
    settings = await make_settings(real_servers, LEDGER_READ_WAIT_MS="200")
    ledger = await open_ledger(settings)
    assert ledger.purpose_follower is not None
    ledger.purpose_follower.cancel()  # before it runs: the test sends the seeds itself
    try:
        seeds = ledger.purposes.missing()
        assert len(seeds) == FILE_PURPOSES
        first = await record_purpose_versions(ledger, FILE_ACTOR, seeds)
        again = await record_purpose_versions(ledger, FILE_ACTOR, seeds)
        assert again == first
        assert len({p for p, _ in first}) > 1  # the seeds span partitions
    finally:
        await close_ledger(ledger)
    keys = [r.key for r in await all_records(settings.kafka, settings.topic)]
    purpose_keys = [k for k in keys if k is not None and k.startswith(b"purpose/")]
    assert len(purpose_keys) == len(set(purpose_keys)) == FILE_PURPOSES


async def test_recorded_versions_are_waited_for_on_every_partition(settings: Settings) -> None:
    ledger = await open_ledger(settings)
    assert ledger.purpose_follower is not None
    ledger.purpose_follower.cancel()  # before it runs: the test sends the seeds itself
    asked: list[tuple[int, int]] = []
    wait_for = ledger.progress.wait_for

    async def noted(partition: int, position: int, timeout_s: float) -> bool:
        asked.append((partition, position))
        return await wait_for(partition, position, timeout_s)

    try:
        async with running_projector(settings):
            ledger.progress.wait_for = noted  # type: ignore[method-assign]
            positions = await record_purpose_versions(ledger, FILE_ACTOR, ledger.purposes.missing())
            # every version is projected when it returns, whichever partition it landed on
            assert await purpose_rows(settings) == FILE_PURPOSES
    finally:
        await close_ledger(ledger)
    last: dict[int, int] = {}
    for partition, offset in positions:
        last[partition] = max(offset, last.get(partition, -1))
    assert len(last) > 1
    assert sorted(asked) == sorted((p, o + 1) for p, o in last.items())


#: the tables that keep a purpose's events by their key: the log's own record of them and the
#: appends' idempotency keys
KEEPS_PURPOSE_KEYS: Final = {"journal", "idempotency_keys"}


async def test_no_list_of_subjects_holds_a_purpose(settings: Settings) -> None:
    """Purpose events are journaled and chained under purpose/<id>, and nowhere else a subject
    id is kept: not in subject_facts (the audiences' and suppression lists' "every subject with
    a recorded fact", the batch checks' snapshot), the state feed's outbox nor the webhook
    deliveries' tables, with a subscription to every event type a subscription may name."""
    async with running_projector(settings), running_api(settings) as api:
        await seeded(settings)
        hook = await api.post(
            "/v1/webhooks",
            json={"url": "https://crm.example.com/hooks/all", "events": list(WEBHOOK_EVENT_TYPES)},
        )
        assert hook.status_code == 201, hook.text
        granted = await api.post(
            "/v1/subjects/s-1/consents", json={"purpose": NL, "channel": "email"}
        )
        assert granted.status_code == 201, granted.text
        put = await api.put(f"/v1/purposes/{NL}", json=put_body(await current(api, NL), title="N"))
        assert put.status_code == 201, put.text
        retired = await api.delete("/v1/purposes/research")
        assert retired.status_code == 200, retired.text
    conn = await asyncpg.connect(settings.database_url)
    try:

        async def granted_projected() -> bool:
            return bool(await conn.fetchval("SELECT count(*) FROM subject_facts"))

        await wait_until(granted_projected, 30, "the grant to be projected")
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND column_name = 'subject_id'"
        )
        holding = {}
        for (table,) in tables:
            found = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE subject_id LIKE 'purpose/%'"
            )
            if found:
                holding[table] = found
        subjects = await conn.fetch("SELECT DISTINCT subject_id FROM subject_facts")
    finally:
        await conn.close()
    assert set(holding) == KEEPS_PURPOSE_KEYS
    assert holding["journal"] == FILE_PURPOSES + 2
    assert [r["subject_id"] for r in subjects] == ["s-1"]


async def test_two_processes_putting_one_purpose_at_once(settings: Settings) -> None:
    """The same body from two API processes at once is one version (201 to the process whose
    event the log kept, 200 to the other); different bodies are one version each, or a 409 to
    the request whose version number the other took first: never two rows for one version."""
    async with (
        running_projector(settings),
        running_api(settings) as one,
        running_api(settings) as other,
    ):
        await seeded(settings)
        same = put_body(await current(one, NL), title="Weekly news")
        answers = await asyncio.gather(
            one.put(f"/v1/purposes/{NL}", json=same), other.put(f"/v1/purposes/{NL}", json=same)
        )
        assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
        assert {a.json()["version"] for a in answers} == {2}
        assert await versions_of(one, NL) == [1, 2]

        base = await current(one, NL)
        answers = await asyncio.gather(
            one.put(f"/v1/purposes/{NL}", json=put_body(base, title="Daily news")),
            other.put(f"/v1/purposes/{NL}", json=put_body(base, title="Monthly news")),
        )
        statuses = sorted(a.status_code for a in answers)
        recorded = await versions_of(one, NL)
        if statuses == [201, 409]:  # both asked for version 3
            assert recorded == [1, 2, 3]
            [refused] = [a for a in answers if a.status_code == 409]
            assert refused.json()["type"].endswith("purpose-version-exists")
        else:  # one saw the other's version before choosing its number
            assert (statuses, recorded) == ([201, 201], [1, 2, 3, 4])
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            "SELECT version, count(*) AS n FROM purpose_versions WHERE purpose_id = $1"
            " GROUP BY version ORDER BY version",
            NL,
        )
    finally:
        await conn.close()
    assert [r["n"] for r in rows] == [1] * len(recorded)


async def versions_of(api: httpx.AsyncClient, pid: str) -> list[int]:
    history = (await api.get(f"/v1/purposes/{pid}/history")).json()["versions"]
    return [v["version"] for v in history]


async def test_the_openapi_document_follows_the_catalogue(api: httpx.AsyncClient) -> None:
    def purpose_enum(document: dict[str, Any]) -> list[str]:
        body = document["paths"]["/v1/subjects/{subject_id}/consents"]["post"]["requestBody"]
        found: list[str] = body["content"]["application/json"]["schema"]["properties"]["purpose"][
            "enum"
        ]
        return found

    before = purpose_enum((await api.get("/openapi.json")).json())
    assert "research" in before and "loyalty" not in before
    loyalty = put_body(await current(api, NL), title="Loyalty club")
    assert (await api.put("/v1/purposes/loyalty", json=loyalty)).status_code == 201
    assert (await api.delete("/v1/purposes/research")).status_code == 200
    after = purpose_enum((await api.get("/openapi.json")).json())
    assert after == [p for p in before if p != "research"] + ["loyalty"]
