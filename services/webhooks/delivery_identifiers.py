"""The identifiers a delivery with include_identifiers carries, decrypted at delivery time: the
subject's linked e-mail addresses and phone numbers, or for a SubjectErased event those its
erasure captured before the key was destroyed. None where the ledger no longer holds them (the
subject's key is shredded, the capture is gone): the delivery then says
`identifiers_withheld`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from uuid import UUID

import asyncpg

from projections import identifiers, offsets
from projections.webhook_queue import Due
from schemas.events import SUBJECT_ERASED
from services.identity.identities import IdentifierError, decrypt_identifier
from services.identity.keystore import DataKeys
from services.webhooks.erasure_capture import Identifier

log = logging.getLogger(__name__)

#: opens an erasure's captured identifiers by the SubjectErased event's id (None when there is
#: no capture: none was made, or it was forgotten)
OpenCapture = Callable[[UUID], Awaitable[list[Identifier] | None]]


class DeliveryIdentifiers:
    def __init__(
        self, pool: asyncpg.Pool, data_keys: DataKeys, topic: str, open_capture: OpenCapture
    ) -> None:
        self.pool = pool
        self.data_keys = data_keys
        self.topic = topic
        self.open_capture = open_capture

    async def projected(self, delivery: Due) -> bool:
        """The projector has applied the delivery's event: the identifiers read are those
        linked once the event was recorded, an IdentifierLinked's own address among them."""
        partition, offset = delivery.position
        stored = await offsets.load(self.pool, self.topic)
        return stored.get(partition, 0) > offset

    async def of(self, delivery: Due) -> list[Identifier] | None:
        """The identifiers to carry; None where the ledger withholds them: an erasure whose
        capture is not there (never made, forgotten once its deliveries settled, or past the
        retry window), or a subject erased since."""
        if delivery.event_type == SUBJECT_ERASED:
            return await self.open_capture(delivery.event_id)
        subject_id = delivery.subject_id
        key = await self.data_keys.existing(subject_id)
        if key is None:  # erased since: the addresses cannot be read, not absent
            return None
        out: list[Identifier] = []
        for row in await identifiers.linked_to(self.pool, subject_id):
            kind = row["identifier_type"]
            try:
                value = decrypt_identifier(key, subject_id, kind, bytes(row["ciphertext"]))
            except IdentifierError:
                log.warning("an identifier of a delivery's subject does not open with its key")
                continue
            out.append({"type": kind, "value": value})
        return out
