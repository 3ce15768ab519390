"""The ledger's errors (services/ledger/errors.py) as problem details: the one mapping behind the
API's exception handler (services/api/app.py) and the pages' error page (services/web/routes.py)."""

from __future__ import annotations

from typing import Final

from services.http.problems import ProblemError, field_error, unavailable
from services.ledger.errors import (
    BrokerUnavailable,
    IdempotencyKeyReused,
    LedgerError,
    SubjectErased,
    WriterKeyUnknown,
)

#: seconds: the writer key is learnt when the projector restarts with it
WRITER_KEY_RETRY_AFTER_S: Final = 5
#: seconds: a broker that missed an ack is usually back within a moment
BROKER_RETRY_AFTER_S: Final = 2


def ledger_problem(error: LedgerError, *, keyed: bool) -> ProblemError:
    """The problem answering `error`; `keyed`: the request carried an Idempotency-Key, which a
    retry after an unconfirmed append must repeat."""
    if isinstance(error, SubjectErased):
        return ProblemError(
            409,
            "Subject erased",
            "the subject was erased (GDPR Art. 17): the ledger records withdrawals, objections,"
            " restrictions and other events that stop processing for it, but nothing that would"
            " let processing start again",
            kind="subject-erased",
        )
    if isinstance(error, IdempotencyKeyReused):
        return ProblemError(
            422,
            "Idempotency key reused",
            "this Idempotency-Key was used with a different request; use a new key",
            errors=[field_error("Idempotency-Key", "already used for another request")],
            kind="idempotency-key-reused",
        )
    if isinstance(error, WriterKeyUnknown):
        return ProblemError(
            503,
            "Writer key unknown to the projector",
            f"nothing was recorded: {error.reason}; then retry",
            headers={"Retry-After": str(WRITER_KEY_RETRY_AFTER_S)},
            kind="writer-key-unknown",
        )
    assert isinstance(error, BrokerUnavailable), f"no problem for {type(error).__name__}"
    retry = "retry with the same Idempotency-Key" if keyed else "retry with an Idempotency-Key"
    return unavailable(
        f"the event log did not acknowledge in time; nothing is confirmed: {retry}",
        BROKER_RETRY_AFTER_S,
    )
