"""How many recipients per second POST /v1/decisions/batch answers, against running servers.

    LEDGER_KEY=$(cat .ledger/admin.key) LEDGER_SECRETS_FILE=.ledger/secrets.toml \\
        .venv/bin/python bench/batch_probe.py \\
        --url http://127.0.0.1:8000 --seed-bootstrap 127.0.0.1:<broker port> \\
        [--topic consent.events] [--recipients 100000]

With --seed-bootstrap, it first writes a realistic mix of histories for `bench-<n>` straight to
the event topic (newsletter grants, withdrawals, objections, relationships, unrelated
consents; 15% of subjects have none) and waits for the projection through `min_tokens`. Use a
throwaway ledger (e.g. LEDGER_DATA_DIR=/tmp/bench consent-ledger up): the seed stays in it.
Then it times whole requests, as a client sees them (JSON both ways included), and prints a
table beside the issue's target. The e-mail case uses addresses linked to nobody: it measures
normalisation, blind index and look-up, which linked addresses pay the same.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx

from schemas.codec import default_codec, kafka_headers
from schemas.events import Event, grant_data
from schemas.record_mac import EVENTS
from services.config import Settings
from services.kafka_access import KafkaAccess
from services.ledger.kafka_clients import new_producer
from services.ledger.record_producer import writer_macs
from services.ledger.tokens import encode_token

TARGET = 100_000  # recipients per second, the aim


def history(rnd: random.Random) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    roll = rnd.random()
    grant = ("ConsentGranted", grant_data("newsletter", "email"))
    if roll < 0.70:
        out.append(grant)
    elif roll < 0.80:
        out += [grant, ("ConsentWithdrawn", {"purpose": None, "channel": None, "reason": None})]
    elif roll < 0.85:
        out += [grant, ("DirectMarketingObjected", {"channel": None})]
    if rnd.random() < 0.5:
        out.append(
            ("RelationshipRecorded", {"basis": "contract", "purposes": [], "valid_until": None})
        )
    if rnd.random() < 0.3:
        out.append(
            (
                "ConsentGranted",
                grant_data("marketing_partners", "sms"),
            )
        )
    return out


async def seed(kafka: KafkaAccess, topic: str, count: int) -> list[str]:
    """Write the histories, MACed under the ledger's writer keys (LEDGER_SECRETS_FILE or
    LEDGER_WRITER_KEYS, as the running ledger has them); returns min_tokens for the end of
    every partition written."""
    rnd, codec, now = random.Random(1), default_codec(), datetime.now(UTC)
    macs = writer_macs(Settings.from_env().writer_key_ring())
    producer = new_producer(kafka, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for n in range(count):
            for kind, data in history(rnd):
                event = Event(kind, uuid.uuid4(), f"bench-{n}", now, now, data=data)
                key, value = event.subject_id.encode(), codec.encode(event)
                futures.append(
                    await producer.send(
                        topic,
                        key=key,
                        value=value,
                        headers=macs.seal(EVENTS, key, value, kafka_headers(event)),
                    )
                )
        ends: dict[int, int] = {}
        for meta in await asyncio.gather(*futures):
            ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    finally:
        await producer.stop()
    print(f"seeded {len(futures)} events for {count} subjects", file=sys.stderr)
    return [encode_token(p, end) for p, end in sorted(ends.items())]


async def timed(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    response = await client.post("/v1/decisions/batch", json=body)
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed, response.json()


async def projected(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    """Ask with min_tokens until the projection has applied the seed (each ask waits up to
    LEDGER_READ_WAIT_MS, then answers 503)."""
    deadline = time.monotonic() + 600
    while (await client.post("/v1/decisions/batch", json=body)).status_code == 503:
        if time.monotonic() > deadline:
            raise SystemExit("the projection did not apply the seed within 10 minutes")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--seed-bootstrap", help="broker to write the seed histories to")
    parser.add_argument("--topic", default="consent.events")
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="best of this many requests")
    parser.add_argument(
        "--key",
        default=os.environ.get("LEDGER_KEY", ""),
        help="API key with the decide scope (default: $LEDGER_KEY)",
    )
    args = parser.parse_args()
    n = args.recipients
    tokens: list[str] = []
    if args.seed_bootstrap:
        # the KAFKA_* security settings of the environment apply to the seed's producer too
        kafka = replace(Settings.from_env().kafka, bootstrap_servers=args.seed_bootstrap)
        tokens = await seed(kafka, args.topic, n)
    base = {"purpose": "newsletter", "channel": "email"}
    subjects = [f"bench-{i}" for i in range(n)]
    cases = {
        "subjects": {**base, "subjects": subjects},
        "subjects + evidence": {**base, "subjects": subjects, "campaign_id": "bench"},
        "emails": {**base, "emails": [f"Bench.{i}@Example{i % 50}.org" for i in range(n)]},
    }
    rows = []
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    async with httpx.AsyncClient(base_url=args.url, timeout=120, headers=headers) as client:
        if tokens:  # wait for the projection once, then time requests that do not wait
            await projected(client, {**base, "subjects": subjects[:1], "min_tokens": tokens})
        for name, body in cases.items():
            best, answer = min([await timed(client, body) for _ in range(args.runs)], key=_first)
            rows.append((name, answer["counts"]["allowed"], best))
    print(f"{'case':<22}{'recipients':>11}{'allowed':>9}{'seconds':>9}{'recipients/s':>14}  target")
    for name, allowed, seconds in rows:
        rate = n / seconds
        print(f"{name:<22}{n:>11}{allowed:>9}{seconds:>9.3f}{rate:>14,.0f}  {TARGET:,}/s")
    return 0


def _first(pair: tuple[float, Any]) -> float:
    return pair[0]


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
