"""Opening the sealed addresses an audience or the suppression list lets out: each row holds
the address's ciphertext and its subject's data key wrapped by the master key ring."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.identity.identities import decrypt_identifier
from services.identity.keystore import unwrap
from services.identity.secrets import KeyRing


def open_addresses(
    master: KeyRing, identifier_type: str, rows: Iterable[Any]
) -> list[tuple[str, str]]:
    """(subject id, address) of rows with `subject_id`, `ciphertext`, `master_key_id` and
    `wrapped_key` (asyncpg records), in the order given; each data key is unwrapped once."""
    keys: dict[str, bytes] = {}
    out: list[tuple[str, str]] = []
    for row in rows:
        subject_id = row["subject_id"]
        key = keys.get(subject_id)
        if key is None:
            key = unwrap(master, subject_id, row["master_key_id"], bytes(row["wrapped_key"]))
            keys[subject_id] = key
        address = decrypt_identifier(key, subject_id, identifier_type, bytes(row["ciphertext"]))
        out.append((subject_id, address))
    return out
