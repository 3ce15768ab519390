"""Consistency tokens: an opaque handle on a log position (partition, next offset).

A command's token is the position just after its event; a query's token is the position the
projection had reached when it answered. `min_token` waits until the projection is there.
A snapshot token names the projected position of every partition at once (a batch check).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Final

_SHAPE: Final = re.compile(r"c1\.(\d{1,6})\.(\d{1,19})")
_SNAPSHOT_SHAPE: Final = re.compile(r"s1((?:\.\d{1,19}){1,10000})")
#: a token's longest base64url text: `c1.` and 6 and 19 digits take 40 characters
MAX_TOKEN: Final = 40


class TokenError(ValueError):
    """The text is not a token this ledger issued."""


def encode_token(partition: int, position: int) -> str:
    raw = f"c1.{partition}.{position}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_token(token: str) -> tuple[int, int]:
    if len(token) > MAX_TOKEN:
        raise TokenError("not a consistency token issued by this ledger")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise TokenError("not a consistency token issued by this ledger") from None
    match = _SHAPE.fullmatch(raw)
    if match is None:
        raise TokenError("not a consistency token issued by this ledger")
    return int(match.group(1)), int(match.group(2))


def encode_snapshot_token(positions: Sequence[int]) -> str:
    """The next offset of partitions 0, 1, ... as one token: `s1.<p0>.<p1>...`, base64url."""
    raw = "s1" + "".join(f".{p}" for p in positions)
    return base64.urlsafe_b64encode(raw.encode("ascii")).decode("ascii").rstrip("=")


def decode_snapshot_token(token: str) -> list[int]:
    match = _SNAPSHOT_SHAPE.fullmatch(_unbase64(token))
    if match is None:
        raise TokenError("not a snapshot token issued by this ledger")
    return [int(p) for p in match.group(1)[1:].split(".")]


def token_positions(token: str) -> list[tuple[int, int]]:
    """(partition, position) pairs a token of either kind asks the projection to reach."""
    if _unbase64(token).startswith("s1."):
        return list(enumerate(decode_snapshot_token(token)))
    return [decode_token(token)]


def _unbase64(token: str) -> str:
    if len(token) > 200_000:
        raise TokenError("not a token issued by this ledger")
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise TokenError("not a token issued by this ledger") from None
