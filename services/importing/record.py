"""Recording parsed rows: find or derive the subject, link the address, append the decision.

Every row is appended under an idempotency key made from its content (format, purpose, channel,
blind index, status, times), so running the same file again sends nothing. A batch is looked up,
claimed and sent as a whole; a subject's rows go in the order of their times.

The ledger orders a subject's facts by log position, not by `occurred_at`: an old export
appended after a newer decision would overrule it. So a row older than what the ledger (or
this run) already holds for the same subject, purpose and channel is skipped as superseded.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg

from projections import erasure, identifiers, subject_state
from projections.state import CONSENT, DM_OBJECTION
from schemas import events as ev
from schemas.events import Actor, Event, Source, rfc3339
from services.bootstrap import Ledger
from services.identity.identities import EMAIL, blind_index, derived_subject_id, encrypt_identifier
from services.importing.formats import BLOCKLISTED, SUBSCRIBED, UNSUBSCRIBED, ImportRow
from services.ledger import idempotency
from services.ledger.append import Keyed, append_many, refuse_unverifiable_writes
from services.ledger.errors import BrokerUnavailable, WriterKeyUnknown

ROUTE: Final = "import"
RECORDED: Final = "recorded"
ALREADY: Final = "already recorded"
SUPERSEDED: Final = "superseded"
SUPERSEDED_REASON: Final = (
    "superseded: the ledger already holds a later decision for this subject, purpose and channel"
)
SUPPRESSED: Final = "suppressed"
SUPPRESSED_REASON: Final = (
    "suppressed: the address belonged to an erased subject and stays on the suppression list;"
    " an import does not bring it back"
)


_DATABASE_ERRORS: Final = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class ImportStopped(Exception):
    """The log or the database failed, or a projector would dead-letter what the import writes;
    rows not yet acknowledged are recorded by a re-run."""


@dataclass(frozen=True, slots=True)
class Target:
    """What every row of one import is about."""

    format: str
    purpose: str
    channel: str

    @property
    def system(self) -> str:
        return f"import:{self.format}"


def event_time(row: ImportRow) -> datetime:
    """When the row's decision happened: the opt-in for a subscription, else the change."""
    moment = row.opted_in_at if row.status == SUBSCRIBED else row.changed_at
    assert moment is not None, "formats guarantee the time a status needs"
    return moment


def fact_kind(row: ImportRow) -> str:
    return DM_OBJECTION if row.status == BLOCKLISTED else CONSENT


def row_content(target: Target, index: bytes, row: ImportRow) -> dict[str, Any]:
    """What identifies a row across runs; the address only as its (keyed) blind index."""
    return {
        "format": target.format,
        "purpose": target.purpose,
        "channel": target.channel,
        "blind_index": index.hex(),
        "status": row.status,
        "opted_in_at": rfc3339(row.opted_in_at) if row.opted_in_at else None,
        "changed_at": rfc3339(row.changed_at) if row.changed_at else None,
    }


