"""GET /v1/audiences and the suppression list's CSV and addresses against the real servers:
the audience is exactly the subjects a batch check allows, from one snapshot, with decrypted
addresses, reason counts, a contact check recorded first, and the audience scope."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from services.config import Settings
from services.identity.api_keys import AUDIENCE, DECIDE
from services.proof.contact_checks import subjects_digest
from tests.conftest import make_settings, running_api, running_projector
from tests.integration.access_support import client_of, made_key
from tests.integration.test_batch_decisions import read_check
from tests.servers import Servers

pytestmark = pytest.mark.integration

#: subject -> what it records after linking its address (None: nothing more)
PLAN: dict[str, tuple[str, dict[str, Any]] | None] = {
    "au-granted-1": ("consents", {"purpose": "newsletter", "channel": "email"}),
    "au-granted-2": ("consents", {"purpose": "newsletter", "channel": "email"}),
    "au-granted-3": ("consents", {"purpose": "newsletter", "channel": "email"}),
    "au-objector": ("objections", {"kind": "direct_marketing"}),
    "au-withdrawn": ("withdrawals", {}),
    "au-nothing": None,
}


@pytest.fixture(scope="module")
async def audience_settings(real_servers: Servers) -> Settings:
    return await make_settings(real_servers, LEDGER_CHECKS_TOPIC=f"checks.{uuid.uuid4().hex}")


@pytest.fixture(scope="module")
async def audience_api(audience_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_projector(audience_settings), running_api(audience_settings) as client:
        yield client


def address(subject: str) -> str:
    return f"{subject}@example.com"


@pytest.fixture(scope="module")
async def seeded(audience_api: httpx.AsyncClient) -> str:
    """The plan recorded, plus a granted subject without an address; the last token."""
    for subject, then in PLAN.items():
        link = {"type": "email", "value": address(subject).upper()}
        steps = [("identifiers", link), *([then] if then else [])]
        for path, body in steps:
            answer = await audience_api.post(f"/v1/subjects/{subject}/{path}", json=body)
            assert answer.status_code == 201, answer.text
    grant = {"purpose": "newsletter", "channel": "email"}
    answer = await audience_api.post("/v1/subjects/au-no-address/consents", json=grant)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


async def batch_answer(api: httpx.AsyncClient) -> dict[str, Any]:
    subjects = [*PLAN, "au-no-address"]
    body = {"purpose": "newsletter", "channel": "email", "subjects": subjects}
    answer = await api.post("/v1/decisions/batch", json=body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def pull(api: httpx.AsyncClient, **query: str) -> httpx.Response:
    params = {"purpose": "newsletter", "channel": "email", **query}
    answer = await api.get("/v1/audiences", params=params)
    assert answer.status_code == 200, answer.text
    return answer


async def test_the_audience_is_what_a_batch_check_allows(
    audience_api: httpx.AsyncClient, seeded: str
) -> None:
    answer = await pull(audience_api, min_token=seeded)
    assert answer.headers["content-type"].startswith("application/jsonl")
    *lines, end = [json.loads(line) for line in answer.text.splitlines()]
    assert end == {"summary": {"token": answer.headers["ledger-snapshot-token"], "rows": 4}}
    batch = await batch_answer(audience_api)
    assert sorted(line["subject_id"] for line in lines) == sorted(batch["allowed"])
    assert len(lines) == 4  # the three granted and the one without an address
    assert answer.headers["ledger-snapshot-token"]


async def test_reasons_add_the_counts_of_everyone_left_out(
    audience_api: httpx.AsyncClient, seeded: str
) -> None:
    answer = await pull(audience_api, min_token=seeded, reasons="true")
    *rows, last = [json.loads(line) for line in answer.text.splitlines()]
    batch = await batch_answer(audience_api)
    summary = last["summary"]
    assert summary["left_out_by_reason"] == batch["counts"]["denied_by_reason"]
    assert summary["allowed"] == summary["rows"] == len(rows) == len(batch["allowed"])
    assert summary["considered"] == len(PLAN) + 1


async def test_csv_with_addresses_decrypts_and_access_logs_them(
    audience_api: httpx.AsyncClient, audience_settings: Settings, seeded: str
) -> None:
    query = {"format": "csv", "include_identifiers": "true", "reasons": "true"}
    answer = await pull(audience_api, min_token=seeded, **query)
    records = list(csv.reader(io.StringIO(answer.text)))
    assert records[0] == ["record", "subject_id", "email", "reason", "count"]
    subjects = {r[1]: r[2] for r in records[1:] if r[0] == "subject"}
    granted = [s for s in PLAN if s.startswith("au-granted")]
    assert subjects == {s: address(s) for s in granted}
    counts = {r[3]: int(r[4]) for r in records[1:] if r[0] == "left_out"}
    assert counts["no_address"] == 1
    assert next(r for r in records if r[0] == "allowed")[4] == str(len(granted))
    conn = await asyncpg.connect(audience_settings.database_url)
    try:
        logged = await conn.fetch("SELECT subject_id FROM access_log WHERE route = '/v1/audiences'")
    finally:
        await conn.close()
    assert set(granted) <= {r["subject_id"] for r in logged}


async def test_a_campaign_check_is_recorded_before_the_list_leaves(
    audience_api: httpx.AsyncClient, audience_settings: Settings, seeded: str
) -> None:
    answer = await pull(audience_api, min_token=seeded, campaign_id="summer-sale")
    listed = [json.loads(line)["subject_id"] for line in answer.text.splitlines()[:-1]]
    check, _ = await read_check(audience_settings, answer.headers["ledger-contact-check-id"])
    assert check.campaign_id == "summer-sale"
    assert check.recipient_kind == "subjects"
    assert check.allowed == len(listed)
    assert check.allowed_digest == subjects_digest(listed)
    assert check.recipients_digest == subjects_digest([*PLAN, "au-no-address"])
    assert check.snapshot_token == answer.headers["ledger-snapshot-token"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"format": "xml"}, "format"),
        ({"channel": "post", "purpose": "marketing_own", "include_identifiers": "true"},
         "include_identifiers"),
        ({"reasons": "yes"}, "reasons"),
        ({"channel": "fax"}, "channel"),
        ({"campaign_id": "x" * 201}, "campaign_id"),
    ],
)  # fmt: skip
async def test_a_bad_query_is_a_problem_naming_the_field(
    audience_api: httpx.AsyncClient, query: dict[str, str], field: str
) -> None:
    params = {"purpose": "newsletter", "channel": "email", **query}
    answer = await audience_api.get("/v1/audiences", params=params)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in answer.json()["errors"]}


async def test_the_audience_and_addresses_need_the_audience_scope(
    audience_api: httpx.AsyncClient, audience_settings: Settings, seeded: str
) -> None:
    _, decide_key = await made_key(audience_settings, audience_api, DECIDE, name="mailer")
    _, audience_key = await made_key(audience_settings, audience_api, AUDIENCE, name="sender")
    query = {"purpose": "newsletter", "channel": "email", "min_token": seeded}
    async with client_of(audience_api, decide_key) as mailer:
        assert (await mailer.get("/v1/audiences", params=query)).status_code == 403
        listed = {"channel": "email", "include_identifiers": "true"}
        assert (await mailer.get("/v1/suppressions", params=listed)).status_code == 403
        assert (await mailer.get("/v1/suppressions", params={"channel": "email"})).is_success
    async with client_of(audience_api, audience_key) as sender:
        assert (await sender.get("/v1/audiences", params=query)).status_code == 200


async def test_the_suppression_list_as_csv_with_addresses(
    audience_api: httpx.AsyncClient, seeded: str
) -> None:
    erased = "au-erased"
    link = {"type": "email", "value": address(erased)}
    linked = await audience_api.post(f"/v1/subjects/{erased}/identifiers", json=link)
    assert linked.status_code == 201, linked.text
    gone = await audience_api.post(f"/v1/subjects/{erased}/erasure", json={"ground": "objection"})
    assert gone.status_code in (200, 201, 202), gone.text
    wait = await audience_api.get(
        "/v1/subjects/au-objector/consent", params={"min_token": gone.json()["token"]}
    )
    assert wait.status_code == 200, wait.text
    params = {"channel": "email", "format": "csv", "include_identifiers": "true"}
    answer = await audience_api.get("/v1/suppressions", params=params)
    assert answer.status_code == 200, answer.text
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    by_reason = {r["reason"]: r for r in rows}
    assert {r["address"] for r in rows if r["reason"] != "erased"} == {
        address("au-objector"),
        address("au-withdrawn"),
    }
    assert by_reason["erased"]["address"] == ""
    assert by_reason["erased"]["blind_index"]
