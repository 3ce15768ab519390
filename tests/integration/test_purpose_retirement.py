"""Retiring a purpose and applying an edited catalogue file, against the real servers: DELETE
/v1/purposes/{id} records PurposeRetired (decisions answer `not_in_catalogue` from then on, the
past keeps its versions, the file never seeds it again), and `consent-ledger purposes diff` /
`apply` show and record how the file differs from the log, once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from schemas.events import rfc3339
from services.config import Settings
from tests.conftest import running_api, running_projector, wait_until
from tests.integration.purpose_support import FILE_PURPOSES, current, purpose_rows, seeded

pytestmark = pytest.mark.integration

NL = "newsletter"
PARTNERS = "marketing_partners"


async def purposes_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.as_environment()}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli.main", "purposes", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def decision(api: httpx.AsyncClient, at: str | None = None) -> httpx.Response:
    params = {"subject_id": "s-retired", "purpose": NL, "channel": "email"}
    return await api.get("/v1/decision", params={**params, **({"at": at} if at else {})})


async def test_a_retired_purpose_is_denied_from_then_on_and_never_seeded_again(
    settings: Settings,
) -> None:
    async with running_projector(settings), running_api(settings) as api:
        await seeded(settings)
        granted = await api.post(
            "/v1/subjects/s-retired/consents", json={"purpose": NL, "channel": "email"}
        )
        assert granted.status_code == 201, granted.text
        before = rfc3339(datetime.now(UTC))
        retired = await api.delete(f"/v1/purposes/{NL}", params={"reason": "list closed"})
        assert retired.status_code == 200, retired.text
        assert (retired.json()["version"], retired.json()["retired"]) == (2, True)

        now = await decision(api)
        assert now.status_code == 200, now.text
        assert (now.json()["allowed"], now.json()["reason"]) == (False, "not_in_catalogue")
        then = await decision(api, at=before)
        assert (then.json()["allowed"], then.json()["reason"]) == (True, "consent_given")
        after = await decision(api, at=rfc3339(datetime.now(UTC)))
        assert after.json()["reason"] == "not_in_catalogue"
        # a choice about it is refused as about any purpose not in the catalogue
        refused = await api.post(
            "/v1/subjects/s-retired/consents", json={"purpose": NL, "channel": "email"}
        )
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["purpose"]
        listed = (await api.get("/v1/purposes")).json()["purposes"]
        assert NL not in [p["id"] for p in listed]
        assert (await current(api, NL, at=before))["version"] == 1

        again = await api.delete(f"/v1/purposes/{NL}")
        assert (again.status_code, again.json()) == (200, retired.json())
        unknown = await api.delete("/v1/purposes/never_defined")
        assert unknown.status_code == 404, unknown.text
        too_long = await api.delete(f"/v1/purposes/{PARTNERS}", params={"reason": "x" * 5000})
        assert too_long.status_code == 422, too_long.text
        assert [e["field"] for e in too_long.json()["errors"]] == ["reason"]
    assert await purpose_rows(settings) == FILE_PURPOSES + 1

    # the file still holds the purpose: a new start does not define it again
    async with running_projector(settings), running_api(settings) as api:
        assert (await decision(api)).json()["reason"] == "not_in_catalogue"
        history = (await api.get(f"/v1/purposes/{NL}/history")).json()["versions"]
        assert [(v["version"], v["retired"]) for v in history] == [(1, False), (2, True)]
        assert history[1]["recorded_by"]["type"] == "staff"
    assert await purpose_rows(settings) == FILE_PURPOSES + 1
    shown = await purposes_cli(settings, "diff")
    assert shown.returncode == 1, shown.stderr
    assert f"{NL}: retired in the log, still in the file" in shown.stdout


async def test_purposes_diff_and_apply_record_the_edited_file_once(
    settings: Settings, tmp_path: Path
) -> None:
    edited = tmp_path / "purposes.toml"
    text = settings.catalogue_file.read_text(encoding="utf-8")
    edited.write_text(text.replace('title = "Newsletter"', 'title = "Weekly news"'))
    changed = replace(settings, catalogue_path=str(edited))
    async with running_projector(settings), running_api(settings) as api:
        await seeded(settings)
        agree = await purposes_cli(settings, "diff")
        assert (agree.returncode, agree.stderr) == (0, "")
        assert "agree" in agree.stdout

        shown = await purposes_cli(changed, "diff")
        assert shown.returncode == 1, shown.stderr
        assert f"{NL}: changed (log version 1)" in shown.stdout
        assert '  title: log "Newsletter"' in shown.stdout
        assert '"Weekly news"' in shown.stdout
        assert PARTNERS not in shown.stdout
        assert await purpose_rows(settings) == FILE_PURPOSES  # diff records nothing

        applied = await purposes_cli(changed, "apply")
        assert applied.returncode == 0, applied.stderr
        assert f"{NL}: changed (log version 1)" in applied.stdout  # the difference first
        assert f"recorded {NL} version 2" in applied.stdout

        async def follows() -> bool:
            return bool((await current(api, NL))["title"] == "Weekly news")

        await wait_until(follows, 10, "the running API to follow the applied version")
        history = (await api.get(f"/v1/purposes/{NL}/history")).json()["versions"]
        assert history[1]["recorded_by"] == {"type": "system", "id": "purposes-apply"}

        again = await purposes_cli(changed, "apply")
        assert again.returncode == 0, again.stderr
        assert "agree" in again.stdout and "recorded" not in again.stdout
        assert await purpose_rows(settings) == FILE_PURPOSES + 1
        # the unedited file now differs the other way round
        back = await purposes_cli(settings, "diff")
        assert back.returncode == 1 and '  title: log "Weekly news"' in back.stdout


LOYALTY = """
[purposes.loyalty]
title = "Loyalty club"
basis = "consent"
channels = ["email"]
recipients = []
retention = "P2Y"
"""


async def test_a_purpose_added_to_the_file_later_is_drift_until_applied_from_then_on(
    settings: Settings, tmp_path: Path
) -> None:
    async with running_projector(settings), running_api(settings):
        await seeded(settings)
    before = rfc3339(datetime.now(UTC))
    edited = tmp_path / "purposes.toml"
    edited.write_text(settings.catalogue_file.read_text(encoding="utf-8") + LOYALTY)
    added = replace(settings, catalogue_path=str(edited))
    async with running_projector(added), running_api(added) as api:

        async def reported() -> bool:
            answer = await api.get("/readyz")
            return answer.status_code == 200 and answer.json()["catalogue"]["file_differs"]

        await wait_until(reported, 30, "the added purpose to be reported on /readyz")
        assert (await api.get("/readyz")).json()["catalogue"]["differences"] == [
            {"purpose": "loyalty", "change": "added", "fields": []}
        ]
        # the restart recorded nothing: the past keeps the catalogue it had
        assert await purpose_rows(added) == FILE_PURPOSES
        listed = (await api.get("/v1/purposes")).json()["purposes"]
        assert "loyalty" not in [p["id"] for p in listed]
        shown = await purposes_cli(added, "diff")
        assert shown.returncode == 1 and "loyalty: only in the file" in shown.stdout

        applied = await purposes_cli(added, "apply")
        assert applied.returncode == 0, applied.stderr
        assert "recorded loyalty version 1" in applied.stdout

        async def follows() -> bool:
            return (await api.get("/v1/purposes/loyalty/history")).status_code == 200

        await wait_until(follows, 10, "the running API to follow the applied purpose")
        history = (await api.get("/v1/purposes/loyalty/history")).json()["versions"]
        [first] = history
        assert first["in_force_from"] > before  # in force from the apply, not since 1970
        assert first["recorded_by"] == {"type": "system", "id": "purposes-apply"}

        params = {"subject_id": "s-loyal", "purpose": "loyalty", "channel": "email"}
        then = await api.get("/v1/decision", params={**params, "at": before})
        assert then.status_code == 422, then.text
        assert "purpose" in [e["field"] for e in then.json()["errors"]]
        listed_then = (await api.get("/v1/purposes", params={"at": before})).json()["purposes"]
        assert "loyalty" not in [p["id"] for p in listed_then]