def row_key(content: Mapping[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return "import:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def decision_event(row: ImportRow, subject_id: str, target: Target, now: datetime) -> Event:
    """subscribed: ConsentGranted; unsubscribed: ConsentWithdrawn; blocklisted: an objection to
    direct marketing on the channel."""
    data: dict[str, Any]
    if row.status == SUBSCRIBED:
        kind = ev.CONSENT_GRANTED
        data = ev.grant_data(target.purpose, target.channel, evidence=confirmation(row, target))
    elif row.status == UNSUBSCRIBED:
        kind = ev.CONSENT_WITHDRAWN
        data = {"purpose": target.purpose, "channel": target.channel, "reason": None}
    else:
        kind, data = ev.DIRECT_MARKETING_OBJECTED, {"channel": target.channel}
    return _event(kind, subject_id, event_time(row), target, now, data)


def confirmation(row: ImportRow, target: Target) -> str | None:
    """What the source says of a double opt-in, kept as evidence: the ledger did not see the
    confirmation, so the grant's method stays `import` (only the ledger's own confirmation
    page records double_opt_in)."""
    if row.confirmed_at is None:
        return None
    return f"double_opt_in confirmed {rfc3339(row.confirmed_at)} ({target.format})"


def link_event(
    subject_id: str, index: bytes, ciphertext: bytes, target: Target, now: datetime
) -> Event:
    data = {"identifier_type": EMAIL, "blind_index": index, "ciphertext": ciphertext}
    return _event(ev.IDENTIFIER_LINKED, subject_id, now, target, now, data)


def _event(
    kind: str,
    subject_id: str,
    occurred_at: datetime,
    target: Target,
    now: datetime,
    data: dict[str, Any],
) -> Event:
    return Event(
        type=kind,
        event_id=uuid.uuid4(),
        subject_id=subject_id,
        occurred_at=occurred_at,
        recorded_at=now,
        source=Source(method="import", system=target.system),
        actor=Actor(type="system", id=target.system),
        data=data,
    )


class Recorder:
    """Records batches of rows for one target; remembers what this run linked and recorded."""

    def __init__(self, ledger: Ledger, target: Target) -> None:
        self.ledger = ledger
        self.target = target
        self.now = datetime.now(UTC)
        self.key = ledger.secrets.blind_index_key
        self.linked: set[bytes] = set()
        self.latest: dict[tuple[str, str], datetime] = {}

    async def record(self, rows: Sequence[ImportRow]) -> list[tuple[ImportRow, str]]:
        """Each row with its outcome: RECORDED, ALREADY, SUPERSEDED or SUPPRESSED."""
        self.now = datetime.now(UTC)  # recorded_at: when this batch is accepted
        try:
            # before any key is minted; `append_many` asks again before it claims or sends
            await refuse_unverifiable_writes(self.ledger.health)
            return await self._record(rows)
        except WriterKeyUnknown as exc:
            raise ImportStopped(exc.reason) from exc
        except _DATABASE_ERRORS as exc:
            raise ImportStopped(f"the database failed ({type(exc).__name__})") from exc
        except BrokerUnavailable as exc:
            raise ImportStopped("the event log did not acknowledge in time") from exc

    async def _record(self, rows: Sequence[ImportRow]) -> list[tuple[ImportRow, str]]:
        index = {r.email: blind_index(self.key, EMAIL, r.email) for r in rows}
        found = await identifiers.lookup(self.ledger.pool, EMAIL, list(set(index.values())))
        subject = {
            email: found.get(i) or derived_subject_id(self.key, EMAIL, email)
            for email, i in index.items()
        }
        # an address an erased subject held is not brought back by a list: nobody holding it, it
        # stays out (under its derived id, or any other); nor is a row of an erased subject
        blocked = await erasure.suppressed(self.ledger.pool, EMAIL, list(set(index.values())))
        erased = await erasure.erased_among(self.ledger.pool, list(set(subject.values())))
        refused = {
            e for e, i in index.items() if (i in blocked and i not in found) or subject[e] in erased
        }
        unlinked = {
            e for e, i in index.items() if i not in found and i not in self.linked
        } - refused
        keys = await self.ledger.data_keys.for_subjects(subject[e] for e in unlinked)
        # a key shredded since (an erasure racing the import) refuses the row too
        refused |= {e for e in unlinked if subject[e] not in keys}
        later = await subject_state.latest_covering(
            self.ledger.pool, set(subject.values()), self.target.purpose, self.target.channel
        )
        outcomes: list[tuple[ImportRow, str]] = []
        todo: list[tuple[ImportRow, Keyed]] = []
        # a subject's rows in the order of their times, so the log order matches
        for row in sorted(rows, key=lambda r: (subject[r.email], event_time(r), r.line)):
            sid, idx = subject[row.email], index[row.email]
            if row.email in refused:
                outcomes.append((row, SUPPRESSED))
                continue
            moment, scope = event_time(row), (sid, fact_kind(row))
            newest = max((t for t in (later.get(scope), self.latest.get(scope)) if t), default=None)
            if newest is not None and newest > moment:
                outcomes.append((row, SUPERSEDED))
                continue
            self.latest[scope] = moment
            events = []
            if row.email in unlinked and idx not in self.linked:
                sealed = encrypt_identifier(keys[sid], sid, EMAIL, row.email)
                events.append(link_event(sid, idx, sealed, self.target, self.now))
                self.linked.add(idx)
            events.append(decision_event(row, sid, self.target, self.now))
            content = row_content(self.target, idx, row)
            # the digest leaves the subject out: a re-run must match even if the lookup changed
            digest = idempotency.request_digest(ROUTE, "", content)
            todo.append((row, Keyed(row_key(content), digest, sid, events)))
        replayed = await append_many(
            [item for _, item in todo],
            codec=self.ledger.codec,
            pool=self.ledger.pool,
            publisher=self.ledger.publisher,
            health=self.ledger.health,
            hash_key=self.key,
        )
        for (row, _), again in zip(todo, replayed, strict=True):
            outcomes.append((row, ALREADY if again else RECORDED))
        return outcomes
