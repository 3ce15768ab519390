"""Contact identifiers against the real servers: link, find by e-mail, unlink, and never a
plain address in the log, the database or the answers that do not need it. Bad links and
lookups are checked in-process: tests/unit/services/api/test_identifier_input.py."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import httpx
import pytest

from projections import identifiers
from services.config import Settings
from services.identity.identities import blind_index, decrypt_identifier
from services.identity.keystore import DataKeys, rewrap
from services.identity.secrets import new_key, parse_key_ring
from tests.conftest import wait_until
from tests.integration.test_commands_to_decisions import read_topic

pytestmark = pytest.mark.integration

ADDRESS = "Ada.Lovelace@Example.COM"
NORMALISED = "ada.lovelace@example.com"


async def link(api: httpx.AsyncClient, subject: str, value: str, **extra: Any) -> httpx.Response:
    body = {"type": "email", "value": value, "method": "form", **extra}
    return await api.post(f"/v1/subjects/{subject}/identifiers", json=body)


async def test_link_grant_and_decide_by_email(
    api: httpx.AsyncClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    linked = await link(api, "cust-1", f"  {ADDRESS} ")
    assert linked.status_code == 201, linked.text
    assert linked.json()["type"] == "IdentifierLinked"
    grant = await api.post(
        "/v1/subjects/cust-1/consents", json={"purpose": "newsletter", "channel": "email"}
    )
    token = grant.json()["token"]
    params = {
        "email": NORMALISED.upper(),
        "purpose": "newsletter",
        "channel": "email",
        "min_token": token,
    }
    answer = (await api.get("/v1/decision", params=params)).json()
    assert (answer["subject_id"], answer["allowed"], answer["reason"]) == (
        "cust-1",
        True,
        "consent_given",
    )
    state = await api.get(
        "/v1/subjects/by-identifier/consent", params={"email": ADDRESS, "min_token": token}
    )
    assert state.status_code == 200, state.text
    assert state.json()["subject_id"] == "cust-1"
    history = await api.get(
        "/v1/subjects/by-identifier/events", params={"email": ADDRESS, "min_token": token}
    )
    types = [e["type"] for e in history.json()["events"]]
    assert types == ["IdentifierLinked", "ConsentGranted"]

    # the address is nowhere in clear: topic keys, headers and values, tables, log lines
    records = await read_topic(settings, 2)
    needles = [s.encode() for s in (NORMALISED, ADDRESS, "lovelace")]
    for record in records:
        blob = (record.key or b"") + (record.value or b"")
        blob += b"".join(k.encode() + v for k, v in record.headers)
        assert not any(n in blob.lower() for n in needles)
    conn = await asyncpg.connect(settings.database_url)
    try:
        for table in ("journal", "identifiers", "subject_facts", "idempotency_keys"):
            dump = await conn.fetchval(
                f"SELECT coalesce(string_agg(t::text, ''), '') FROM {table} t"
            )
            assert "lovelace" not in dump.lower(), table
        row = await conn.fetchrow("SELECT * FROM identifiers")
        data_key = await DataKeys(conn, settings.secrets().master).existing("cust-1")
    finally:
        await conn.close()
    assert data_key is not None and row is not None
    assert decrypt_identifier(data_key, "cust-1", "email", row["ciphertext"]) == NORMALISED
    assert bytes(row["blind_index"]) == blind_index(
        settings.secrets().blind_index_key, "email", NORMALISED
    )
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert server_side
    assert not [r.name for r in server_side if "lovelace" in r.getMessage().lower()]


async def test_unknown_addresses_deny_or_404(api: httpx.AsyncClient) -> None:
    params = {"email": "nobody@example.com", "purpose": "newsletter", "channel": "email"}
    answer = await api.get("/v1/decision", params=params)
    assert answer.status_code == 200
    assert (answer.json()["allowed"], answer.json()["reason"]) == (False, "unknown_subject")
    state = await api.get("/v1/subjects/by-identifier/consent", params={"email": "x@example.com"})
    assert state.status_code == 404
    problem = state.json()
    assert [e["field"] for e in problem["errors"]] == ["email"]
    assert "x@example.com" not in state.text


async def test_one_subject_per_address_unlink_and_relink(api: httpx.AsyncClient) -> None:
    assert (await link(api, "cust-a", "shared@example.com")).status_code == 201
    await_token = (await link(api, "cust-a", "Shared@example.com")).json()["token"]
    params = {"email": "shared@example.com", "min_token": await_token}
    assert (await api.get("/v1/subjects/by-identifier/consent", params=params)).status_code == 200
    taken = await link(api, "cust-b", "shared@example.com")
    assert taken.status_code == 409
    assert taken.json()["type"].endswith("identifier-linked-elsewhere")
    not_linked = await api.request(
        "DELETE",
        "/v1/subjects/cust-b/identifiers",
        json={"type": "email", "value": "shared@example.com"},
    )
    assert not_linked.status_code == 404
    unlinked = await api.request(
        "DELETE",
        "/v1/subjects/cust-a/identifiers",
        json={"type": "email", "value": "shared@example.com"},
    )
    assert unlinked.status_code == 201, unlinked.text
    params = {"email": "shared@example.com", "min_token": unlinked.json()["token"]}
    assert (await api.get("/v1/subjects/by-identifier/consent", params=params)).status_code == 404
    assert (await link(api, "cust-b", "shared@example.com")).status_code == 201


async def test_a_retried_link_is_one_event(api: httpx.AsyncClient, settings: Settings) -> None:
    headers = {"Idempotency-Key": "link-retry-1"}
    body = {"type": "phone", "value": "+49 30 1234567"}
    first = await api.post("/v1/subjects/cust-7/identifiers", json=body, headers=headers)
    again = await api.post("/v1/subjects/cust-7/identifiers", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["event_id"] == again.json()["event_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await api.post(
        "/v1/subjects/cust-7/identifiers", json={**body, "value": "+49 30 7654321"}, headers=headers
    )
    assert other.status_code == 422
    assert len(await read_topic(settings, 1)) == 1


async def test_rewrap_moves_data_keys_to_the_new_master_key(settings: Settings) -> None:
    old = settings.secrets().master
    conn = await asyncpg.connect(settings.database_url)
    try:
        keys = DataKeys(conn, old)
        created = await keys.for_subjects(["r-1", "r-2", "r-3"])
        assert await keys.for_subjects(["r-1", "r-2"]) == {s: created[s] for s in ("r-1", "r-2")}
        text = f"m9:{new_key()}," + ",".join(f"{kid}:{_b64(key)}" for kid, key in old.keys.items())
        ring = parse_key_ring("LEDGER_MASTER_KEYS", text)
        assert await rewrap(conn, ring, batch=2) == 3
        assert await rewrap(conn, ring) == 0
        only_new = parse_key_ring("LEDGER_MASTER_KEYS", text.split(",")[0])
        assert await DataKeys(conn, only_new).for_subjects(created) == created
        assert await identifiers.lookup(conn, "email", []) == {}
    finally:
        await conn.close()


def _b64(key: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(key).decode().rstrip("=")


async def test_an_unlink_with_a_key_still_needs_the_link(api: httpx.AsyncClient) -> None:
    body = {"type": "email", "value": "never.linked@example.com"}
    headers = {"Idempotency-Key": "unlink-never-linked"}
    refused = await api.request(
        "DELETE", "/v1/subjects/cust-9/identifiers", json=body, headers=headers
    )
    assert refused.status_code == 404, refused.text
    assert (await link(api, "cust-9", body["value"])).status_code == 201
    params = {"email": body["value"]}

    async def linked() -> bool:
        found = await api.get("/v1/subjects/by-identifier/consent", params=params)
        return found.status_code == 200

    await wait_until(linked, 10, "the link to be projected")
    first = await api.request(
        "DELETE", "/v1/subjects/cust-9/identifiers", json=body, headers=headers
    )
    again = await api.request(
        "DELETE", "/v1/subjects/cust-9/identifiers", json=body, headers=headers
    )
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["event_id"] == again.json()["event_id"]
