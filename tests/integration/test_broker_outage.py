"""When the broker does not acknowledge, the command answers 503 and nothing is confirmed; a
retry with the same Idempotency-Key after the broker is back records the event once."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from services.stack.embedded import EmbeddedKafka
from tests.conftest import make_settings, running_api, running_projector
from tests.servers import Servers

pytestmark = pytest.mark.integration

BODY = {"purpose": "newsletter"}
KEY = {"Idempotency-Key": "outage-1"}


async def test_unacknowledged_command_is_503_and_the_retry_lands_once(
    real_servers: Servers,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedKafka(log_file=Path(tmp) / "broker.log")
        servers = Servers("embedded", broker.start(), real_servers.database_url, False)
        try:
            settings = await make_settings(servers, LEDGER_PRODUCE_TIMEOUT_MS="1500")
            async with running_api(settings) as api:
                broker.stop()
                down = await api.post("/v1/subjects/out-1/consents", json=BODY, headers=KEY)
                assert down.status_code == 503
                assert down.headers["content-type"] == "application/problem+json"
                assert int(down.headers["retry-after"]) >= 1
                assert "same Idempotency-Key" in down.json()["detail"]
                health = await api.get("/healthz")
                assert health.status_code == 200
        finally:
            broker.stop()

        # a new broker on the same port: the log is empty, as after losing an unacked send
        broker = EmbeddedKafka(port=broker.port, log_file=Path(tmp) / "broker2.log")
        broker.start()
        try:
            settings = await make_settings(
                servers, DATABASE_URL=settings.database_url, LEDGER_TOPIC=settings.topic
            )
            async with running_projector(settings), running_api(settings) as api:
                retry = await api.post("/v1/subjects/out-1/consents", json=BODY, headers=KEY)
                assert retry.status_code == 201, retry.text
                again = await api.post("/v1/subjects/out-1/consents", json=BODY, headers=KEY)
                assert again.json()["event_id"] == retry.json()["event_id"]
                history = await api.get(
                    "/v1/subjects/out-1/events", params={"min_token": again.json()["token"]}
                )
                events = history.json()["events"]
                assert [e["event_id"] for e in events] == [retry.json()["event_id"]]
        finally:
            broker.stop()
