"""The MAC header on every record the ledger produces (pure): who wrote a record, checked by
the projector before it decodes one, so a record produced without a writer key is never applied.

Design: docs/developers/design/record-macs.md
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Final

MAC_HEADER: Final = "ledger_mac"
VERSION: Final = b"v1"
DOMAIN: Final = b"consent-ledger record MAC v1\x00"

#: the topics the ledger writes, by role (a topic's name is a setting; its role is not)
EVENTS: Final = "events"
CHECKS: Final = "checks"
STATE: Final = "state"
CHECKPOINTS: Final = "checkpoints"
DEAD_LETTERS: Final = "dead-letters"
ROLES: Final = (EVENTS, CHECKS, STATE, CHECKPOINTS, DEAD_LETTERS)

MAC_BYTES: Final = 32
_MAC_TEXT: Final = 43  # unpadded base64url of 32 bytes
_HEADER_RE: Final = re.compile(rb"v1:([a-z0-9]{1,16}):([A-Za-z0-9_-]{43})")
_NULL: Final = b"\xff\xff\xff\xff"

Header = tuple[str, bytes | None]


class Verdict(enum.Enum):
    """What `RecordMacs.verify` found; every verdict but VALID refuses the record."""

    VALID = "a valid MAC"
    MISSING = "no MAC header"
    MALFORMED = "a MAC header that is not v1:<key id>:<43 base64url characters>, or two of them"
    UNKNOWN_KEY = "a MAC under a key id that is not among the writer keys"
    WRONG = "a MAC that does not match the record"


def _field(data: bytes | None) -> bytes:
    return _NULL if data is None else len(data).to_bytes(4, "big") + data


def _name(name: str) -> bytes:
    return name.encode("utf-8", "surrogatepass")


def mac_input(
    role: str, key: bytes | None, value: bytes | None, headers: Sequence[Header]
) -> bytes:
    """What the MAC covers, after the domain tag (headers without the MAC header)."""
    parts = [
        _field(role.encode("ascii")),
        _field(key),
        _field(value),
        len(headers).to_bytes(4, "big"),
    ]
    for name, raw in headers:
        parts.append(_field(_name(name)))
        parts.append(_field(raw))
    return b"".join(parts)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"record role {role!r} is not one of {', '.join(ROLES)}")


def parse_header(raw: bytes | None) -> tuple[str, bytes] | None:
    """(key id, MAC) of a header value in the canonical form; None for anything else."""
    if raw is None:
        return None
    found = _HEADER_RE.fullmatch(raw)
    if found is None:
        return None
    text = found.group(2)
    try:
        mac = base64.urlsafe_b64decode(text + b"=")
    except (binascii.Error, ValueError):
        return None
    if len(mac) != MAC_BYTES or base64.urlsafe_b64encode(mac)[:_MAC_TEXT] != text:
        return None  # not canonical: the two spare bits of the last character are set
    return found.group(1).decode("ascii"), mac


class RecordMacs:
    """A writer key ring as MACs: `header` MACs under the current key, `verify` accepts any key
    of the ring. Each key's HMAC state after the domain tag is computed once and copied."""

    __slots__ = ("_started", "current_id")

    def __init__(self, keys: Mapping[str, bytes], current_id: str) -> None:
        if current_id not in keys:
            raise ValueError(f"current writer key id {current_id!r} is not in the ring")
        self._started = {kid: hmac.new(key, DOMAIN, hashlib.sha256) for kid, key in keys.items()}
        self.current_id = current_id

    def __repr__(self) -> str:
        return f"RecordMacs(ids={list(self._started)}, current={self.current_id!r})"

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of the ring's keys, in its order: what `verify` accepts (never the keys)."""
        return tuple(self._started)

    def _mac(
        self,
        kid: str,
        role: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header],
    ) -> bytes:
        mac = self._started[kid].copy()
        mac.update(mac_input(role, key, value, headers))
        return mac.digest()

    def header(
        self, role: str, key: bytes | None, value: bytes | None, headers: Sequence[Header]
    ) -> tuple[str, bytes]:
        """The MAC header for a record of `role` with these key, value and (other) headers."""
        _check_role(role)
        mac = self._mac(self.current_id, role, key, value, headers)
        text = base64.urlsafe_b64encode(mac).rstrip(b"=")
        return MAC_HEADER, b"v1:" + self.current_id.encode("ascii") + b":" + text

    def seal(
        self, role: str, key: bytes | None, value: bytes | None, headers: Sequence[Header]
    ) -> list[Header]:
        """The headers with the MAC header appended (any MAC header given is dropped first)."""
        kept = [h for h in headers if h[0] != MAC_HEADER]
        return [*kept, self.header(role, key, value, kept)]

    def verify(
        self, role: str, key: bytes | None, value: bytes | None, headers: Sequence[Header] | None
    ) -> Verdict:
        """Whether the record carries exactly one MAC header that a key of the ring made over
        its role, key, value and other headers; compared in constant time."""
        _check_role(role)
        found: list[bytes | None] = []
        others: list[Header] = []
        for name, raw in headers or ():
            if name == MAC_HEADER:
                found.append(raw)
            else:
                others.append((name, raw))
        if not found:
            return Verdict.MISSING
        parsed = parse_header(found[0]) if len(found) == 1 else None
        if parsed is None:
            return Verdict.MALFORMED
        kid, given = parsed
        if kid not in self._started:
            return Verdict.UNKNOWN_KEY
        expected = self._mac(kid, role, key, value, others)
        return Verdict.VALID if hmac.compare_digest(expected, given) else Verdict.WRONG


def mac_text(headers: Sequence[Header] | None) -> str | None:
    """The MAC header's value as text, for a record `verify` found VALID (stored with it, so
    the record can be produced again as it was)."""
    for name, raw in headers or ():
        if name == MAC_HEADER and raw is not None:
            return raw.decode("ascii", "replace")
    return None


def encode_headers(headers: Sequence[Header] | None) -> bytes:
    """Headers as bytes to store (rejected records): the count, then each name and value
    length-prefixed, as in the MAC input."""
    listed = list(headers or ())
    parts = [len(listed).to_bytes(4, "big")]
    for name, raw in listed:
        parts.append(_field(_name(name)))
        parts.append(_field(raw))
    return b"".join(parts)


def decode_headers(data: bytes) -> tuple[Header, ...]:
    """The headers `encode_headers` stored; ValueError for anything else."""
    view = memoryview(data)
    at = 0

    def take() -> bytes | None:
        nonlocal at
        if at + 4 > len(view):
            raise ValueError("stored headers end inside a length")
        size = bytes(view[at : at + 4])
        at += 4
        if size == _NULL:
            return None
        n = int.from_bytes(size, "big")
        if at + n > len(view):
            raise ValueError("stored headers end inside a field")
        chunk = bytes(view[at : at + n])
        at += n
        return chunk

    if len(view) < 4:
        raise ValueError("stored headers have no count")
    count = int.from_bytes(view[:4], "big")
    at = 4
    out: list[Header] = []
    for _ in range(count):
        name = take()
        if name is None:
            raise ValueError("a stored header has no name")
        out.append((name.decode("utf-8", "surrogatepass"), take()))
    if at != len(view):
        raise ValueError("stored headers have bytes after the last header")
    return tuple(out)
