"""Opening sealed addresses: every row opens to its address in order, data keys of either
master key, and a large page is opened in sub-batches with the event loop free between them
(counted by a probe task's turns, not timed)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from services.identity.identities import encrypt_identifier
from services.identity.keystore import wrap
from services.identity.sealed_addresses import SUB_BATCH, open_addresses
from services.identity.secrets import KEY_BYTES, KeyRing

OLD = KeyRing({"k1": os.urandom(KEY_BYTES)}, "k1")
RING = KeyRing({"k1": OLD.keys["k1"], "k2": os.urandom(KEY_BYTES)}, "k2")


def sealed_rows(n: int, *, per_subject: int = 1) -> list[dict[str, Any]]:
    """n rows, `per_subject` addresses per subject, keys wrapped by either master key."""
    rows: list[dict[str, Any]] = []
    for i in range(0, n, per_subject):
        subject, data_key = f"s-{i}", os.urandom(KEY_BYTES)
        key_id, wrapped = wrap(OLD if i % 2 else RING, subject, data_key)
        for j in range(min(per_subject, n - i)):
            address = f"p{i}.{j}@example.com"
            ciphertext = encrypt_identifier(data_key, subject, "email", address)
            rows.append(
                {
                    "subject_id": subject,
                    "ciphertext": ciphertext,
                    "master_key_id": key_id,
                    "wrapped_key": wrapped,
                }
            )
    return rows


async def test_every_row_opens_to_its_address_in_the_order_given() -> None:
    rows = sealed_rows(7, per_subject=2)
    opened = await open_addresses(RING, "email", rows)
    expected = [(f"s-{i}", f"p{i}.{j}@example.com") for i in range(0, 7, 2) for j in range(2)]
    assert opened == expected[:7]


async def test_a_large_page_lets_the_loop_run_between_sub_batches() -> None:
    rows = sealed_rows(SUB_BATCH * 3 + 1)
    turns = 0
    stop = asyncio.Event()

    async def probe() -> None:
        nonlocal turns
        while not stop.is_set():
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(probe())
    await asyncio.sleep(0)  # the probe starts
    before = turns
    opened = await open_addresses(RING, "email", rows)
    during = turns - before
    stop.set()
    await task
    assert len(opened) == len(rows)
    # one turn of the probe per pause: after each of the first three sub-batches
    assert during >= 3


async def test_one_sub_batch_does_not_pause() -> None:
    turns = 0

    async def probe() -> None:
        nonlocal turns
        turns += 1

    rows = sealed_rows(SUB_BATCH)
    task = asyncio.create_task(probe())
    await open_addresses(RING, "email", rows)
    assert turns == 0  # never yielded: the probe has not run yet
    await task
