"""An event's `context` as the log carries it: the client's network and user agent encrypted
under the subject's data key (AES-GCM, bound to the subject and the field), everything else
in clear. Erasing the subject destroys the key, and with it those two fields in every copy of
the log, backups included (docs/security/personal-data.md).

Design: docs/developers/design/event-context.md
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.events import CONTEXT_FIELDS, PERSONAL_CONTEXT_FIELDS, Context

_CIPHER_VERSION: Final = b"\x01"
_NONCE_BYTES: Final = 12
#: what `open_context` lists in `unreadable`: fields held only as ciphertext no key opens
UNREADABLE: Final = "unreadable"


def _aad(subject_id: str, field: str) -> bytes:
    return f"ledger-context|{subject_id}|{field}".encode()


def _seal(data_key: bytes, subject_id: str, field: str, value: str | None) -> bytes | None:
    if value is None:
        return None
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(data_key).encrypt(nonce, value.encode(), _aad(subject_id, field))
    return _CIPHER_VERSION + nonce + sealed


def _open(data_key: bytes, subject_id: str, field: str, ciphertext: bytes) -> str | None:
    if ciphertext[:1] != _CIPHER_VERSION:
        return None
    nonce, sealed = ciphertext[1 : 1 + _NONCE_BYTES], ciphertext[1 + _NONCE_BYTES :]
    try:
        return AESGCM(data_key).decrypt(nonce, sealed, _aad(subject_id, field)).decode()
    except (InvalidTag, UnicodeDecodeError):
        return None


def _bytes(value: object) -> bytes | None:
    """A ciphertext from a decoded event (bytes) or from a journal payload (base64 text)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            return None
    return None


def has_personal_fields(context: Context) -> bool:
    return context.client_address is not None or context.user_agent is not None


def seal_context(context: Context, subject_id: str, data_key: bytes | None) -> dict[str, Any]:
    """The Avro record of `context` (schemas/avro/*: `Context`). Without a key (an erased
    subject) the personal fields are dropped, never stored in clear."""
    record: dict[str, Any] = {
        "client_address": None,
        "user_agent": None,
        "page": context.page,
        "page_version": context.page_version,
        "language": context.language,
        "one_click": context.one_click,
        "captured": list(context.captured),
        "asserted": list(context.asserted),
    }
    if data_key is not None:
        for field in PERSONAL_CONTEXT_FIELDS:
            record[field] = _seal(data_key, subject_id, field, getattr(context, field))
    return record


def open_context(
    record: Mapping[str, Any] | None, subject_id: str, data_key: bytes | None
) -> dict[str, Any] | None:
    """The context as history, exports, receipts and the auditor's page show it: the personal
    fields decrypted while the subject's key exists; a field whose ciphertext no key opens any
    more (the subject was erased) is null and named in `unreadable`."""
    if record is None:
        return None
    shown: dict[str, Any] = {name: record.get(name) for name in CONTEXT_FIELDS}
    shown["one_click"] = bool(record.get("one_click"))
    shown["captured"] = list(record.get("captured") or [])
    shown["asserted"] = list(record.get("asserted") or [])
    unreadable = []
    for field in PERSONAL_CONTEXT_FIELDS:
        ciphertext = record.get(field)
        if ciphertext is None:
            continue
        value = None
        raw = _bytes(ciphertext)
        if data_key is not None and raw is not None:
            value = _open(data_key, subject_id, field, raw)
        shown[field] = value
        if value is None:
            unreadable.append(field)
    shown[UNREADABLE] = unreadable
    return shown


#: opens a stored context (decoded or from a journal payload) for showing
ContextOpener = Callable[[Mapping[str, Any] | None], dict[str, Any] | None]


def context_opener(subject_id: str, data_key: bytes | None) -> ContextOpener:
    """`open_context` for one subject and its key (None: erased, or never had one)."""

    def opener(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return open_context(record, subject_id, data_key)

    return opener
