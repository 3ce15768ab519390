"""The public pages are true when they answer: after a one-click or form POST on /u/, a save on
/p/ or a confirmation on /c/ (tests/integration/test_signups.py), a decision asked at once,
without a consistency token, gets the new answer; past the read wait the page says the change
is being applied, and nothing is lost."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from services.config import Settings
from tests.conftest import make_settings, running_api, running_projector
from tests.integration.unsubscribe_support import (
    ONE_CLICK,
    decision,
    grant,
    issue,
    new_subject,
    path_of,
    shown,
)
from tests.servers import Servers

pytestmark = pytest.mark.integration


async def decide_now(api: httpx.AsyncClient, subject: str, purpose: str, channel: str) -> str:
    params = {"subject_id": subject, "purpose": purpose, "channel": channel}
    answer = await api.get("/v1/decision", params=params)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["reason"])


async def granted_links(api: httpx.AsyncClient, subject: str) -> dict[str, str]:
    token = await grant(api, subject, "newsletter", "email")
    assert (await decision(api, subject, "newsletter", "email", token))["allowed"]
    answer = await issue(api, subject_id=subject, purpose="newsletter", channel="email")
    return {"u": path_of(answer["url"]), "p": path_of(answer["preferences_url"])}


@pytest.mark.parametrize(
    "body", [ONE_CLICK, {**ONE_CLICK, "scope": "all_direct_marketing"}], ids=["one-click", "form"]
)
async def test_an_unsubscribe_is_decided_on_as_soon_as_the_page_answers(
    module_api: httpx.AsyncClient, body: dict[str, str]
) -> None:
    subject = new_subject()
    pages = await granted_links(module_api, subject)
    done = await module_api.post(pages["u"], data=body)
    assert done.status_code == 200 and "It has taken effect" in done.text
    assert await decide_now(module_api, subject, "newsletter", "email") in (
        "consent_withdrawn",
        "objected_direct_marketing",
    )


async def test_a_saved_choice_is_decided_on_as_soon_as_the_page_answers(
    module_api: httpx.AsyncClient,
) -> None:
    subject = new_subject()
    pages = await granted_links(module_api, subject)
    form = await module_api.get(pages["p"])
    saved = await module_api.post(
        pages["p"],
        data={"shown": shown(form), "choice": ["newsletter.email", "marketing_partners.sms"]},
    )
    assert saved.status_code == 200 and "They take effect at once" in saved.text
    assert await decide_now(module_api, subject, "marketing_partners", "sms") == "consent_given"
    unticked = await module_api.post(pages["p"], data={"shown": shown(saved)})
    assert unticked.status_code == 200
    assert await decide_now(module_api, subject, "newsletter", "email") == "consent_withdrawn"


@pytest.fixture
async def short_wait(real_servers: Servers) -> Settings:
    return await make_settings(real_servers, LEDGER_READ_WAIT_MS="300")


async def test_past_the_read_wait_the_page_says_it_is_being_applied_and_nothing_is_lost(
    short_wait: Settings,
) -> None:
    """The projector is held back by a lock on the subject's consent row: the page answers 200
    within the read wait, says the change is being applied, and once the lock goes the
    change is applied."""
    subject = new_subject()
    async with running_projector(short_wait), running_api(short_wait) as api:
        pages = await granted_links(api, subject)
        blocker: asyncpg.Connection = await asyncpg.connect(short_wait.database_url)
        try:
            async with blocker.transaction():
                locked = await blocker.fetch(
                    "SELECT 1 FROM subject_facts WHERE subject_id = $1 FOR UPDATE", subject
                )
                assert locked
                done = await api.post(pages["u"], data=ONE_CLICK)
                assert done.status_code == 200, done.text
                assert "It is recorded and being applied" in done.text
        finally:
            await blocker.close()
        answer = await decision(api, subject, "newsletter", "email", done.headers["ledger-token"])
        assert answer["reason"] == "consent_withdrawn"
