"""Opening the sealed addresses an audience or the suppression list lets out: each row holds
the address's ciphertext and its subject's data key wrapped by the master key ring.

Opening costs about 14 µs a row (unwrap the data key, decrypt the address), so a chunk of
5,000 would hold the event loop ~70 ms: rows are opened SUB_BATCH at a time, and the loop runs
other tasks between sub-batches."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final

from services.identity.identities import decrypt_identifier
from services.identity.keystore import unwrap
from services.identity.secrets import KeyRing

#: rows opened between two yields to the event loop (a few milliseconds of work)
SUB_BATCH: Final = 500


async def open_addresses(
    master: KeyRing, identifier_type: str, rows: Sequence[Any]
) -> list[tuple[str, str]]:
    """(subject id, address) of rows with `subject_id`, `ciphertext`, `master_key_id` and
    `wrapped_key` (asyncpg records), in the order given; each data key is unwrapped once."""
    keys: dict[str, bytes] = {}
    out: list[tuple[str, str]] = []
    for start in range(0, len(rows), SUB_BATCH):
        if start:
            await asyncio.sleep(0)  # let the loop serve others between sub-batches
        for row in rows[start : start + SUB_BATCH]:
            subject_id = row["subject_id"]
            key = keys.get(subject_id)
            if key is None:
                wrapped = bytes(row["wrapped_key"])
                key = unwrap(master, subject_id, row["master_key_id"], wrapped)
                keys[subject_id] = key
            ciphertext = bytes(row["ciphertext"])
            out.append(
                (subject_id, decrypt_identifier(key, subject_id, identifier_type, ciphertext))
            )
    return out
