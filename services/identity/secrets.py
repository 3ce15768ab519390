"""The ledger's secrets: key rings for data-key wrapping, link tokens, receipt signatures
(Ed25519 seeds) and the MACs on every record the ledger writes to Kafka; the blind-index key
and the key that API key hashes are computed under.

A key ring is written `kid:base64url-key[,kid:base64url-key...]`; the first key is current (it
wraps or signs new material), every listed key still opens old material, so a key is rotated by
putting a new one first and dropping the old one once nothing needs it. Secrets come from the
environment or from a TOML file (LEDGER_SECRETS_FILE); the environment wins per entry.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import secrets as random
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

KEY_BYTES: Final = 32
_KID_RE: Final = re.compile(r"[a-z0-9]{1,16}")

#: environment variable -> key in the secrets file
SECRET_VARIABLES: Final = {
    "LEDGER_MASTER_KEYS": "master_keys",
    "LEDGER_BLIND_INDEX_KEY": "blind_index_key",
    "LEDGER_LINK_KEYS": "link_keys",
    "LEDGER_RECEIPT_KEYS": "receipt_keys",
    "LEDGER_WRITER_KEYS": "writer_keys",
    "LEDGER_API_KEY_HASH_KEY": "api_key_hash_key",
}

WRITER_KEYS: Final = "LEDGER_WRITER_KEYS"

#: file keys introduced after the first secrets files were written, with the key id of the
#: first key of a ring (None: a single key): `up` and `init --generate-secrets` add a fresh
#: one to a file that lacks it (nothing used it yet)
ADDED_LATER: Final[dict[str, str | None]] = {
    "receipt_keys": "r1",
    "writer_keys": "w1",
    "api_key_hash_key": None,
}


class SecretsError(ValueError):
    """A secret is missing or malformed; the message names the variable, never the value."""


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Named 32-byte keys; `current_id` encrypts, every key decrypts."""

    keys: Mapping[str, bytes]
    current_id: str

    @property
    def current(self) -> bytes:
        return self.keys[self.current_id]

    def __repr__(self) -> str:
        return f"KeyRing(ids={list(self.keys)}, current={self.current_id!r})"


@dataclass(frozen=True, slots=True)
class Secrets:
    master: KeyRing
    blind_index_key: bytes
    links: KeyRing
    #: Ed25519 private seeds signing consent receipts (services/proof/receipt_signing.py)
    receipts: KeyRing
    #: HMAC-SHA-256 keys of the MAC header on every record the ledger produces
    writers: KeyRing
    #: HMAC-SHA-256 key API key hashes are computed under, so a stolen table cannot be
    #: searched offline without it
    api_key_hash_key: bytes

    def __repr__(self) -> str:
        return (
            f"Secrets(master={self.master!r}, links={self.links!r}, receipts={self.receipts!r},"
            f" writers={self.writers!r})"
        )


def new_key() -> str:
    return base64.urlsafe_b64encode(random.token_bytes(KEY_BYTES)).decode("ascii").rstrip("=")


