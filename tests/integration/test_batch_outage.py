"""A batch check with a campaign_id answers only once its evidence is acknowledged: without a
broker it is 503 (do not send); a check without campaign_id needs no broker."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import pytest

from services.stack.embedded import EmbeddedKafka
from tests.conftest import make_settings, running_api
from tests.servers import Servers

pytestmark = pytest.mark.integration

BODY = {"purpose": "newsletter", "channel": "email", "subjects": ["out-1", "out-2"]}


async def test_no_acknowledged_evidence_no_answer(real_servers: Servers) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedKafka(log_file=Path(tmp) / "broker.log")
        servers = Servers("embedded", broker.start(), real_servers.database_url, False)
        try:
            settings = await make_settings(
                servers,
                LEDGER_PRODUCE_TIMEOUT_MS="1500",
                LEDGER_CHECKS_TOPIC=f"checks.{uuid.uuid4().hex}",
                # no projector runs here: the staleness guard would refuse every check
                LEDGER_MAX_STALENESS_MS="0",
            )
            async with running_api(settings) as api:
                broker.stop()
                down = await api.post(
                    "/v1/decisions/batch", json={**BODY, "campaign_id": "spring-1"}
                )
                assert down.status_code == 503, down.text
                assert down.headers["content-type"] == "application/problem+json"
                assert int(down.headers["retry-after"]) >= 1
                assert "do not send" in down.json()["detail"]
                plain = await api.post("/v1/decisions/batch", json=BODY)
                assert plain.status_code == 200, plain.text
                assert plain.json()["check"] is None
                assert plain.json()["counts"]["denied_by_reason"] == {"no_consent": 2}
        finally:
            broker.stop()
