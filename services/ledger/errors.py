"""Why the ledger refused or could not confirm an append; the HTTP layer answers each with its
problem (services/http/ledger_problems.py), the importer stops on them."""

from __future__ import annotations


class LedgerError(Exception):
    """An append the ledger refused, or could not confirm."""


class SubjectErased(LedgerError):
    """An event would let processing of an erased subject start again (services/rules/erasure.py
    `reopens`); nothing was recorded."""


class IdempotencyKeyReused(LedgerError):
    """The idempotency key was claimed by another request (another route, subject or body)."""


class WriterKeyUnknown(LedgerError):
    """A projector would dead-letter what this process writes: it does not know the writer key
    the records would be MACed with. Nothing was recorded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        #: which projector lacks which key, and what to do about it
        self.reason = reason


class BrokerUnavailable(LedgerError):
    """The broker did not acknowledge in time; the events may or may not be in the log."""
