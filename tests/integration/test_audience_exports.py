"""An audience's export log, CSV cells for spreadsheets, address holders and methods, against
the real servers: every pull is in audience_exports before its rows leave (and refused when it
cannot be), an address is sent only to its current holder, a formula-like address is written
raw unless spreadsheet_safe=true, HEAD is refused, and an audience key reads the suppression
list with addresses."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from services.config import Settings
from services.identity.api_keys import AUDIENCE
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.integration.access_support import client_of, made_key
from tests.servers import Servers

pytestmark = pytest.mark.integration

GRANT = {"purpose": "newsletter", "channel": "email"}
#: a formula to a spreadsheet, and a valid e-mail address
FORMULA = "=cmd|'/c+calc'!a0@example.com"


@pytest.fixture(scope="module")
async def settings(real_servers: Servers) -> Settings:
    return await make_settings(real_servers)


@pytest.fixture(scope="module")
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_projector(settings), running_api(settings) as client:
        yield client


async def record(api: httpx.AsyncClient, subject: str, path: str, body: dict[str, str]) -> str:
    answer = await api.post(f"/v1/subjects/{subject}/{path}", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


@pytest.fixture(scope="module")
async def seeded(api: httpx.AsyncClient) -> str:
    """ex-formula holds a formula-like address; ex-old linked shared@ first, ex-new later
    (ex-new holds it now); all three granted."""
    await record(api, "ex-formula", "identifiers", {"type": "email", "value": FORMULA})
    await record(api, "ex-old", "identifiers", {"type": "email", "value": "shared@example.com"})
    await record(api, "ex-new", "identifiers", {"type": "email", "value": "shared@example.com"})
    token = ""
    for subject in ("ex-formula", "ex-old", "ex-new"):
        token = await record(api, subject, "consents", GRANT)
    return token


async def pull(api: httpx.AsyncClient, **query: str) -> httpx.Response:
    return await api.get("/v1/audiences", params={**GRANT, **query})


async def exports(settings: Settings) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetch("SELECT * FROM audience_exports ORDER BY started_at")
    finally:
        await conn.close()


async def test_every_pull_is_logged_with_its_rows_and_check(
    api: httpx.AsyncClient, settings: Settings, seeded: str
) -> None:
    before = len(await exports(settings))
    answer = await pull(api, min_token=seeded, campaign_id="autumn", include_identifiers="true")
    assert answer.status_code == 200, answer.text
    rows = answer.text.splitlines()[:-1]

    async def ended() -> bool:
        found = await exports(settings)
        return len(found) == before + 1 and found[-1]["outcome"] != "started"

    await wait_until(ended, 10, "the export's end to be written")
    export = (await exports(settings))[-1]
    assert export["outcome"] == "completed" and export["cut_reason"] is None
    assert export["row_count"] == len(rows) == 2
    assert str(export["check_id"]) == answer.headers["ledger-contact-check-id"]
    assert export["campaign_id"] == "autumn" and export["include_identifiers"]
    assert export["snapshot_token"] == answer.headers["ledger-snapshot-token"]
    assert export["key_id"] and (export["purpose"], export["channel"]) == ("newsletter", "email")


async def test_a_pull_whose_log_cannot_be_written_is_refused(
    api: httpx.AsyncClient, settings: Settings, seeded: str
) -> None:
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("ALTER TABLE audience_exports RENAME TO audience_exports_away")
        try:
            answer = await pull(api, min_token=seeded)
        finally:
            await conn.execute("ALTER TABLE audience_exports_away RENAME TO audience_exports")
    finally:
        await conn.close()
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "subject_id" not in answer.text


async def test_an_address_is_sent_only_to_its_current_holder(
    api: httpx.AsyncClient, seeded: str
) -> None:
    answer = await pull(api, min_token=seeded, include_identifiers="true", reasons="true")
    *lines, end = [json.loads(line) for line in answer.text.splitlines()]
    assert sorted((x["subject_id"], x["email"]) for x in lines) == [
        ("ex-formula", FORMULA),
        ("ex-new", "shared@example.com"),
    ]
    assert end["summary"]["left_out_by_reason"] == {"no_address": 1}  # ex-old


async def test_csv_is_raw_unless_spreadsheet_safe(api: httpx.AsyncClient, seeded: str) -> None:
    query = {"min_token": seeded, "include_identifiers": "true", "format": "csv"}
    raw = list(csv.reader(io.StringIO((await pull(api, **query)).text)))
    assert ["ex-formula", FORMULA] in raw
    safe = list(csv.reader(io.StringIO((await pull(api, **query, spreadsheet_safe="true")).text)))
    assert ["ex-formula", "'" + FORMULA] in safe
    refused = await pull(api, spreadsheet_safe="true")  # JSON lines
    assert refused.status_code == 422
    assert "spreadsheet_safe" in {e["field"] for e in refused.json()["errors"]}


async def test_the_suppression_csv_guards_addresses_when_asked(
    api: httpx.AsyncClient, seeded: str
) -> None:
    await record(api, "ex-formula", "objections", {"kind": "direct_marketing"})
    params = {"channel": "email", "format": "csv", "include_identifiers": "true"}

    async def listed() -> bool:
        answer = await api.get("/v1/suppressions", params=params)
        return FORMULA in answer.text

    await wait_until(listed, 10, "the objection to be listed")
    guarded = await api.get("/v1/suppressions", params={**params, "spreadsheet_safe": "true"})
    rows = list(csv.DictReader(io.StringIO(guarded.text)))
    assert [r["address"] for r in rows] == ["'" + FORMULA]


async def test_head_is_refused_and_records_no_check(
    api: httpx.AsyncClient, settings: Settings, seeded: str
) -> None:
    before = len(await exports(settings))
    answer = await api.head("/v1/audiences", params={**GRANT, "campaign_id": "x"})
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET"
    assert len(await exports(settings)) == before


async def test_an_audience_key_reads_the_suppression_list_with_addresses(
    api: httpx.AsyncClient, settings: Settings, seeded: str
) -> None:
    _, key = await made_key(settings, api, AUDIENCE, name="sender")
    async with client_of(api, key) as sender:
        listed = {"channel": "email", "include_identifiers": "true"}
        answer = await sender.get("/v1/suppressions", params=listed)
        assert answer.status_code == 200, answer.text
        plain = await sender.get("/v1/suppressions", params={"channel": "email"})
        assert plain.status_code == 403  # without addresses it is the decide scope's list
