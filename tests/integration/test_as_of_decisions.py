"""What was known when: as-of decisions against the real servers (a bad `at` or `format` is
checked in-process: tests/unit/services/api/test_as_of_input.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from schemas.events import rfc3339
from services.config import Settings
from services.proof.retention import purge_due
from services.rules.catalogue import load_catalogue
from tests.integration.as_of_support import MICRO, decision_at, position, post, projected, recorded

pytestmark = pytest.mark.integration


async def test_decisions_at_instants_between_grants_and_withdrawals(
    module_api: httpx.AsyncClient,
) -> None:
    api, s = module_api, "asof-1"
    grant = await post(api, s, "consents", {"purpose": "newsletter", "channel": "email"})
    withdrawal = await post(api, s, "withdrawals", {"purpose": "newsletter"})
    regrant = await post(api, s, "consents", {"purpose": "newsletter", "channel": "email"})
    t1, t2, t3 = recorded(grant), recorded(withdrawal), recorded(regrant)
    assert t1 < t2 < t3
    token = regrant["token"]
    cases = [
        (t1 - MICRO, "no_consent", [], None),
        (t1, "consent_given", [grant["event_id"]], position(grant)),
        (t2 - MICRO, "consent_given", [grant["event_id"]], position(grant)),
        (t2, "consent_withdrawn", [withdrawal["event_id"]], position(withdrawal)),
        (t3 - MICRO, "consent_withdrawn", [withdrawal["event_id"]], position(withdrawal)),
        (t3, "consent_given", [regrant["event_id"]], position(regrant)),
    ]
    for at, reason, evidence, where in cases:
        answer = await decision_at(api, at, token, subject_id=s)
        assert (answer["reason"], answer["evidence"]) == (reason, evidence), rfc3339(at)
        assert answer["at"] == rfc3339(at) and answer["as_of_position"] == where
        assert "token" not in answer and answer["subject_id"] == s

    now = datetime.now(UTC)
    asked = {"subject_id": s, "purpose": "newsletter", "channel": "email"}
    live = (await api.get("/v1/decision", params=asked)).json()
    then = await decision_at(api, now, token, subject_id=s)
    assert (then["allowed"], then["reason"], then["evidence"]) == (
        live["allowed"],
        live["reason"],
        live["evidence"],
    )

    state = await api.get(f"/v1/subjects/{s}/consent", params={"at": rfc3339(t2)})
    assert state.status_code == 200, state.text
    body = state.json()
    (newsletter,) = [p for p in body["purposes"] if p["purpose"] == "newsletter"]
    assert newsletter["channels"]["email"]["reason"] == "consent_withdrawn"
    assert newsletter["channels"]["email"]["event_id"] == withdrawal["event_id"]
    assert body["at"] == rfc3339(t2) and body["as_of_position"] == position(withdrawal)
    assert "token" not in body


async def test_a_late_event_counts_from_when_it_was_recorded(module_api: httpx.AsyncClient) -> None:
    api, s = module_api, "asof-late"
    grant = await post(api, s, "consents", {"purpose": "newsletter", "channel": "email"})
    happened = rfc3339(recorded(grant) - timedelta(days=3))
    late = await post(api, s, "withdrawals", {"purpose": "newsletter", "occurred_at": happened})
    token = late["token"]

    before = await decision_at(api, recorded(late) - MICRO, token, subject_id=s)
    assert before["reason"] == "consent_given"  # the ledger did not know of it yet
    after = await decision_at(api, recorded(late), token, subject_id=s)
    assert after["reason"] == "consent_withdrawn"  # later in the log: it wins

    history = await api.get(f"/v1/subjects/{s}/history")
    events = history.json()["events"]
    assert [e["event_id"] for e in events] == [grant["event_id"], late["event_id"]]
    assert events[1]["occurred_at"] == happened < events[0]["occurred_at"]
    assert events[1]["recorded_at"] > events[0]["recorded_at"]


async def test_an_address_is_looked_up_as_linked_at_the_instant(
    module_api: httpx.AsyncClient,
) -> None:
    api, email = module_api, "grace@example.org"
    linked_a = await post(api, "asof-a", "identifiers", {"type": "email", "value": email})
    await projected(api, await post(api, "asof-a", "consents", {"purpose": "newsletter"}))
    response = await api.request(
        "DELETE", "/v1/subjects/asof-a/identifiers", json={"type": "email", "value": email}
    )
    assert response.status_code == 201, response.text
    unlinked = response.json()
    await projected(api, unlinked)
    linked_b = await post(api, "asof-b", "identifiers", {"type": "email", "value": email})
    token = linked_b["token"]

    at_a = await decision_at(api, recorded(unlinked) - MICRO, token, email=email)
    assert (at_a["subject_id"], at_a["reason"]) == ("asof-a", "consent_given")
    gone = await decision_at(api, recorded(unlinked), token, email=email)
    assert (gone["subject_id"], gone["reason"], gone["as_of_position"]) == (
        None,
        "unknown_subject",
        None,
    )
    at_b = await decision_at(api, recorded(linked_b), token, email=email)
    assert (at_b["subject_id"], at_b["reason"]) == ("asof-b", "no_consent")
    now = await decision_at(api, datetime.now(UTC), token, email=email)
    assert now["subject_id"] == "asof-b"
    before = await decision_at(api, recorded(linked_a) - MICRO, token, email=email)
    assert before["subject_id"] is None

    state = await api.get(
        "/v1/subjects/by-identifier/consent",
        params={"email": email, "at": rfc3339(recorded(unlinked))},
    )
    assert state.status_code == 404 and state.json()["errors"][0]["field"] == "email"
    state = await api.get(
        "/v1/subjects/by-identifier/consent",
        params={"email": email, "at": rfc3339(recorded(linked_a))},
    )
    assert state.json()["subject_id"] == "asof-a"


async def test_erasure_and_suppression_count_from_when_they_were_recorded(
    module_api: httpx.AsyncClient,
) -> None:
    """The erasure and the suppression it leaves are rules from other engineers' events: the
    as-of answer applies them only from the instant the ledger recorded them."""
    api, email = module_api, "erased.person@example.org"
    await post(api, "gone-1", "identifiers", {"type": "email", "value": email})
    granted = await post(api, "gone-1", "consents", {"purpose": "newsletter"})
    await projected(api, granted)
    other = await post(api, "next-1", "consents", {"purpose": "newsletter"})
    erased = await post(api, "gone-1", "erasure", {"ground": "consent_withdrawn"})
    await projected(api, erased)
    relinked = await post(api, "next-1", "identifiers", {"type": "email", "value": email})
    token = relinked["token"]

    before = await decision_at(api, recorded(erased) - MICRO, token, subject_id="gone-1")
    assert before["reason"] == "consent_given"
    after = await decision_at(api, recorded(erased), token, subject_id="gone-1")
    assert (after["reason"], after["evidence"]) == ("erased", [erased["event_id"]])

    unheld = await decision_at(api, recorded(relinked) - MICRO, token, subject_id="next-1")
    assert (unheld["reason"], unheld["evidence"]) == ("consent_given", [other["event_id"]])
    held = await decision_at(api, recorded(relinked), token, subject_id="next-1")
    assert (held["reason"], held["evidence"]) == ("suppressed", [relinked["event_id"]])
    live = await api.get(
        "/v1/decision", params={"subject_id": "next-1", "purpose": "newsletter", "channel": "email"}
    )
    assert live.json()["reason"] == "suppressed"

    doc = (await api.get("/v1/subjects/gone-1/export")).json()
    assert doc["identities"] == []
    assert [e["type"] for e in doc["history"]] == [
        "IdentifierLinked",
        "ConsentGranted",
        "SubjectErased",
    ]


async def test_before_an_erasure_whose_proof_was_purged_the_answer_is_gone(
    module_api: httpx.AsyncClient, module_settings: Settings
) -> None:
    api, s = module_api, "gone-2"
    granted = await post(api, s, "consents", {"purpose": "newsletter"})
    erased = await post(api, s, "erasure", {"ground": "objection"})
    await projected(api, erased)
    conn = await asyncpg.connect(module_settings.database_url)
    try:
        catalogue = load_catalogue(module_settings.catalogue_file)
        later = datetime.now(UTC) + timedelta(days=365 * 20)
        outcome = await purge_due(conn, module_settings.topic, catalogue, later, dry_run=False)
    finally:
        await conn.close()
    assert s in [subject for subject, _ in outcome.purged]

    params = {"subject_id": s, "purpose": "newsletter", "channel": "email"}
    gone = await api.get("/v1/decision", params={**params, "at": rfc3339(recorded(granted))})
    assert gone.status_code == 410, gone.text
    assert gone.json()["errors"][0]["field"] == "at"
    state = await api.get(f"/v1/subjects/{s}/consent", params={"at": rfc3339(recorded(granted))})
    assert state.status_code == 410
    now = await decision_at(api, datetime.now(UTC), erased["token"], subject_id=s)
    assert (now["reason"], now["evidence"]) == ("erased", [erased["event_id"]])
