"""The README's curl tour, run as written with bash against a real `consent-ledger up`: the
first thing a new user runs keeps working."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.running_up import Stack
from tests.readme_tour import README, Step, tour_script, tour_steps

pytestmark = pytest.mark.e2e


def status_and_headers(dump: str) -> tuple[int, dict[str, str]]:
    """The status code and the headers (lower-case names) of curl's `-D` dump."""
    status, *lines = dump.strip().splitlines()
    match = re.match(r"HTTP/[\d.]+ (\d{3})", status)
    assert match, f"not an HTTP status line: {status!r}"
    headers = dict(line.split(":", 1) for line in lines if ":" in line)
    return int(match.group(1)), {k.strip().lower(): v.strip() for k, v in headers.items()}


def run_tour(steps: list[Step], stack: Stack, outputs: Path) -> dict[str, tuple[str, str]]:
    """Run the tour with the ledger's URL and admin key set as a user sets them; returns each
    call's stdout and stderr by the call's name."""
    outputs.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")},
        "LEDGER_URL": stack.url,
        "LEDGER_KEY": (stack.data_dir / "admin.key").read_text().strip(),
    }
    done = subprocess.run(
        ["bash", "-c", tour_script(steps, outputs)],
        cwd=outputs,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = {
        step.call: (
            (outputs / f"{step.call}.out").read_text(),
            (outputs / f"{step.call}.err").read_text(),
        )
        for step in steps
        if step.call is not None and (outputs / f"{step.call}.out").exists()
    }
    assert done.returncode == 0, f"the tour stopped ({done.returncode}): {done.stderr}\n{found}"
    return found


async def test_the_readme_tour_grants_decides_and_unsubscribes_every_time(
    stack: Stack, tmp_path: Path
) -> None:
    """Run twice, as a user who pastes it again does: each run grants anew, so each run's
    decision allows and each unsubscribe withdraws."""
    steps = tour_steps(README.read_text(encoding="utf-8"))  # no tour: fails before `up` starts
    stack.start()
    await stack.ready()
    async with httpx.AsyncClient(
        base_url=stack.url, timeout=30, headers=stack.admin_headers()
    ) as client:
        for run in ("first", "second"):
            outputs = await asyncio.to_thread(run_tour, steps, stack, tmp_path / run)

            grant_body, grant_headers = outputs["grant"]
            assert status_and_headers(grant_headers)[0] == 201
            grant: dict[str, Any] = json.loads(grant_body)
            assert grant["type"] == "ConsentGranted"

            decision = json.loads(outputs["decision"][0])
            assert decision["subject_id"] == grant["subject_id"]
            assert (decision["allowed"], decision["reason"]) == (True, "consent_given")
            assert decision["evidence"] == [grant["event_id"]]

            status, headers = status_and_headers(outputs["unsubscribe"][0])
            assert status == 200
            asked = {k: decision[k] for k in ("subject_id", "purpose", "channel")}
            after = await client.get(
                "/v1/decision", params={**asked, "min_token": headers["ledger-token"]}
            )
            assert after.status_code == 200, after.text
            assert (after.json()["allowed"], after.json()["reason"]) == (
                False,
                "consent_withdrawn",
            )
            [withdrawal] = after.json()["evidence"]
            events = await client.get(f"/v1/subjects/{grant['subject_id']}/events")
            [withdrawn] = [e for e in events.json()["events"] if e["event_id"] == withdrawal]
            assert withdrawn["payload"]["source"]["method"] == "unsubscribe_link"
    assert stack.interrupt() == 0
