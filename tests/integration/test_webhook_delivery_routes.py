"""Webhook deliveries end to end: subscriptions made through the admin API, events recorded
through it, the dispatcher delivering to a real receiving server. The deliveries list (status,
response code, duration, next attempt; pages; refused query values), redelivery through its
route, and the subject's addresses an include_identifiers subscription gets, decrypted at
delivery time. Erasures: test_webhook_erasure_delivery.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.config import Settings
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.integration.webhook_support import (
    Received,
    api_subscribe,
    dispatching,
    receiving,
    record,
    stored_secrets,
)
from tests.servers import Servers

pytestmark = pytest.mark.integration


@pytest.fixture
async def hook_settings(real_servers: Servers) -> Settings:
    return await make_settings(
        real_servers,
        LEDGER_WEBHOOK_GROUP=f"hooks-{uuid.uuid4().hex[:8]}",
        LEDGER_WEBHOOK_ALLOW_LOOPBACK="true",
    )


@pytest.fixture
async def api(hook_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_projector(hook_settings), running_api(hook_settings) as client:
        yield client


@pytest.fixture
async def db(hook_settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(hook_settings.database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def deliveries(api: httpx.AsyncClient, hook_id: str, query: str = "") -> list[dict[str, Any]]:
    answer = await api.get(f"/v1/webhooks/{hook_id}/deliveries?{query}")
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["deliveries"]
    return found


async def test_the_list_shows_attempts_and_a_redelivery_through_the_route_succeeds(
    api: httpx.AsyncClient, hook_settings: Settings
) -> None:
    answers: list[int] = []
    held, release = asyncio.Event(), asyncio.Event()

    async def answer(r: Received) -> int:
        answers.append(len(answers))
        if len(answers) == 2:  # the second attempt hangs until the test has looked
            held.set()
            await release.wait()
        return 200 if healthy.is_set() else 500

    healthy = asyncio.Event()
    async with receiving(answer) as receiver:
        hook = await api_subscribe(api, receiver, ["ConsentWithdrawn"])
        hook_id = hook["id"]
        async with dispatching(
            hook_settings,
            stored_secrets(hook_settings),
            window=timedelta(seconds=3),
            timeout_s=20,
        ):
            first = await record(api, "rd-1", "withdrawals", {"purpose": "newsletter"})
            await asyncio.wait_for(held.wait(), 60)
            # between the attempts: pending, one failed attempt, the next one scheduled
            (pending,) = await deliveries(api, hook_id, "status=pending")
            assert pending["event_id"] == first and pending["status"] == "pending"
            assert pending["next_attempt_at"] is not None and pending["attempt_count"] == 1
            (tried,) = pending["attempts"]
            assert (tried["attempt"], tried["outcome"], tried["response_code"]) == (
                1,
                "failed",
                500,
            )
            assert isinstance(tried["duration_ms"], int) and tried["duration_ms"] >= 0
            assert await deliveries(api, hook_id, "status=parked") == []
            release.set()
            second = await record(api, "rd-2", "withdrawals", {"purpose": "newsletter"})

            async def both_parked() -> bool:
                return len(await deliveries(api, hook_id, "status=parked")) == 2

            await wait_until(both_parked, 60, "both deliveries parked")
            parked = await deliveries(api, hook_id, "status=parked")
            assert [d["event_id"] for d in parked] == [second, first]  # newest first
            for d in parked:
                assert d["next_attempt_at"] is None and d["attempt_count"] == len(d["attempts"])
                assert [a["attempt"] for a in d["attempts"]] == list(
                    range(1, d["attempt_count"] + 1)
                )
                assert {a["response_code"] for a in d["attempts"]} <= {500, None}
            shown = (await api.get(f"/v1/webhooks/{hook_id}")).json()
            assert shown["failing_since"] is not None

            # one per page, the cursor followed to the end
            page = (await api.get(f"/v1/webhooks/{hook_id}/deliveries?limit=1")).json()
            assert [d["event_id"] for d in page["deliveries"]] == [second]
            following = (await api.get(page["next"])).json()
            assert [d["event_id"] for d in following["deliveries"]] == [first]
            assert following["next"] is None

            healthy.set()
            again = await api.post(f"/v1/webhooks/{hook_id}/deliveries/{parked[1]['id']}/redeliver")
            assert again.status_code == 202, again.text
            assert again.json() == {"id": parked[1]["id"], "status": "pending"}

            async def redelivered() -> bool:
                return len(await deliveries(api, hook_id, "status=succeeded")) == 1

            await wait_until(redelivered, 60, "the redelivery to succeed")
    (done,) = await deliveries(api, hook_id, "status=succeeded")
    assert done["event_id"] == first and done["next_attempt_at"] is None
    assert (done["attempts"][-1]["outcome"], done["attempts"][-1]["response_code"]) == (
        "succeeded",
        200,
    )
    assert [d["event_id"] for d in await deliveries(api, hook_id, "status=parked")] == [second]
    assert (await api.get(f"/v1/webhooks/{hook_id}")).json()["failing_since"] is None
    # the receiver got the same webhook-id each time, verified with the API's secret
    payloads = receiver.verified(hook["secret"])
    assert {p["event_id"] for p in payloads} == {first, second}
    assert len({r.webhook_id for r in receiver.received}) == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=done", "status"), ("limit=0", "limit"), ("cursor=zz", "cursor")],
)
async def test_a_bad_query_value_is_a_422_naming_the_field(
    api: httpx.AsyncClient, query: str, field: str
) -> None:
    hook = (
        await api.post(
            "/v1/webhooks", json={"url": "https://crm.example.com/h", "events": ["SubjectErased"]}
        )
    ).json()
    answer = await api.get(f"/v1/webhooks/{hook['id']}/deliveries?{query}")
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in answer.json()["errors"]] == [field]


async def test_unknown_webhooks_and_deliveries_are_404s(api: httpx.AsyncClient) -> None:
    hook = (
        await api.post(
            "/v1/webhooks", json={"url": "https://crm.example.com/h", "events": ["SubjectErased"]}
        )
    ).json()
    nobody = uuid.uuid4()
    for answer in (
        await api.get(f"/v1/webhooks/{nobody}/deliveries"),
        await api.get("/v1/webhooks/not-a-uuid/deliveries"),
        await api.post(f"/v1/webhooks/{hook['id']}/deliveries/{nobody}/redeliver"),
        await api.post(f"/v1/webhooks/{nobody}/deliveries/{nobody}/redeliver"),
    ):
        assert answer.status_code == 404, answer.text


def identifiers_of(payload: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((i["type"], i["value"]) for i in payload["data"]["identifiers"])


async def test_include_identifiers_carries_the_subjects_addresses_decrypted(
    api: httpx.AsyncClient, hook_settings: Settings
) -> None:
    async with receiving() as receiver:
        hook = await api_subscribe(
            api,
            receiver,
            ["IdentifierLinked", "ConsentWithdrawn", "ProcessingRestricted"],
            include_identifiers=True,
        )
        async with dispatching(hook_settings, stored_secrets(hook_settings)):
            for kind, value in (("email", "Aino.Koski@Example.fi"), ("phone", "+358 40 765 4321")):
                linked = await api.post(
                    "/v1/subjects/id-1/identifiers", json={"type": kind, "value": value}
                )
                assert linked.status_code == 201, linked.text
            withdrawn = await record(api, "id-1", "withdrawals", {"purpose": "newsletter"})
            restricted = await record(api, "id-1", "restrictions", {"ground": "accuracy_contested"})

            async def all_four() -> bool:
                return len(receiver.acknowledged) == 4

            await wait_until(all_four, 60, "four deliveries")
    payloads = receiver.verified(hook["secret"])
    assert [p["type"] for p in payloads] == [
        "IdentifierLinked",
        "IdentifierLinked",
        "ConsentWithdrawn",
        "ProcessingRestricted",
    ]
    both = [("email", "aino.koski@example.fi"), ("phone", "+358407654321")]
    # a link carries at least its own address (the projector applied it before delivery)
    assert ("email", "aino.koski@example.fi") in identifiers_of(payloads[0])
    assert identifiers_of(payloads[1]) == both
    by_id = {p["event_id"]: p for p in payloads}
    assert identifiers_of(by_id[withdrawn]) == both
    assert by_id[withdrawn]["data"]["purpose"] == "newsletter"
    assert identifiers_of(by_id[restricted]) == both
    assert by_id[restricted]["data"]["ground"] == "accuracy_contested"
    # the stored payload holds no address: it is decrypted at delivery time only
    conn = await asyncpg.connect(hook_settings.database_url)
    try:
        stored = await conn.fetch("SELECT payload::text AS p FROM webhook_deliveries")
    finally:
        await conn.close()
    assert stored and not [r for r in stored if "aino" in r["p"] or "765" in r["p"]]
