"""The scenarios measured by our own client rather than wrk: the end-to-end time from a
command's acknowledgement to a decision that reflects it, at a fixed command rate, and the
batch decision with its B-bulk baseline.

End to end is not one request's latency: it is the time from the 201 of a grant to the answer
of `GET /v1/decision?...&min_token=<the grant's token>`, which the API gives only once the
projection has applied the grant. Commands are started on a fixed schedule (open loop: a slow
answer does not slow the schedule), each for a new subject, and the decision must say
`allowed: true`, or the command counts as wrong.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field

import asyncpg

from bench.http_client import Connection, Pool

GRANT = json.dumps({"purpose": "newsletter", "channel": "email"}).encode()
BULK = (
    "SELECT subject_id, kind, scope_a, scope_b, event_type, event_id, log_partition, log_offset,"
    " occurred_at, until, outcome, notice_version FROM subject_facts WHERE subject_id = ANY($1)"
)


@dataclass(slots=True)
class EndToEnd:
    offered_rate: float
    achieved_rate: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    wrong: int = 0
    #: cores each process used during the run (the client, the API, the projector)
    cores: dict[str, float] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by the nearest-rank method."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


async def end_to_end(
    base_url: str, admin_key: str, rate: int, seconds: float, tag: str, connections: int = 256
) -> EndToEnd:
    auth = {"Authorization": f"Bearer {admin_key}"}
    post_headers = {**auth, "Content-Type": "application/json"}
    result = EndToEnd(float(rate))
    pool = Pool(base_url, connections)

    async def one(n: int) -> None:
        subject = f"e2e-{tag}-{n}"
        async with pool.connection() as conn:
            status, answer = await conn.request(
                "POST", f"/v1/subjects/{subject}/consents", post_headers, GRANT
            )
            acknowledged = time.perf_counter()
            if status != 201:
                result.errors += 1
                return
            token = json.loads(answer)["token"]
            query = f"subject_id={subject}&purpose=newsletter&channel=email&min_token={token}"
            status, answer = await conn.request("GET", f"/v1/decision?{query}", auth)
            reflected = time.perf_counter()
        if status != 200:
            result.errors += 1
        elif json.loads(answer).get("allowed") is not True:
            result.wrong += 1
        else:
            result.latencies_ms.append((reflected - acknowledged) * 1000)

    total = max(1, round(rate * seconds))
    tasks = []
    start = time.perf_counter()
    try:
        for n in range(total):
            # pacing the open-loop schedule, not waiting for anything to happen
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        # bounded: an overloaded ledger may take long to work off the backlog, not for ever
        outcomes = await asyncio.wait_for(
            asyncio.gather(*tasks, return_exceptions=True), timeout=seconds * 10 + 300
        )
    finally:
        await pool.close()
    result.errors += sum(1 for o in outcomes if isinstance(o, BaseException))
    result.achieved_rate = len(result.latencies_ms) / (time.perf_counter() - start)
    return result


async def batch_rate(base_url: str, admin_key: str, subjects: list[str]) -> float:
    """Recipients per second of one POST /v1/decisions/batch, timed as the client sees it
    (JSON both ways included)."""
    body = json.dumps({"purpose": "newsletter", "channel": "email", "subjects": subjects})
    headers = {"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"}
    conn = await Connection.open(base_url)
    try:
        start = time.perf_counter()
        status, answer = await conn.request("POST", "/v1/decisions/batch", headers, body.encode())
        elapsed = time.perf_counter() - start
    finally:
        await conn.close()
    if status != 200:
        raise RuntimeError(f"batch decision answered {status}: {answer[:500]!r}")
    counts = json.loads(answer)["counts"]
    if counts["allowed"] + counts["denied"] != len(subjects):
        raise RuntimeError(f"batch decision counted {counts} for {len(subjects)} recipients")
    return len(subjects) / elapsed


async def bulk_rate(database_url: str, subjects: list[str]) -> float:
    """B-bulk: keys per second of one `SELECT ... WHERE subject_id = ANY($1)` of the same
    subjects' state rows (connection opened before the clock starts)."""
    conn = await asyncpg.connect(database_url)
    try:
        start = time.perf_counter()
        await conn.fetch(BULK, subjects)
        return len(subjects) / (time.perf_counter() - start)
    finally:
        await conn.close()
