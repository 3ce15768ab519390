"""Link revocations as pure functions: what each event revokes, whether a link is revoked, and
that the table's fold gives the same rows in any order (security review finding M3)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.link_revocations import (
    ADDRESS_BYTES,
    CONFIRM,
    EVERY_ADDRESS,
    NO_ADDRESS,
    PREFERENCES,
    UNSUBSCRIBE,
    Revocation,
    address_key,
    covered,
    is_revoked,
    latest,
    revocations_for,
)
from schemas import events as ev
from schemas.events import Event
from services.identity import links

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
HOME = bytes(range(32))
WORK = bytes(range(1, 33))


def event(kind: str, at: datetime = T0, **data: Any) -> Event:
    return Event(kind, uuid.uuid4(), "sub-1", at - timedelta(minutes=1), at, data=data)


def test_kinds_and_address_size_match_the_tokens() -> None:
    assert {UNSUBSCRIBE, PREFERENCES, CONFIRM} == set(get_args(links.LinkKind))
    assert ADDRESS_BYTES == links.ADDRESS_BYTES


@pytest.mark.parametrize(
    ("made", "revoked"),
    [
        (event(ev.LINKS_REVOKED, reason=None), {(PREFERENCES, EVERY_ADDRESS)}),
        (
            event(ev.SUBJECT_ERASED, ground="objection", request_id=None),
            {(PREFERENCES, EVERY_ADDRESS), (UNSUBSCRIBE, EVERY_ADDRESS), (CONFIRM, EVERY_ADDRESS)},
        ),
        (
            event(ev.IDENTIFIER_UNLINKED, identifier_type="email", blind_index=HOME),
            {
                (PREFERENCES, HOME[:8].hex()),
                (PREFERENCES, NO_ADDRESS),
                (CONFIRM, HOME[:8].hex()),
                (CONFIRM, NO_ADDRESS),
            },
        ),
        (event(ev.IDENTIFIER_LINKED, identifier_type="email", blind_index=HOME), set()),
        (event(ev.CONSENT_WITHDRAWN, purpose=None, channel=None), set()),
    ],
    ids=["links-revoked", "erased", "unlinked", "linked", "withdrawn"],
)
def test_what_each_event_revokes(made: Event, revoked: set[tuple[str, str]]) -> None:
    found = revocations_for(made)
    assert {(r.kind, r.address) for r in found} == revoked
    assert {(r.through, r.event_id) for r in found} <= {(made.recorded_at, made.event_id)}


SECOND = timedelta(seconds=1)
ERASED = revocations_for(event(ev.SUBJECT_ERASED, ground="objection", request_id=None))
REVOKED = revocations_for(event(ev.LINKS_REVOKED, reason=None))
UNLINKED_HOME = revocations_for(
    event(ev.IDENTIFIER_UNLINKED, identifier_type="email", blind_index=HOME)
)


@pytest.mark.parametrize(
    ("revocations", "kind", "address", "issued", "revoked"),
    [
        ([], PREFERENCES, None, T0 - SECOND, False),
        (REVOKED, PREFERENCES, None, T0 - SECOND, True),
        (REVOKED, PREFERENCES, HOME, T0, True),  # the same microsecond counts as before
        (REVOKED, PREFERENCES, HOME, T0 + timedelta(microseconds=1), False),
        (REVOKED, UNSUBSCRIBE, None, T0 - SECOND, False),
        (ERASED, UNSUBSCRIBE, HOME, T0 - SECOND, True),
        (ERASED, PREFERENCES, None, T0 - SECOND, True),
        (ERASED, UNSUBSCRIBE, None, T0 + SECOND, False),
        (UNLINKED_HOME, PREFERENCES, HOME, T0 - SECOND, True),
        (UNLINKED_HOME, PREFERENCES, None, T0 - SECOND, True),
        (UNLINKED_HOME, PREFERENCES, WORK, T0 - SECOND, False),
        (UNLINKED_HOME, UNSUBSCRIBE, HOME, T0 - SECOND, False),
        (UNLINKED_HOME, PREFERENCES, HOME, T0 + SECOND, False),
    ],
    ids=[
        "nothing-revoked",
        "revoke-endpoint",
        "same-instant",
        "issued-after",
        "revoke-keeps-unsubscribe",
        "erasure-unsubscribe",
        "erasure-preferences",
        "issued-after-erasure",
        "unlinked-address",
        "issued-by-subject-id",
        "other-address",
        "unlink-keeps-unsubscribe",
        "issued-after-unlink",
    ],
)
def test_is_revoked(
    revocations: list[Revocation], kind: str, address: bytes | None, issued: datetime, revoked: bool
) -> None:
    assert is_revoked(kind, address, issued, revocations) is revoked


kinds = st.sampled_from([PREFERENCES, UNSUBSCRIBE])
addresses = st.sampled_from([None, HOME, WORK])
instants = st.integers(0, 20).map(lambda n: T0 + n * SECOND)


REVOKING: list[tuple[str, dict[str, Any]]] = [
    (ev.LINKS_REVOKED, {"reason": None}),
    (ev.SUBJECT_ERASED, {"ground": "objection", "request_id": None}),
    (ev.IDENTIFIER_UNLINKED, {"identifier_type": "email", "blind_index": HOME}),
    (ev.IDENTIFIER_UNLINKED, {"identifier_type": "email", "blind_index": WORK}),
]


@st.composite
def revoking_events(draw: st.DrawFn) -> Event:
    kind, data = draw(st.sampled_from(REVOKING))
    return event(kind, draw(instants), **data)


def table_after(batches: list[list[Event]]) -> dict[tuple[str, str, str], Revocation]:
    """What the table holds after applying `batches` one after another, as projections/
    link_revocations.py `apply` does it (upsert the batch's latest, then drop covered rows)."""
    table: dict[tuple[str, str, str], Revocation] = {}
    for batch in batches:
        rows = latest(("sub-1", r) for e in batch for r in revocations_for(e))
        for key, row in rows.items():
            held = table.get(key)
            if held is None or (held.through, held.event_id) < (row.through, row.event_id):
                table[key] = row
        for dropped in covered(table.values()):
            del table[("sub-1", dropped.kind, dropped.address)]
    return table


@given(
    log=st.lists(revoking_events(), max_size=12),
    cuts=st.lists(st.integers(0, 12), max_size=4),
    data=st.data(),
)
def test_the_rows_are_the_same_however_the_batches_fall(
    log: list[Event], cuts: list[int], data: st.DataObject
) -> None:
    """A rebuild applies the log in other batches than the live projector did: the rows (and
    so every answer) must come out the same, whatever the split and the order of revocations
    (the fold is a maximum)."""
    bounds = sorted({0, len(log), *(c for c in cuts if c <= len(log))})
    batches = [log[a:b] for a, b in itertools.pairwise(bounds)]
    shuffled = data.draw(st.permutations(log))
    assert table_after(batches) == table_after([log]) == table_after([[e] for e in shuffled])


@given(
    log=st.lists(revoking_events(), max_size=12),
    kind=kinds,
    address=addresses,
    issued=instants,
)
def test_dropping_covered_rows_changes_no_answer(
    log: list[Event], kind: str, address: bytes | None, issued: datetime
) -> None:
    every_row = [r for e in log for r in revocations_for(e)]
    kept = list(table_after([log]).values())
    assert is_revoked(kind, address, issued, kept) == is_revoked(kind, address, issued, every_row)


@given(log=st.lists(revoking_events(), max_size=12), kind=kinds, address=addresses)
def test_a_link_issued_after_every_revocation_is_never_revoked(
    log: list[Event], kind: str, address: bytes | None
) -> None:
    later = T0 + 21 * SECOND
    assert not is_revoked(kind, address, later, [r for e in log for r in revocations_for(e)])


@given(st.binary(min_size=8, max_size=64))
def test_an_address_is_named_by_its_first_eight_bytes(index: bytes) -> None:
    assert address_key(index) == index[:8].hex() and address_key(None) == NO_ADDRESS
