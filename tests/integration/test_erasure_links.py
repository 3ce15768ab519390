"""Erasure against the real servers: the public pages and links of an erased subject."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from schemas import events as ev
from schemas.codec import default_codec
from services.config import Settings
from services.identity.identities import blind_index
from services.ledger.kafka_clients import new_producer
from tests.conftest import make_settings, wait_until
from tests.integration.erasure_support import decide_email, settled
from tests.servers import Servers

pytestmark = pytest.mark.integration


async def test_the_public_pages_take_an_unsubscribe_but_no_new_choice(
    api: httpx.AsyncClient,
) -> None:
    """The links issued before the erasure are revoked (tests/integration/
    test_link_revocation.py); one issued after it unsubscribes, but its preference page
    cannot grant: nothing is recorded but the withdrawal."""
    granted = await api.post(
        "/v1/subjects/er-page/consents", json={"purpose": "newsletter", "channel": "email"}
    )
    erased = await api.post("/v1/subjects/er-page/erasure", json={"ground": "consent_withdrawn"})
    assert granted.status_code == erased.status_code == 201
    await settled(api, "er-page", erased.json()["token"])
    links = await api.post(
        "/v1/unsubscribe-links",
        json={"subject_id": "er-page", "purpose": "newsletter", "channel": "email"},
    )
    assert links.status_code == 200, links.text
    preferences = urlsplit(links.json()["preferences_url"]).path
    ticked = await api.post(preferences, data={"choice": ["marketing_partners.sms"]})
    # refused (as out of date, since the form carries no digest of a page shown, or as erased):
    # either way nothing is recorded, which the history below shows
    assert ticked.status_code == 409 and "Nothing was" in ticked.text
    unsubscribed = await api.post(
        urlsplit(links.json()["url"]).path, data={"List-Unsubscribe": "One-Click"}
    )
    assert unsubscribed.status_code == 200, unsubscribed.text
    events = await api.get(
        "/v1/subjects/er-page/events",
        params={"min_token": unsubscribed.headers["ledger-token"]},
    )
    assert [e["type"] for e in events.json()["events"]][-2:] == [
        "SubjectErased",
        "ConsentWithdrawn",
    ]


async def test_a_link_that_raced_the_erasure_is_suppressed_and_forgotten(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """A link whose data key was fetched before the erasure can still reach the log after
    SubjectErased: its address must be suppressed like the ones the subject held."""
    import uuid

    from schemas.codec import kafka_headers
    from schemas.events import Event, Source
    from tests.writer_macs import sealed

    erased = await api.post("/v1/subjects/er-race/erasure", json={"ground": "consent_withdrawn"})
    assert erased.status_code == 201, erased.text
    await settled(api, "er-race", erased.json()["token"])
    index = blind_index(settings.secrets().blind_index_key, "email", "late@example.com")
    now = datetime.now(UTC)
    late = Event(
        ev.IDENTIFIER_LINKED,
        uuid.uuid4(),
        "er-race",
        now,
        now,
        Source(),
        data={"identifier_type": "email", "blind_index": index, "ciphertext": b"\x01" + bytes(40)},
    )
    producer = new_producer(settings.kafka, acks="all")
    await producer.start()
    try:
        value = default_codec().encode(late)
        await producer.send_and_wait(
            settings.topic,
            value,
            key=b"er-race",
            headers=sealed(b"er-race", value, kafka_headers(late)),
        )
    finally:
        await producer.stop()
    conn = await asyncpg.connect(settings.database_url)
    try:

        async def suppressed() -> bool:
            found = await conn.fetchval(
                "SELECT reason FROM suppressed_identifiers WHERE blind_index = $1", index
            )
            return bool(found == "erased")

        await wait_until(suppressed, 15, "the late link's address to be suppressed")
        left = await conn.fetchval("SELECT count(*) FROM identifiers WHERE subject_id = 'er-race'")
        assert left == 0
    finally:
        await conn.close()
    answer = await decide_email(api, "late@example.com")
    assert answer["allowed"] is False


@pytest.mark.parametrize(
    ("order", "suppressed"),
    [
        # erasure, then a late link and an unlink: the late address is suppressed
        (("erase", "link", "unlink"), True),
        # link and unlink before the erasure: the subject no longer held it, nothing suppressed
        (("link", "unlink", "erase"), False),
        (("link", "erase", "unlink"), True),
    ],
)
async def test_links_and_erasures_project_the_same_however_the_batches_fall(
    real_servers: Servers, order: tuple[str, ...], suppressed: bool
) -> None:
    """A link, an unlink and the erasure of one subject, in several orders: applied in one
    batch or one record at a time, the identifier rows and suppression entries come out the
    same, and an address is suppressed only if the subject held it at or after the erasure."""
    import uuid

    from projections.runner import apply_batch
    from schemas.events import Event, Source
    from tests.writer_macs import TEST_MACS, sealed_record

    codec = default_codec()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    index = bytes(range(32))

    def event(kind: str, data: dict[str, Any]) -> bytes:
        return codec.encode(Event(kind, uuid.uuid4(), "er-batch", at, at, Source(), data=data))

    made = {
        "erase": lambda: event(ev.SUBJECT_ERASED, {"ground": "consent_withdrawn"}),
        "link": lambda: event(
            ev.IDENTIFIER_LINKED,
            {"identifier_type": "email", "blind_index": index, "ciphertext": b"\x01" * 41},
        ),
        "unlink": lambda: event(
            ev.IDENTIFIER_UNLINKED, {"identifier_type": "email", "blind_index": index}
        ),
    }
    values = [made[step]() for step in order]
    log = [sealed_record(0, offset, b"er-batch", value) for offset, value in enumerate(values)]
    results = []
    for batches in ([log], [[r] for r in log]):
        settings = await make_settings(real_servers)
        conn = await asyncpg.connect(settings.database_url)
        try:
            for batch in batches:
                await apply_batch(conn, codec, settings.topic, batch, TEST_MACS)
            rows = await conn.fetch(
                "SELECT identifier_type, blind_index, subject_id, linked, log_offset"
                " FROM identifiers ORDER BY blind_index"
            )
            entries = await conn.fetch(
                "SELECT identifier_type, blind_index, reason FROM suppressed_identifiers"
            )
            results.append(([tuple(r) for r in rows], [tuple(r) for r in entries]))
        finally:
            await conn.close()
    assert results[0] == results[1]
    assert results[0][1] == ([("email", index, "erased")] if suppressed else [])
