"""Consistency tokens: an opaque handle on a log position (partition, next offset).

A command's token is the position just after its event; a query's token is the position the
projection had reached when it answered. `min_token` waits until the projection is there.
"""

from __future__ import annotations

import base64
import re
from typing import Final

_SHAPE: Final = re.compile(r"c1\.(\d{1,6})\.(\d{1,19})")


class TokenError(ValueError):
    """The text is not a token this ledger issued."""


def encode_token(partition: int, position: int) -> str:
    raw = f"c1.{partition}.{position}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_token(token: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise TokenError("not a consistency token issued by this ledger") from None
    match = _SHAPE.fullmatch(raw)
    if match is None:
        raise TokenError("not a consistency token issued by this ledger")
    return int(match.group(1)), int(match.group(2))
