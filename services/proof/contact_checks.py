"""Evidence of a batch check: the ContactCheckPerformed record and its recipient digests, which
prove a send list is the one checked without the record holding the list.

Design: docs/developers/design/proof.md
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from uuid import UUID

from schemas.check_codec import ContactCheck
from services.identity.identities import blind_index, email_indexes
from services.rules.batch import BatchResult


def recipients_digest(keys: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(set(keys))).encode("utf-8")).hexdigest()


def subjects_digest(subjects: Iterable[str]) -> str:
    """The digest of a list of subject ids, as a check of them records it."""
    return recipients_digest(subject_keys(subjects))


def emails_digest(emails: Iterable[str], key: bytes) -> str:
    """The digest of a list of addresses as given; `key` is the ledger's blind-index key."""
    listed = list(emails)
    return recipients_digest(email_keys(listed, email_indexes(listed, key), key))


def subject_keys(subjects: Iterable[str]) -> list[str]:
    return [f"subject:{s}" for s in subjects]


def email_keys(emails: Iterable[str], index_of: Mapping[str, bytes], key: bytes) -> list[str]:
    """The digest key of each address as given; `index_of` holds the blind indexes of the
    addresses that normalised (services.identity.identities.email_indexes)."""
    out = []
    for email in emails:
        index = index_of.get(email)
        if index is None:
            out.append(f"invalid:{blind_index(key, 'invalid', email).hex()}")
        else:
            out.append(f"email:{index.hex()}")
    return out


def contact_check(
    *,
    check_id: UUID,
    campaign_id: str,
    purpose: str,
    channel: str,
    checked_at: datetime,
    snapshot_token: str,
    recipient_kind: str,
    result: BatchResult,
    recipient_keys: list[str],
    allowed_keys: list[str],
) -> ContactCheck:
    return ContactCheck(
        check_id=check_id,
        campaign_id=campaign_id,
        purpose=purpose,
        channel=channel,
        checked_at=checked_at,
        snapshot_token=snapshot_token,
        recipient_kind=recipient_kind,
        requested=result.requested,
        allowed=len(result.allowed),
        denied=len(result.denied),
        denied_by_reason=result.denied_by_reason(),
        recipients_digest=recipients_digest(recipient_keys),
        allowed_digest=recipients_digest(allowed_keys),
    )


class SortedDigest:
    """`recipients_digest` of keys fed one at a time in ascending order: an audience's digest
    is taken as its rows stream past, without holding the list."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._last: str | None = None

    def add(self, key: str) -> None:
        if self._last is not None:
            if key <= self._last:
                raise ValueError("keys must come in ascending order, each once")
            self._hash.update(b"\n")
        self._hash.update(key.encode("utf-8"))
        self._last = key

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
