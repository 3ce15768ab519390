"""Link revocations are projected from the log (security review finding M3): a rebuild puts
them back after the table was lost, and the projections equal a clean replay of the log."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from services.config import Settings
from services.operations.rebuild import RebuildOptions, rebuild
from tests.conftest import running_api, running_projector, wait_until
from tests.integration.rebuild_support import produce_full_log
from tests.integration.replay import answers_decisions, caught_up, clean_replay, snapshot
from tests.integration.unsubscribe_support import history, issue, path_of
from tests.servers import Servers

pytestmark = pytest.mark.integration

QUESTION = {"purpose": "newsletter", "channel": "email"}
ROWS = "SELECT * FROM link_revocations ORDER BY 1, 2, 3"


async def opens(api: httpx.AsyncClient, answer: dict[str, str], page: str) -> int:
    url = answer["preferences_url" if page == "p" else "url"]
    return (await api.get(path_of(url))).status_code


async def test_revocations_survive_a_rebuild_and_equal_a_clean_replay(
    real_servers: Servers, settings: Settings, db: asyncpg.Connection
) -> None:
    await produce_full_log(settings, 600, seed=41)  # LinksRevoked, erasures, unlinks among them
    async with running_projector(settings), running_api(settings) as api:
        linked = await api.post(
            "/v1/subjects/rv-unlinked/identifiers",
            json={"type": "email", "value": "rv@home.example"},
        )
        assert linked.status_code == 201, linked.text
        await history(api, "rv-unlinked", linked.json()["token"])
        earlier = {
            "rv-revoked": await issue(api, subject_id="rv-revoked", **QUESTION),
            "rv-erased": await issue(api, subject_id="rv-erased", **QUESTION),
            "rv-unlinked": await issue(api, email="rv@home.example", **QUESTION),
        }
        revoked = await api.post("/v1/subjects/rv-revoked/links/revoke", json={})
        erased = await api.post("/v1/subjects/rv-erased/erasure", json={"ground": "objection"})
        unlinked = await api.request(
            "DELETE",
            "/v1/subjects/rv-unlinked/identifiers",
            json={"type": "email", "value": "rv@home.example"},
        )
        for subject, answer in (
            ("rv-revoked", revoked),
            ("rv-erased", erased),
            ("rv-unlinked", unlinked),
        ):
            assert answer.status_code == 201, answer.text
            await history(api, subject, answer.json()["token"])
        later = await issue(api, subject_id="rv-revoked", **QUESTION)
        await wait_until(lambda: caught_up(settings, db), 120, "the projector to catch up")
        await wait_until(lambda: answers_decisions(api), 60, "the projection to be current")

        refused = [(s, "p") for s in earlier] + [("rv-erased", "u")]
        assert [await opens(api, earlier[s], page) for s, page in refused] == [404] * 4
        assert await opens(api, earlier["rv-revoked"], "u") == 200
        assert await opens(api, later, "p") == 200
        rows = [tuple(r) for r in await db.fetch(ROWS)]
        assert {r[0] for r in rows} >= set(earlier)
        assert len({r[0] for r in rows}) > len(earlier)  # the random log's revocations too

        # a bug in a projection: the revocations are lost, and the earlier links open again
        await db.execute("DELETE FROM link_revocations")
        assert await opens(api, earlier["rv-revoked"], "p") == 200

        outcome = await rebuild(settings, RebuildOptions(progress=False))

        assert outcome.digests_differ == []
        assert [tuple(r) for r in await db.fetch(ROWS)] == rows
        assert [await opens(api, earlier[s], page) for s, page in refused] == [404] * 4
        assert await opens(api, later, "p") == 200
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to catch up")
    live, replayed = await snapshot(db), await clean_replay(real_servers, settings)
    # the API made a data key for the address it linked; a replay only shreds keys
    live["shredded"] = [row for row in live["shredded"] if row[1]]
    assert live["link_revocations"] == rows
    assert live == replayed
