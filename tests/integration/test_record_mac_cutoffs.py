"""A log written before the ledger MACed its records, against the real servers: it is refused
until `consent-ledger require-record-macs` records where MACs start; then a rebuild (or, after
losing the database, the printed cut-offs recorded again) applies it, while a forgery written
after the cut-off is still refused. The cut-off never moves forward unless forced."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace

import asyncpg
import pytest

from projections import mac_cutoffs
from projections.dead_letters import UNAUTHENTICATED
from services.config import Settings
from services.ledger.topic import highwaters
from services.operations.rebuild import RebuildOptions, rebuild
from services.operations.require_record_macs import CutoffOptions, require_record_macs
from tests.conftest import make_settings, running_api, running_projector, wait_until
from tests.integration.record_mac_support import (
    FORGERS,
    decide,
    grant,
    journaled,
    produce_consents,
    refusals,
)
from tests.integration.replay import answers_decisions, caught_up
from tests.integration.topic_records import run_cli
from tests.servers import Servers
from tests.writer_macs import sealed

pytestmark = pytest.mark.integration

OLD = [f"old-{n}" for n in range(8)]
#: a record written before MACs existed: no MAC header
UNMACED = FORGERS["no MAC"]


def recorded_again(stdout: str) -> list[str]:
    """The arguments of the command the output prints for recording the cut-offs again."""
    found = re.search(r"consent-ledger require-record-macs (--yes(?: --at \d+=\d+)+)", stdout)
    assert found, stdout
    return found.group(1).split()


async def test_an_old_log_is_refused_until_the_cutoff_then_a_rebuild_applies_it(
    settings: Settings, db: asyncpg.Connection
) -> None:
    old = await produce_consents(settings, OLD, UNMACED)
    async with running_projector(settings):
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to pass the log")
    # a new deployment requires MACs from offset 0: the old records are dead letters for now
    assert await journaled(db, OLD) == 0
    assert await refusals(db, settings.topic) == {
        (r.partition, r.offset): UNAUTHENTICATED for r in old
    }

    ends = await highwaters(settings.kafka, settings.topic)
    done = run_cli(settings, "require-record-macs", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert await mac_cutoffs.load(db, settings.topic) == ends
    for partition, end in ends.items():
        assert f"partition {partition}: MACs required from offset {end:,} (new)" in done.stdout
    assert f"{len(OLD)} record(s) below these offsets were refused" in done.stdout
    assert "consent-ledger rebuild" in done.stdout

    # after the cut-off: a forgery without a MAC, and a genuine command
    (late,) = await produce_consents(settings, ["late-forged"], UNMACED)
    async with running_projector(settings), running_api(settings) as api:
        genuine = await grant(api, "new-1")
        await wait_until(lambda: caught_up(settings, db), 60, "the projector to catch up")
        await rebuild(settings, RebuildOptions(progress=False))
        await wait_until(lambda: answers_decisions(api), 60, "the projection to be current")
        for subject in OLD:
            assert (await decide(api, subject))["allowed"] is True
        assert (await decide(api, "new-1", genuine["token"]))["allowed"] is True
        assert (await decide(api, "late-forged"))["allowed"] is False
        receipt = await api.get(f"/v1/receipts/{late.event_id}")
        assert receipt.status_code == 404
    assert await journaled(db, OLD) == len(OLD)
    assert await journaled(db, ["late-forged"]) == 0
    assert await refusals(db, settings.topic) == {(late.partition, late.offset): UNAUTHENTICATED}
    # the old records have no MAC to keep; the genuine one keeps its own
    macs = await db.fetch("SELECT subject_id, record_mac FROM journal")
    assert {r["subject_id"] for r in macs if r["record_mac"] is None} == set(OLD)


async def test_after_losing_the_database_the_printed_cutoffs_are_recorded_again(
    settings: Settings, db: asyncpg.Connection, real_servers: Servers
) -> None:
    await produce_consents(settings, OLD, UNMACED)
    done = run_cli(settings, "require-record-macs", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    again = recorded_again(done.stdout)
    await produce_consents(settings, ["after-1"], lambda k, v, h: sealed(k, v, h))
    (forged,) = await produce_consents(settings, ["after-forged"], UNMACED)

    # the database is lost: a fresh one over the same topic, the cut-offs recorded again
    lost = await make_settings(real_servers)
    fresh = replace(lost, topic=settings.topic)
    redone = run_cli(fresh, "require-record-macs", *again)
    assert redone.returncode == 0, redone.stdout + redone.stderr
    conn = await asyncpg.connect(fresh.database_url)
    try:
        assert await mac_cutoffs.load(conn, fresh.topic) == await mac_cutoffs.load(
            db, settings.topic
        )
        async with running_projector(fresh):
            await wait_until(lambda: caught_up(fresh, conn), 60, "the replay")
        assert await journaled(conn, [*OLD, "after-1"]) == len(OLD) + 1
        assert await journaled(conn, ["after-forged"]) == 0
        assert await refusals(conn, fresh.topic) == {
            (forged.partition, forged.offset): UNAUTHENTICATED
        }
    finally:
        await conn.close()


def cli_without_terminal(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env={**os.environ, **settings.as_environment()},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


async def test_the_cutoff_never_moves_forward_unless_forced(
    settings: Settings, db: asyncpg.Connection
) -> None:
    await produce_consents(settings, [f"first-{n}" for n in range(12)], UNMACED)
    first = await highwaters(settings.kafka, settings.topic)
    assert run_cli(settings, "require-record-macs", "--yes").returncode == 0
    await produce_consents(settings, [f"later-{n}" for n in range(12)], UNMACED)
    later = await highwaters(settings.kafka, settings.topic)
    moved = [p for p in later if later[p] > first[p] > 0]
    assert moved, (first, later)
    p = moved[0]

    # run again: what was recorded stands, later records still need a MAC
    again = run_cli(settings, "require-record-macs", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"partition {p}: MACs required from offset {first[p]:,} (recorded before and kept" in (
        again.stdout
    )
    assert await mac_cutoffs.load(db, settings.topic) == first

    refused = [
        (("--yes", "--at", f"{p}={later[p] + 1}"), "beyond the end"),
        (("--yes", "--at", f"{p}=0", "--at", f"{p}=1"), "names a partition twice"),
        (("--yes", "--at", "99=0"), "not 99"),
        (("--yes", "--at", "x=0"), "PARTITION=OFFSET"),
    ]
    for args, why in refused:
        done = run_cli(settings, "require-record-macs", *args)
        assert done.returncode == 2 and why in done.stderr, done.stdout + done.stderr
    no_terminal = cli_without_terminal(settings, "require-record-macs")
    assert no_terminal.returncode == 2 and "--yes" in no_terminal.stderr
    assert await mac_cutoffs.load(db, settings.topic) == first

    # declined at the prompt: nothing recorded
    declined = await require_record_macs(
        settings, db, CutoffOptions(force=True), lambda changes: False
    )
    assert not declined.written and any(c.writes for c in declined.changes)
    assert await mac_cutoffs.load(db, settings.topic) == first

    # explicitly back (stricter), then forward only with --force
    back = run_cli(settings, "require-record-macs", "--yes", "--at", f"{p}=0")
    assert back.returncode == 0 and f"(moved back from {first[p]:,})" in back.stdout
    forced = run_cli(settings, "require-record-macs", "--yes", "--force")
    assert forced.returncode == 0 and "(moved forward from 0)" in forced.stdout
    assert await mac_cutoffs.load(db, settings.topic) == later
