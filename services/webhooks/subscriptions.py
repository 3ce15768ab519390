"""Creating a webhook subscription and rotating its secret, alike for the admin API
(services/api/webhooks.py) and the CLI (services/cli/webhooks_commands.py): the secret is made
here, sealed at once and answered only to be shown this once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from projections import webhook_subscriptions as stored
from services.identity import webhook_secrets
from services.identity.secrets import KeyRing
from services.webhooks.signing import new_secret


async def create(
    conn: asyncpg.Connection, master: KeyRing, values: dict[str, Any], created_by: str | None
) -> tuple[str, stored.SubscriptionRow]:
    """Store a checked subscription (services/rules/webhook_fields.py) with a new secret."""
    webhook_id, secret = uuid.uuid4(), new_secret()
    async with conn.transaction():
        await stored.insert_subscription(
            conn,
            webhook_id,
            values["url"],
            values["event_types"],
            values["description"],
            values["include_identifiers"],
            created_by,
        )
        await webhook_secrets.issue(conn, master, webhook_id, secret)
    row = await stored.get_subscription(conn, webhook_id)
    assert row is not None
    return secret, row


async def rotate(
    conn: asyncpg.Connection,
    master: KeyRing,
    webhook_id: uuid.UUID,
    *,
    retire_previous_now: bool = False,
) -> tuple[str, datetime] | None:
    """A new secret and when the previous ones stop signing; None for an unknown id (or one
    deleted while this ran)."""
    secret = new_secret()
    try:
        retires_at = await webhook_secrets.rotate(
            conn,
            master,
            webhook_id,
            secret,
            datetime.now(UTC),
            retire_previous_now=retire_previous_now,
        )
    except webhook_secrets.SubscriptionGone:
        return None
    return secret, retires_at
