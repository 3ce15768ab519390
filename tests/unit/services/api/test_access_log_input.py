"""GET /v1/access-log against the app in-process: a bad query is a 422 naming the field, and a
key without the audit scope is refused. What it shows is in tests/integration/test_access_log.py."""

from __future__ import annotations

from services.identity.api_keys import AUDIT, DECIDE
from tests.unit.services.api.in_process import InProcess


async def test_bad_queries_name_the_field_and_only_the_audit_scope_reads(served: InProcess) -> None:
    async with served.client(served.key(AUDIT, name="dpo")) as auditor:
        for query, field in [({}, "subject_id"), ({"subject_id": "a@b.c"}, "subject_id")]:
            bad = await auditor.get("/v1/access-log", params=query)
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == field
        limit = await auditor.get("/v1/access-log", params={"subject_id": "al-1", "limit": "0"})
        assert limit.status_code == 422 and limit.json()["errors"][0]["field"] == "limit"
    async with served.client(served.key(DECIDE, name="crm")) as marketing:
        refused = await marketing.get("/v1/access-log", params={"subject_id": "al-1"})
        assert refused.status_code == 403