def _key(name: str, text: str) -> bytes:
    try:
        padded = text.strip() + "=" * (-len(text.strip()) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
    except ValueError:
        raise SecretsError(f"{name}: a key is not base64url") from None
    if len(raw) != KEY_BYTES:
        raise SecretsError(f"{name}: a key must be {KEY_BYTES} bytes, not {len(raw)}")
    return raw


def parse_key_ring(name: str, text: str) -> KeyRing:
    keys: dict[str, bytes] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        kid, sep, value = entry.partition(":")
        if not sep or not _KID_RE.fullmatch(kid):
            raise SecretsError(f"{name}: write each key as kid:base64url-key, kid [a-z0-9]{{1,16}}")
        if kid in keys:
            raise SecretsError(f"{name}: key id {kid!r} appears twice")
        keys[kid] = _key(name, value)
    if not keys:
        raise SecretsError(f"{name} is empty")
    return KeyRing(keys, next(iter(keys)))


def _from_file(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        mode = path.stat().st_mode
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SecretsError(f"LEDGER_SECRETS_FILE={str(path)!r} unreadable: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "LEDGER_SECRETS_FILE=%r is readable by other users (mode %o): chmod 600 it",
            str(path),
            stat.S_IMODE(mode),
        )
    out = {}
    for var, key in SECRET_VARIABLES.items():
        value = data.get(key)
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if value is not None:
            out[var] = str(value)
    return out


def load_secrets(env: Mapping[str, str] | None = None) -> Secrets:
    """Secrets from the environment, falling back to the file LEDGER_SECRETS_FILE names."""
    source = os.environ if env is None else env
    values: dict[str, str] = {}
    if source.get("LEDGER_SECRETS_FILE", "").strip():
        values.update(_from_file(Path(source["LEDGER_SECRETS_FILE"].strip())))
    values.update({v: source[v] for v in SECRET_VARIABLES if source.get(v, "").strip()})
    missing = [v for v in SECRET_VARIABLES if not values.get(v)]
    if missing:
        raise SecretsError(
            f"set {', '.join(missing)} or LEDGER_SECRETS_FILE"
            " (`consent-ledger secrets generate` writes one)"
        )
    return Secrets(
        master=parse_key_ring("LEDGER_MASTER_KEYS", values["LEDGER_MASTER_KEYS"]),
        blind_index_key=_key("LEDGER_BLIND_INDEX_KEY", values["LEDGER_BLIND_INDEX_KEY"]),
        links=parse_key_ring("LEDGER_LINK_KEYS", values["LEDGER_LINK_KEYS"]),
        receipts=parse_key_ring("LEDGER_RECEIPT_KEYS", values["LEDGER_RECEIPT_KEYS"]),
        writers=parse_key_ring("LEDGER_WRITER_KEYS", values["LEDGER_WRITER_KEYS"]),
        api_key_hash_key=_key("LEDGER_API_KEY_HASH_KEY", values["LEDGER_API_KEY_HASH_KEY"]),
    )


def load_writer_keys(env: Mapping[str, str] | None = None) -> KeyRing:
    """Only the writer keys, from the environment or LEDGER_SECRETS_FILE: a process that MACs
    and checks records but holds no personal data (the projector) needs no other secret, so
    its secrets file may hold only `writer_keys` (`writer_keys_file`)."""
    source = os.environ if env is None else env
    value = source.get(WRITER_KEYS, "").strip()
    if not value and source.get("LEDGER_SECRETS_FILE", "").strip():
        value = _from_file(Path(source["LEDGER_SECRETS_FILE"].strip())).get(WRITER_KEYS, "")
    if not value:
        raise SecretsError(
            f"set {WRITER_KEYS} or LEDGER_SECRETS_FILE (a file with writer_keys is enough)"
        )
    return parse_key_ring(WRITER_KEYS, value)


def writer_keys_file(ring: KeyRing) -> str:
    """A secrets file holding only the writer keys (TOML), for the projector."""
    keys = ", ".join(
        f'"{kid}:{base64.urlsafe_b64encode(key).decode("ascii").rstrip("=")}"'
        for kid, key in ring.keys.items()
    )
    return (
        "# consent-ledger writer keys only (the MACs on Kafka records), written by\n"
        "# `consent-ledger init --writer-keys-file`: never commit this file.\n"
        f"writer_keys = [{keys}]\n"
    )


def write_writer_keys_file(path: Path, ring: KeyRing) -> None:
    """Write (or replace, atomically) `writer_keys_file` at `path`, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{random.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(writer_keys_file(ring))
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def generate_secrets_file() -> str:
    """A fresh secrets file (TOML); keep it readable by the ledger's user only."""
    return (
        "# consent-ledger secrets: never commit this file; back it up with the database.\n"
        "# Rotation: put a new key first in a list, run `consent-ledger rewrap-keys` for\n"
        "# master_keys, keep old link keys until the links they signed have expired, keep\n"
        "# old receipt keys for as long as their receipts must verify, old writer keys for as\n"
        "# long as the log holds records they MACed (for good, unless it is rewritten).\n"
        f'master_keys = ["m1:{new_key()}"]\n'
        f'blind_index_key = "{new_key()}"\n'
        f'link_keys = ["l1:{new_key()}"]\n'
        f'receipt_keys = ["r1:{new_key()}"]\n'
        f'writer_keys = ["w1:{new_key()}"]\n'
        f'api_key_hash_key = "{new_key()}"\n'
    )


def ensure_secrets_file(path: Path) -> bool:
    """Write a fresh secrets file at `path` (mode 0600) unless one exists; True if written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(generate_secrets_file())
    return True


def complete_secrets_file(path: Path) -> list[str]:
    """Add a fresh key (ring) to an existing secrets file for each of ADDED_LATER it lacks (a
    file written before that key existed); returns the keys added. Other keys are never
    made up: a missing master or blind-index key stays an error."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SecretsError(f"LEDGER_SECRETS_FILE={str(path)!r} unreadable: {exc}") from None
    added = [key for key in ADDED_LATER if key not in data]
    if added:
        with path.open("a", encoding="utf-8") as out:
            if text and not text.endswith("\n"):
                out.write("\n")
            for key in added:
                kid = ADDED_LATER[key]
                value = f'"{new_key()}"' if kid is None else f'["{kid}:{new_key()}"]'
                out.write(f"{key} = {value}\n")
    return added
