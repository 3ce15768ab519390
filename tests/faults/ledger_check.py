"""The end of every fault test: the log against the client's tally, the journal against the log,
and every projection against a clean replay of the log into a fresh database."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import asyncpg

from services.config import Settings
from tests.conftest import wait_until
from tests.faults.log_audit import LoggedEvent, audit, distinct_event_ids, read_log
from tests.faults.workload import Tally
from tests.integration.replay import caught_up, clean_replay, snapshot
from tests.servers import Servers


async def wait_caught_up(settings: Settings, timeout_s: float = 120) -> None:
    """Until the stored offsets reach the log's high-water marks."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        await wait_until(lambda: caught_up(settings, conn), timeout_s, "the projection")
    finally:
        await conn.close()


def differences(live: dict[str, list[Any]], clean: dict[str, list[Any]]) -> list[str]:
    """Per table, the rows only one side has (a few of them), for a readable failure."""
    out = []
    for table in sorted(set(live) | set(clean)):
        mine, theirs = live.get(table, []), clean.get(table, [])
        if mine == theirs:
            continue
        only_live = [r for r in mine if r not in theirs]
        only_clean = [r for r in theirs if r not in mine]
        out.append(
            f"{table}: {len(mine)} rows, clean replay {len(theirs)};"
            f" only here {only_live[:2]}; only in the replay {only_clean[:2]}"
        )
    return out


async def projection_findings(
    servers: Servers, settings: Settings, logged_ids: Collection[str]
) -> list[str]:
    """The journal holds each logged event once, and every table equals a clean replay."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        journal = [str(r["event_id"]) for r in await conn.fetch("SELECT event_id FROM journal")]
        live = await snapshot(conn)
    finally:
        await conn.close()
    findings = []
    if sorted(journal) != sorted(logged_ids):
        missing = sorted(set(logged_ids) - set(journal))
        extra = sorted(set(journal) - set(logged_ids))
        findings.append(
            f"journal has {len(journal)} events, the log {len(logged_ids)} distinct:"
            f" missing {missing[:5]}, not in the log {extra[:5]}"
        )
    findings += differences(live, await clean_replay(servers, settings))
    return findings


async def check_ledger(
    servers: Servers, settings: Settings, tally: Tally, seed: int
) -> list[LoggedEvent]:
    """Everything the client was told holds in the log, and the projections follow the log;
    returns the log for a test's own further checks."""
    await wait_caught_up(settings)
    logged = await read_log(settings.kafka, settings.topic)
    ids = distinct_event_ids(logged)
    findings = [*tally.unexpected, *audit(tally.sent, tally.acked, logged)]
    # the ledger recovers: a client that kept retrying was answered before its deadline
    unanswered = [k for k, c in tally.sent.items() if not c.abandon and k not in tally.acked]
    if unanswered:
        findings.append(f"{len(unanswered)} commands retried in vain, e.g. {unanswered[:5]}")
    findings += await projection_findings(servers, settings, ids)
    summary = (
        f"seed {seed}: {len(tally.sent)} commands, {len(tally.acked)} acknowledged,"
        f" {tally.unavailable} answers 503, {tally.dropped} dropped connections,"
        f" {len(logged)} records with {len(ids)} distinct events"
    )
    assert not findings, summary + "\n" + "\n".join(findings[:40])
    print(summary)
    return logged
