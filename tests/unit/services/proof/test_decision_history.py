"""The decisions over time on the auditor's page: the as-of answer at every instant, as
segments of equal outcome per purpose and channel."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from projections.as_of import PurgedProof, Suppression, known_at
from projections.outdating import Notice
from projections.state import ALL, ERASURE, Fact, Position
from schemas import events as ev
from schemas.events import Event
from services.proof.decision_history import Band, bands, instants, outcome_at, recorded_subsets
from services.rules.catalogue_history import CatalogueHistory, PurposeRetirement, PurposeVersion
from services.rules.decisions import decide
from tests.properties import examples
from tests.unit.event_log import (
    CATALOGUE,
    HISTORY,
    NOW,
    T0,
    Spec,
    dm_object,
    event,
    grant,
    log,
    logs,
    relationship,
    request,
    withdraw,
)
from tests.unit.event_log import specs as st_specs

P = pytest.param
END = 60


def t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


#: one logged event: (spec, occurred minute, recorded minute); log order is list order
Logged = tuple[Spec, int, int]


def history(entries: list[Logged]) -> list[tuple[Event, Position]]:
    out = []
    for i, (spec, occurred, recorded) in enumerate(entries):
        e = replace(event(*spec, index=i), occurred_at=t(occurred), recorded_at=t(recorded))
        out.append((e, (1, 100 + i)))
    return out


def band(found: list[Band], purpose: str, channel: str) -> Band:
    (only,) = [b for b in found if (b.purpose.id, b.channel) == (purpose, channel)]
    return only


#: a segment as the tables write it: (start minute, end minute, reason, evidence log indexes)
Row = tuple[int, int, str, list[int]]


def newsletter_email(
    entries: list[Logged],
    published: list[Notice] | None = None,
    suppressed: list[Suppression] | None = None,
    purged: PurgedProof | None = None,
) -> list[Row]:
    events = history(entries)
    found = bands(events, HISTORY, t(END), published or [], suppressed or [], purged)
    ids = {e.event_id: i for i, (e, _) in enumerate(events)}
    ids[UUID(int=99)] = 99
    return [
        (
            int((s.start - T0) / timedelta(minutes=1)),
            int((s.end - T0) / timedelta(minutes=1)),
            s.reason,
            [ids.get(e, -1) for e in s.evidence],
        )
        for s in band(found, "newsletter", "email").segments
    ]


def link_email(index: bytes = b"\x07" * 32) -> Spec:
    return ev.IDENTIFIER_LINKED, {
        "identifier_type": "email",
        "blind_index": index,
        "ciphertext": b"c",
    }


def unlink_email(index: bytes = b"\x07" * 32) -> Spec:
    return ev.IDENTIFIER_UNLINKED, {"identifier_type": "email", "blind_index": index}


NOTICE = Notice(
    version="v2",
    effective_from=t(40),
    text_sha256="0" * 64,
    url="https://example.com/privacy",
    material=True,
    purposes=("newsletter",),
    event_id=UUID(int=77),
    published_at=t(25),
)
ERASED = Fact(ERASURE, ALL, ALL, ev.SUBJECT_ERASED, UUID(int=99), (1, 50), t(30))


@pytest.mark.parametrize(
    ("entries", "extra", "expected"),
    [
        P([(grant("newsletter", "email"), 10, 10), (withdraw("newsletter"), 30, 30)], {},
          [(10, 30, "consent_given", [0]), (30, END, "consent_withdrawn", [1])],
          id="grant-then-withdrawal"),
        P([(grant("newsletter", "email"), 10, 10), (dm_object(), 20, 20)], {},
          [(10, 20, "consent_given", [0]), (20, END, "objected_direct_marketing", [1])],
          id="objection"),
        P([(grant("newsletter", "email", t(40)), 10, 10)], {},
          [(10, 40, "consent_given", [0]), (40, END, "consent_expired", [0])],
          id="expiry-by-the-clock"),
        P([(grant("newsletter", "email"), 10, 10), (withdraw("newsletter"), 5, 30)], {},
          [(10, 30, "consent_given", [0]), (30, END, "consent_withdrawn", [1])],
          id="late-event-counts-from-recorded-at"),
        P([(grant("newsletter", "email"), 10, 10), (grant("newsletter"), 20, 20)], {},
          [(10, END, "consent_given", [0])], id="same-outcome-is-one-segment"),
        P([(link_email(), 10, 10)], {}, [(10, END, "no_consent", [])],
          id="known-but-never-asked"),
        P([(grant("newsletter", "email"), 10, 10)], {"published": [NOTICE]},
          [(10, 40, "consent_given", [0]), (40, END, "consent_outdated", [0, -1])],
          id="material-notice-takes-effect"),
        P([(grant("newsletter", "email"), 5, 5), (link_email(), 10, 10)],
          {"suppressed": [Suppression(("email", b"\x07" * 32), t(19), t(20))]},
          [(5, 20, "consent_given", [0]), (20, END, "suppressed", [1])],
          id="suppression-once-recorded"),
        P([], {"purged": PurgedProof(t(30), t(50), ERASED)}, [(30, END, "erased", [99])],
          id="purged-erasure-from-its-time"),
        P([(grant("newsletter", "email"), 10, 10), (withdraw("newsletter"), END, END)], {},
          [(10, END, "consent_given", [0]), (END, END, "consent_withdrawn", [1])],
          id="change-at-the-end-is-an-empty-last-segment"),
        P([(grant("newsletter", "email"), 5, 5), (link_email(), 10, 10), (unlink_email(), 30, 30)],
          {"suppressed": [Suppression(("email", b"\x07" * 32), t(19), t(20))]},
          [(5, 20, "consent_given", [0]), (20, 30, "suppressed", [1]),
           (30, END, "consent_given", [0])],
          id="suppression-while-held"),
        P([(withdraw("newsletter"), 20, 20), (grant("newsletter", "email"), 10, 10)], {},
          [(10, END, "consent_given", [1])], id="recorded-earlier-later-in-log"),
        P([(request("newsletter", "email", t(30)), 10, 10)], {},
          [(10, 30, "confirmation_pending", [0]), (30, END, "no_consent", [])],
          id="pending-until-the-sign-up-expires"),
    ],
)  # fmt: skip
def test_newsletter_by_email_over_time(
    entries: list[Logged], extra: dict[str, object], expected: list[Row]
) -> None:
    assert newsletter_email(entries, **extra) == expected  # type: ignore[arg-type]


def test_nothing_known_is_no_band() -> None:
    assert bands([], HISTORY, t(END)) == []
    assert instants([], t(END)) == []


def test_every_purpose_and_channel_has_a_band_in_catalogue_order() -> None:
    found = bands(history([(grant("newsletter", "email"), 10, 10)]), HISTORY, t(END))
    expected = [(p.id, c) for p in CATALOGUE.purposes.values() for c in p.channels]
    assert [(b.purpose.id, b.channel) for b in found] == expected


@pytest.mark.parametrize(
    ("entries", "extra", "minutes"),
    [
        P([(grant("newsletter", "email", t(40)), 10, 12)], {}, [12, 40, END],
          id="recorded-and-expiry"),
        P([(relationship("contract", [], t(90)), 10, 10)], {}, [10, END],
          id="limits-after-the-end-left-out"),
        P([(request("newsletter", "email", t(40)), 10, 12)], {}, [12, 40, END],
          id="a-sign-up-stops-pending-at-its-expiry"),
        P([(withdraw(), 10, 10)], {"published": [NOTICE]}, [10, END],
          id="notices-only-matter-to-grants"),
        P([(grant("newsletter"), 10, 10)], {"published": [NOTICE]}, [10, 25, 40, END],
          id="notice-published-and-effective"),
        P([(grant("newsletter"), 10, 35)], {"purged": PurgedProof(t(30), t(50), ERASED)},
          [35, END], id="purge-before-first-record"),
        P([(grant("newsletter"), 10, 20)], {"purged": PurgedProof(t(30), t(50), ERASED)},
          [30, END], id="nothing-before-a-purged-erasure"),
    ],
)  # fmt: skip
def test_instants(entries: list[Logged], extra: dict[str, object], minutes: list[int]) -> None:
    found = instants(history(entries), t(END), **extra)  # type: ignore[arg-type]
    assert found == [t(m) for m in minutes]


#: histories whose events were recorded in any order of time, ending two days after NOW so
#: every expiry the strategies draw falls inside
SPAN_END = NOW + timedelta(days=2)


@st.composite
def recorded_logs(draw: st.DrawFn) -> list[tuple[Event, Position]]:
    events = draw(logs)
    minutes = draw(st.lists(st.integers(0, 60 * 24 * 40), min_size=len(events)))
    return [
        (replace(e, recorded_at=T0 + timedelta(minutes=m)), p)
        for (e, p), m in zip(events, minutes, strict=False)
    ]


#: a log recorded only after the chart's end: nothing was known by then (found by hypothesis)
RECORDED_AFTER_THE_END = [
    (replace(e, recorded_at=SPAN_END + timedelta(days=1)), p)
    for e, p in log([grant("newsletter", "email")])
]


@settings(max_examples=examples(60), deadline=None, database=None)
@given(recorded_logs(), st.lists(st.floats(0, 1), max_size=4))
@example(RECORDED_AFTER_THE_END, [])
def test_segments_are_the_as_of_answer_at_every_instant(
    events: list[tuple[Event, Position]], fractions: list[float]
) -> None:
    """At each instant an answer may change, just before it and anywhere else, the segment in
    force is the as-of decision; segments tile the span and neighbours differ."""
    found = bands(events, HISTORY, SPAN_END)
    points = instants(events, SPAN_END)
    if not points:  # no event, or every one recorded after the end: nothing known by then
        assert found == []
        assert all(e.recorded_at > SPAN_END for e, _ in events)
        return
    start = points[0]
    probes = set(points) | {p - timedelta(microseconds=1) for p in points[1:]}
    probes |= {start + (SPAN_END - start) * f for f in fractions}
    for at in sorted(probes):
        known = known_at(events, at)
        for b in found:
            made = decide(known.state, b.purpose, b.channel, at, known.notices)
            segment = outcome_at(b, at)
            assert segment is not None
            assert (segment.allowed, segment.reason) == (made.allowed, made.reason), (b, at)
    for b in found:
        first, last = b.segments[0], b.segments[-1]
        assert (first.start, last.end) == (start, SPAN_END)
        for before, after in zip(b.segments, b.segments[1:], strict=False):
            assert before.end == after.start and before.start < before.end
            assert (before.allowed, before.reason) != (after.allowed, after.reason)


INDEXES = [b"\x01" * 32, b"\x02" * 32]
_index = st.sampled_from(INDEXES)
identifier_specs = st.builds(link_email, _index) | st.builds(unlink_email, _index)


@st.composite
def mixed_logs(draw: st.DrawFn) -> list[tuple[Event, Position]]:
    """Histories with identifier links and unlinks as well, recorded in any order of time."""
    specs = draw(st.lists(st_specs | identifier_specs, max_size=14))
    minutes = draw(st.lists(st.integers(0, 90), min_size=len(specs), max_size=len(specs)))
    return [
        (replace(e, recorded_at=t(m)), p) for (e, p), m in zip(log(specs), minutes, strict=True)
    ]


@settings(max_examples=examples(150), deadline=None, database=None)
@given(mixed_logs(), st.lists(st.tuples(_index, st.integers(0, 90)), max_size=2))
def test_the_subsets_know_what_every_recorded_event_knows(
    events: list[tuple[Event, Position]], listed: list[tuple[bytes, int]]
) -> None:
    """The few events kept per instant fold to the state, and hold the identifiers, of all
    the events recorded by then."""
    suppressed = [Suppression(("email", index), t(m), t(m)) for index, m in listed]
    points = instants(events, t(100), suppressed=suppressed)
    for at, subset in zip(points, recorded_subsets(events, points), strict=True):
        full = known_at(events, at, suppressed=suppressed)
        assert known_at(subset, at, suppressed=suppressed).state == full.state


def test_the_chart_decides_each_instant_with_the_purpose_version_then_in_force() -> None:
    """newsletter turns from consent to legitimate interest at minute 20 and is retired at
    minute 40; a grant at 10 and an objection to direct marketing at 30."""
    base = CATALOGUE.purposes["newsletter"]
    versions = [
        *(PurposeVersion(t(-1), p) for p in CATALOGUE.purposes.values()),
        PurposeVersion(t(20), replace(base, version=2, basis="legitimate_interest")),
        PurposeVersion(t(40), PurposeRetirement("newsletter", 3)),
    ]
    events = history([(grant("newsletter", "email"), 10, 10), (dm_object("email"), 30, 30)])
    found = band(bands(events, CatalogueHistory(versions), t(END)), "newsletter", "email")
    assert [
        (int((s.start - T0) / timedelta(minutes=1)), s.reason, s.version) for s in found.segments
    ] == [
        (10, "consent_given", 1),
        (20, "consent_given", 2),
        (30, "objected_direct_marketing", 2),
        (40, "not_in_catalogue", None),
    ]
    assert found.segments[-1].allowed is False
    assert found.purpose.version == 2


def test_a_purpose_never_in_force_over_the_chart_has_no_band() -> None:
    later = replace(CATALOGUE.purposes["newsletter"], id="webinars", version=1)
    versions = [
        *(PurposeVersion(t(-1), p) for p in CATALOGUE.purposes.values()),
        PurposeVersion(t(END + 10), later),
    ]
    events = history([(grant("newsletter", "email"), 10, 10)])
    found = bands(events, CatalogueHistory(versions), t(END))
    assert "webinars" not in {b.purpose.id for b in found}
