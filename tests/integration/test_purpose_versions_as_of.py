"""A purpose changed through the API, against the real servers: every answer about an instant
uses the version in force then. As-of decisions and consent states before and after the
change, the auditor's chart, receipts, the Art. 15 export and the Art. 30 record all name the
version they used. The pure rule is property-tested in
tests/unit/services/proof/test_as_of_catalogue.py."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from schemas.events import rfc3339
from services.config import Settings
from services.web.pages import channel_phrase
from tests.conftest import running_api, running_projector
from tests.integration.purpose_support import current, put_body, seeded

pytestmark = pytest.mark.integration

NL = "newsletter"
SUBJECT = "s-versions"
#: the new version: sent by SMS only, through a mailing house outside the EU/EEA
US_MAILER = {"name": "Mailer Inc", "country": "US", "safeguard": "standard_contractual_clauses"}


class DecisionRows(HTMLParser):
    """The rows of the auditor's "Decisions over time, as text" table, as lists of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag in ("th", "td"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif self._in_body and tag in ("th", "td") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def chart_rows(html: str) -> list[list[str]]:
    """(scope, decision, reason, version) of each stretch of the decisions table."""
    parser = DecisionRows()
    parser.feed(html[html.index("Decisions over time, as text") :])
    return [[r[0], r[3], r[4], r[5]] for r in parser.rows if len(r) == 7]


async def decision(
    api: httpx.AsyncClient, token: str, channel: str, at: str | None = None
) -> httpx.Response:
    """Asked once `token` (the test's last grant) is projected: an as-of answer reads the
    journal the projector writes."""
    params = {"subject_id": SUBJECT, "purpose": NL, "channel": channel, "min_token": token}
    if at is not None:
        params["at"] = at
    return await api.get("/v1/decision", params=params)


async def consent_channels(
    api: httpx.AsyncClient, token: str, at: str | None
) -> dict[str, tuple[bool, str]]:
    """The newsletter's channels in the subject's consent state (as of `at`, or now), each with
    whether it is allowed and why."""
    params = {"min_token": token, **({"at": at} if at is not None else {})}
    answer = await api.get(f"/v1/subjects/{SUBJECT}/consent", params=params)
    assert answer.status_code == 200, answer.text
    assert ("at" in answer.json()) is (at is not None), answer.json()
    [purpose] = [p for p in answer.json()["purposes"] if p["purpose"] == NL]
    return {c: (d["allowed"], d["reason"]) for c, d in purpose["channels"].items()}


async def grant(api: httpx.AsyncClient, channel: str) -> dict[str, Any]:
    body = {"purpose": NL, "channel": channel, "method": "form"}
    granted = await api.post(f"/v1/subjects/{SUBJECT}/consents", json=body)
    assert granted.status_code == 201, granted.text
    answer: dict[str, Any] = granted.json()
    return answer


async def receipt_purpose(api: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    answer = await api.get(f"/v1/receipts/{event_id}")
    assert answer.status_code == 200, answer.text
    [purpose] = answer.json()["receipt"]["purposes"]
    found: dict[str, Any] = purpose
    return found


async def activity(api: httpx.AsyncClient, at: str) -> dict[str, Any]:
    answer = await api.get("/v1/records-of-processing", params={"at": at})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = {a["purpose"]: a for a in answer.json()["activities"]}[NL]
    return found


async def test_every_answer_about_an_instant_uses_the_version_then_in_force(
    settings: Settings,
) -> None:
    async with running_projector(settings), running_api(settings) as api:
        await seeded(settings)
        first = await grant(api, "email")
        before = rfc3339(datetime.now(UTC))
        v1 = await current(api, NL)
        assert (v1["version"], v1["channels"]) == (1, ["email"])
        put = await api.put(
            f"/v1/purposes/{NL}",
            json=put_body(v1, channels=["sms"], recipients=[*v1["recipients"], US_MAILER]),
        )
        assert put.status_code == 201, put.text
        changed_at = put.json()["in_force_from"]
        second = await grant(api, "sms")
        after = rfc3339(datetime.now(UTC))
        token = second["token"]

        # decisions: e-mail was the purpose's channel before the change, SMS is after it
        allowed = await decision(api, token, "email", at=before)
        assert allowed.status_code == 200, allowed.text
        assert (allowed.json()["allowed"], allowed.json()["reason"]) == (True, "consent_given")
        for channel, at in (("email", after), ("email", None), ("sms", before)):
            refused = await decision(api, token, channel, at=at)
            assert refused.status_code == 422, (channel, at, refused.text)
            assert [e["field"] for e in refused.json()["errors"]] == ["channel"]
        assert (await decision(api, token, "sms", at=after)).json()["allowed"] is True

        # the consent state as of an instant lists the channels of the version then in force
        assert await consent_channels(api, token, before) == {"email": (True, "consent_given")}
        assert await consent_channels(api, token, after) == {"sms": (True, "consent_given")}
        assert await consent_channels(api, token, None) == {"sms": (True, "consent_given")}

        # receipts name the version the choice was made under
        assert (await receipt_purpose(api, first["event_id"]))["version"] == 1
        on_sms = await receipt_purpose(api, second["event_id"])
        assert on_sms["version"] == 2
        assert {**US_MAILER, "safeguard_note": None} in on_sms["recipients"]

        # the auditor's chart: e-mail allowed under version 1 until the change, then no longer
        # in the catalogue; SMS not in it before the change, decided under version 2 after it
        page = await api.get(f"/audit/subjects/{SUBJECT}", params={"min_token": second["token"]})
        assert page.status_code == 200, page.text
        rows = chart_rows(page.text)
        email, sms = (f"{v1['title']}: {channel_phrase(c)}" for c in ("email", "sms"))
        assert [r for r in rows if r[0] == email] == [
            [email, "allowed", "consent_given", "1"],
            [email, "denied", "not_in_catalogue", "not in the catalogue"],
        ], rows
        on_sms_rows = [r for r in rows if r[0] == sms]
        assert on_sms_rows[0] == [sms, "denied", "not_in_catalogue", "not in the catalogue"]
        assert on_sms_rows[-1] == [sms, "allowed", "consent_given", "2"], rows

        # the Art. 15 export: both versions, each with when it was in force
        export = await api.get(f"/v1/subjects/{SUBJECT}/export")
        assert export.status_code == 200, export.text
        versions = [v for v in export.json()["purpose_versions"] if v["id"] == NL]
        assert [(v["version"], v["in_force_until"]) for v in versions] == [
            (1, changed_at),
            (2, None),
        ]

        # the Art. 30 record: the transfer outside the EU/EEA only from the change on
        then, now = await activity(api, before), await activity(api, after)
        assert (then["version"], then["third_country_transfers"]) == (1, [])
        assert now["version"] == 2
        assert [(r["country"], r["safeguard"]) for r in now["third_country_transfers"]] == [
            ("US", "standard_contractual_clauses")
        ]
