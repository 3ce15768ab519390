"""The append path's decisions (services/ledger/append.py): where a claimed key's events
already are, which appends are refused before anything is claimed or sent, and the problem
each ledger error is answered with (services/http/ledger_problems.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from projections.freshness import Verdict
from services.http.ledger_problems import ledger_problem
from services.ledger.append import (
    Position,
    known_positions,
    refuse_reopening,
    refuse_unverifiable_writes,
)
from services.ledger.errors import (
    BrokerUnavailable,
    IdempotencyKeyReused,
    LedgerError,
    SubjectErased,
    WriterKeyUnknown,
)
from services.ledger.idempotency import Claim
from tests.unit.event_log import Spec, dm_lift, dm_object, event, grant, resolve, withdraw

A, B = UUID(int=1), UUID(int=2)


def claim(first: bool, acked: list[Position] | None = None) -> Claim:
    return Claim([A, B], [b"a", b"b"], first=first, digest_matches=True, acked=acked)


@pytest.mark.parametrize(
    ("the_claim", "projected", "known"),
    [
        pytest.param(claim(True), {}, None, id="first-claim-sends"),
        pytest.param(claim(True), {A: (0, 1), B: (0, 2)}, None, id="first-claim-sends-anyway"),
        pytest.param(claim(False, [(1, 5), (1, 6)]), {}, [(1, 5), (1, 6)], id="acked"),
        pytest.param(
            claim(False, [(1, 5), (1, 6)]), {A: (0, 1), B: (0, 2)}, [(1, 5), (1, 6)], id="ack-wins"
        ),
        pytest.param(claim(False), {B: (2, 8), A: (2, 7)}, [(2, 7), (2, 8)], id="all-projected"),
        pytest.param(claim(False), {A: (2, 7)}, None, id="partly-projected-resends"),
        pytest.param(claim(False), {}, None, id="unknown-resends"),
    ],
)
def test_where_a_claimed_keys_events_are(
    the_claim: Claim, projected: dict[UUID, Position], known: list[Position] | None
) -> None:
    assert known_positions(the_claim, projected) == known


class Health:
    def __init__(self, refused: str | None) -> None:
        self.refused = refused

    async def writes_verdict(self) -> Verdict:
        return Verdict(
            fresh=self.refused is None, reason=None, staleness_s=0.0, writes_refused=self.refused
        )


async def test_writes_are_refused_only_while_a_projector_lacks_the_writer_key() -> None:
    await refuse_unverifiable_writes(Health(None))
    with pytest.raises(WriterKeyUnknown) as caught:
        await refuse_unverifiable_writes(Health("the projector of partition 3 lacks w2"))
    assert caught.value.reason == "the projector of partition 3 lacks w2"


class Erased:
    """Which subjects are erased; remembers who was asked."""

    def __init__(self, *erased: str) -> None:
        self.erased = set(erased)
        self.asked: list[str] = []

    async def get(self, key: str, /) -> bool:
        self.asked.append(key)
        return key in self.erased


@pytest.mark.parametrize(
    ("specs", "erased", "refused", "asked"),
    [
        pytest.param([grant("newsletter")], True, True, True, id="grant-for-erased"),
        pytest.param([grant("newsletter")], False, False, True, id="grant-for-live"),
        pytest.param([withdraw("newsletter")], True, False, False, id="withdrawal-for-erased"),
        pytest.param([dm_object(), dm_lift()], True, True, True, id="lift-among-others"),
        pytest.param([resolve("research", "upheld")], True, False, False, id="upheld"),
        pytest.param([resolve("research", "lifted")], True, True, True, id="cleared"),
    ],
)
async def test_only_what_reopens_an_erased_subject_is_refused(
    specs: list[Spec], erased: bool, refused: bool, asked: bool
) -> None:
    events = [event(t, d, i) for i, (t, d) in enumerate(specs)]
    subjects = Erased("sub-1") if erased else Erased()
    if refused:
        with pytest.raises(SubjectErased):
            await refuse_reopening(subjects, "sub-1", events)
    else:
        await refuse_reopening(subjects, "sub-1", events)
    # what cannot reopen is taken without asking whether the subject is erased
    assert subjects.asked == (["sub-1"] if asked else [])


@pytest.mark.parametrize(
    ("error", "keyed", "status", "kind", "headers", "detail"),
    [
        (SubjectErased(), False, 409, "subject-erased", {}, "the subject was erased (GDPR"),
        (
            IdempotencyKeyReused(),
            True,
            422,
            "idempotency-key-reused",
            {},
            "this Idempotency-Key was used with a different request; use a new key",
        ),
        (
            WriterKeyUnknown("partition 3 lacks w2"),
            True,
            503,
            "writer-key-unknown",
            {"Retry-After": "5"},
            "nothing was recorded: partition 3 lacks w2; then retry",
        ),
        (
            BrokerUnavailable("timed out"),
            True,
            503,
            "unavailable",
            {"Retry-After": "2"},
            "the event log did not acknowledge in time; nothing is confirmed: retry with the"
            " same Idempotency-Key",
        ),
        (
            BrokerUnavailable("timed out"),
            False,
            503,
            "unavailable",
            {"Retry-After": "2"},
            "the event log did not acknowledge in time; nothing is confirmed: retry with an"
            " Idempotency-Key",
        ),
    ],
)
def test_each_ledger_error_has_its_problem(
    error: LedgerError,
    keyed: bool,
    status: int,
    kind: str,
    headers: dict[str, str],
    detail: str,
) -> None:
    problem = ledger_problem(error, keyed=keyed)
    assert (problem.status, problem.kind, problem.headers) == (status, kind, headers)
    assert problem.detail.startswith(detail)
    assert not any(word in problem.detail for word in ("timed out", "sub-1"))


def test_every_ledger_error_is_answered() -> None:
    made: dict[type[LedgerError], Any] = {
        WriterKeyUnknown: lambda: WriterKeyUnknown("why"),
    }
    for kind in LedgerError.__subclasses__():
        error = made.get(kind, kind)()
        assert ledger_problem(error, keyed=True).status in (409, 422, 503)


def test_the_reused_key_names_the_header() -> None:
    [entry] = ledger_problem(IdempotencyKeyReused(), keyed=True).errors
    assert (entry["field"], entry["detail"]) == (
        "Idempotency-Key",
        "already used for another request",
    )
