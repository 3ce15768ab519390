"""Bad rights requests and queries against the app in-process: a 422 naming the field. The
refusals that depend on a stored request are in tests/integration/test_requests.py."""

from __future__ import annotations

from tests.unit.services.api.in_process import InProcess


async def test_bad_requests_and_queries_name_the_field(served: InProcess) -> None:
    api = served.api
    not_uuid = await api.post("/v1/requests/nope/complete", json={})
    assert not_uuid.status_code == 422
    for body, field in [
        ({"subject_id": "rq-x", "kind": "deletion"}, "kind"),
        ({"kind": "access"}, "subject_id"),
        ({"subject_id": "ada@example.com", "kind": "access"}, "subject_id"),
    ]:
        bad = await api.post("/v1/requests", json=body)
        assert bad.status_code == 422 and field in {e["field"] for e in bad.json()["errors"]}
    for query, field in [({"status": "late"}, "status"), ({"after": "x"}, "after")]:
        bad = await api.get("/v1/requests", params=query)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == field
    assert served.fake.publisher.sent == []
