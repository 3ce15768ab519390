"""SubjectErased deliveries to a subscription with include_identifiers, end to end (the admin
API, the erasure route, the dispatcher, a real receiving server): the addresses captured
before the key was shredded, then the capture forgotten; `identifiers_withheld` where the
ledger does not hold them (the key was already gone, or a parked delivery sent again after its
capture was forgotten); and the dispatcher's one time rule for captures no delivery will open
(erasure_capture.forget_orphans, run by its housekeeping)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest

from services.config import Settings
from services.webhooks import erasure_capture
from services.webhooks.dispatcher_process import retention_pass
from services.webhooks.erasure_capture import Identifier
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.integration.webhook_support import (
    Received,
    api_subscribe,
    dispatching,
    receiving,
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


async def captures(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT count(*) FROM webhook_erasure_identifiers"))


async def link_and_erase(api: httpx.AsyncClient, subject: str, address: str) -> str:
    linked = await api.post(
        f"/v1/subjects/{subject}/identifiers", json={"type": "email", "value": address}
    )
    assert linked.status_code == 201, linked.text
    erased = await api.post(
        f"/v1/subjects/{subject}/erasure",
        params={"min_token": linked.json()["token"]},
        json={"ground": "consent_withdrawn"},
    )
    assert erased.status_code == 201, erased.text
    return str(erased.json()["event_id"])


async def test_an_erasure_delivers_the_captured_addresses_then_forgets_them(
    api: httpx.AsyncClient, hook_settings: Settings, db: asyncpg.Connection
) -> None:
    async with receiving() as receiver:
        hook = await api_subscribe(api, receiver, ["SubjectErased"], include_identifiers=True)
        plain = await api_subscribe(api, receiver, ["SubjectErased"])
        event_id = await link_and_erase(api, "er-1", "Eino@Example.fi")
        assert await captures(db) == 1
        async with dispatching(hook_settings, stored_secrets(hook_settings)):

            async def delivered_and_forgotten() -> bool:
                return len(receiver.acknowledged) == 2 and await captures(db) == 0

            await wait_until(delivered_and_forgotten, 60, "both deliveries, the capture gone")
    by_hook = {r.webhook_id.rpartition("_")[2]: r.payload for r in receiver.acknowledged}
    with_ids, without = by_hook[hook["id"]], by_hook[plain["id"]]
    assert with_ids["event_id"] == without["event_id"] == event_id
    assert with_ids["data"]["identifiers"] == [{"type": "email", "value": "eino@example.fi"}]
    assert "identifiers_withheld" not in with_ids["data"]
    assert "identifiers" not in without["data"] and "identifiers_withheld" not in without["data"]
    assert (
        await db.fetchval("SELECT wrapped_key FROM subject_keys WHERE subject_id = 'er-1'") is None
    )


async def test_an_erasure_after_the_key_was_gone_withholds_the_addresses(
    api: httpx.AsyncClient, hook_settings: Settings, db: asyncpg.Connection
) -> None:
    # erased while no subscription wanted identifiers: nothing captured, the key destroyed
    await link_and_erase(api, "er-2", "kaisa@example.fi")
    async with receiving() as receiver:
        hook = await api_subscribe(api, receiver, ["SubjectErased"], include_identifiers=True)
        again = await api.post("/v1/subjects/er-2/erasure", json={"ground": "objection"})
        assert again.status_code == 201, again.text
        assert await captures(db) == 0
        erasure_id = again.json()["event_id"]
        async with dispatching(hook_settings, stored_secrets(hook_settings)):

            async def delivered() -> bool:
                return any(r.payload["event_id"] == erasure_id for r in receiver.acknowledged)

            await wait_until(delivered, 60, "the erasure's delivery")
    # the first erasure, recorded within the clock tolerance before the webhook was created,
    # may be delivered too: it captured nothing either
    payloads = receiver.verified(hook["secret"])
    assert erasure_id in {p["event_id"] for p in payloads}
    for payload in payloads:
        # not `identifiers: []`, which would say the subject had no address
        assert payload["data"]["identifiers_withheld"] is True
        assert "identifiers" not in payload["data"]
    assert all("kaisa" not in r.body.decode() for r in receiver.received)


async def test_a_parked_erasure_sent_again_after_its_capture_went_withholds_them(
    api: httpx.AsyncClient, hook_settings: Settings, db: asyncpg.Connection
) -> None:
    healthy = False

    async def answer(_: Received) -> int:
        return 204 if healthy else 503

    async with receiving(answer) as receiver:
        hook = await api_subscribe(api, receiver, ["SubjectErased"], include_identifiers=True)
        await link_and_erase(api, "er-3", "ilmari@example.fi")
        async with dispatching(
            hook_settings, stored_secrets(hook_settings), window=timedelta(seconds=2)
        ):

            async def parked_and_forgotten() -> bool:
                parked = await db.fetchval(
                    "SELECT count(*) FROM webhook_deliveries WHERE status = 'parked'"
                )
                return parked == 1 and await captures(db) == 0

            await wait_until(parked_and_forgotten, 60, "the delivery parked, its capture gone")
            failed = [r.payload for r in receiver.received]
            assert failed and all(
                p["data"]["identifiers"] == [{"type": "email", "value": "ilmari@example.fi"}]
                for p in failed
            )
            healthy = True
            delivery = await db.fetchval("SELECT id FROM webhook_deliveries")
            again = await api.post(f"/v1/webhooks/{hook['id']}/deliveries/{delivery}/redeliver")
            assert again.status_code == 202, again.text

            async def delivered() -> bool:
                return len(receiver.acknowledged) == 1

            await wait_until(delivered, 60, "the redelivery")
    sent = receiver.acknowledged[0].payload
    assert sent["data"]["identifiers_withheld"] is True and "identifiers" not in sent["data"]
    assert "ilmari" not in receiver.acknowledged[0].body.decode()
    receiver.verified(hook["secret"])


async def test_the_dispatchers_housekeeping_forgets_orphans_after_an_hour(
    api: httpx.AsyncClient, hook_settings: Settings, db: asyncpg.Connection
) -> None:
    """Captures whose SubjectErased never reached the log (a failed append): one from two hours
    ago is deleted by the dispatcher's housekeeping once the projector has caught up since, one
    from ten minutes ago is kept (the one-hour grace, not the former 24 hours)."""
    master = hook_settings.secrets().master
    old, young = uuid.uuid4(), uuid.uuid4()
    found: list[Identifier] = [{"type": "email", "value": "x@example.fi"}]
    for event_id, age in ((old, timedelta(hours=2)), (young, timedelta(minutes=10))):
        key_id, wrapped, sealed = erasure_capture.seal(master, event_id, "er-lost", found)
        await db.execute(
            "INSERT INTO webhook_erasure_identifiers (event_id, subject_id, master_key_id,"
            " wrapped_key, sealed, captured_at) VALUES ($1, 'er-lost', $2, $3, $4,"
            " now() - $5::interval)",
            event_id,
            key_id,
            wrapped,
            sealed,
            age,
        )

    # the projector has caught up with every partition (at least once, after the capture)
    async def caught_up() -> bool:
        return bool(
            await db.fetchval(
                "SELECT count(*) > 0 AND bool_and(caught_up_at IS NOT NULL)"
                " FROM projector_partitions"
            )
        )

    await api.post("/v1/subjects/er-live/withdrawals", json={})
    await wait_until(caught_up, 60, "the projector caught up")
    done = await retention_pass(db, hook_settings)
    assert done.succeeded == 0 and done.captures == [old]
    left = [
        r["event_id"] for r in await db.fetch("SELECT event_id FROM webhook_erasure_identifiers")
    ]
    assert left == [young]
