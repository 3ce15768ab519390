"""Pages that are true when they answer: a page that recorded a change answers once the
projection has applied it (at most LEDGER_READ_WAIT_MS), so a decision asked right after gets
the new answer.

Design: docs/developers/design/double-opt-in.md
"""

from __future__ import annotations

from services.bootstrap import Ledger
from services.ledger.tokens import encode_token

Position = tuple[int, int]


def ledger_token(position: Position) -> str:
    """The consistency token just after `position`: a reader passing it as min_token sees the
    change at once."""
    partition, offset = position
    return encode_token(partition, offset + 1)


async def applied(ledger: Ledger, position: Position) -> bool:
    """Wait, at most the read wait, until the projection has applied the event at `position`;
    whether it has."""
    partition, offset = position
    return await ledger.progress.wait_for(
        partition, offset + 1, ledger.settings.read_wait_ms / 1000
    )
