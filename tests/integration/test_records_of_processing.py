"""GET /v1/records-of-processing over real sockets: the Art. 30(1) record as JSON and CSV for
the audit scope, refused to a key without it. Its bad queries are checked in-process
(tests/unit/services/api/test_as_of_input.py), each part of the record in
tests/unit/services/proof/test_processing_record.py."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from schemas.events import rfc3339
from services.config import Settings
from services.identity.api_keys import AUDIT, DECIDE
from services.proof.processing_record import CSV_COLUMNS
from tests.conftest import make_settings, running_api, running_projector
from tests.integration.access_support import PROBLEM, client_of, made_key
from tests.servers import Servers

pytestmark = pytest.mark.integration


async def test_the_record_as_json_and_csv(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    _, dpo = await made_key(module_settings, module_api, AUDIT, name="dpo")
    catalogue = (await module_api.get("/v1/purposes")).json()["purposes"]
    at = rfc3339(datetime.now(UTC) - timedelta(minutes=1))
    async with client_of(module_api, dpo) as auditor:
        answer = await auditor.get("/v1/records-of-processing", params={"at": at})
        assert answer.status_code == 200, answer.text
        document = answer.json()
        sheet = await auditor.get("/v1/records-of-processing", params={"format": "csv"})
    assert document["at"] == at
    assert document["controller"]["name"] == module_settings.controller_name
    assert [a["purpose"] for a in document["activities"]] == [p["id"] for p in catalogue]
    for activity, purpose in zip(document["activities"], catalogue, strict=True):
        assert activity["version"] == purpose["version"]
        assert activity["legal_basis"] == purpose["basis"]
        assert [r["name"] for r in activity["recipients"]] == [
            r["name"] for r in purpose["recipients"]
        ]
    assert sheet.status_code == 200, sheet.text
    assert sheet.headers["content-type"] == "text/csv; charset=utf-8"
    assert sheet.headers["content-disposition"].startswith(
        'attachment; filename="records-of-processing-'
    )
    rows = list(csv.reader(io.StringIO(sheet.text)))
    assert rows[0] == list(CSV_COLUMNS)
    assert [r[0] for r in rows[1:]] == [p["id"] for p in catalogue]


async def test_a_key_without_the_audit_scope_is_refused(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    _, crm = await made_key(module_settings, module_api, DECIDE, name="crm")
    async with client_of(module_api, crm) as marketing:
        refused = await marketing.get("/v1/records-of-processing")
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == PROBLEM


async def test_the_controllers_block_from_the_settings(real_servers: Servers) -> None:
    """Art. 30(1)(a) from the settings: joint controllers and the EU representative when
    declared, null with a note when not, and a contact the settings lack flagged as missing."""
    declared = await make_settings(
        real_servers,
        LEDGER_JOINT_CONTROLLERS="Partner Oy, privacy@partner.fi; Other AB, dpo@other.se",
        LEDGER_EU_REPRESENTATIVE="EU Rep GmbH, rep@example.de",
        LEDGER_CONTROLLER_CONTACT="privacy@example.fi",
    )
    async with running_projector(declared), running_api(declared) as api:
        document = (await api.get("/v1/records-of-processing")).json()
    controller = document["controller"]
    assert controller["joint_controllers"] == [
        "Partner Oy, privacy@partner.fi",
        "Other AB, dpo@other.se",
    ]
    assert controller["representative"] == "EU Rep GmbH, rep@example.de"
    assert controller["notes"] == {"dpo_contact": "none designated"}
    assert document["missing"] == []
    silent = await make_settings(real_servers, LEDGER_CONTROLLER_CONTACT="")
    async with running_projector(silent), running_api(silent) as api:
        document = (await api.get("/v1/records-of-processing")).json()
    controller = document["controller"]
    assert (controller["joint_controllers"], controller["representative"]) == (None, None)
    assert controller["notes"]["joint_controllers"] == "none declared"
    assert controller["notes"]["representative"] == "none declared"
    assert document["missing"] == ["controller.contact"]
