"""The auditor's page without servers: timeline rows, chart geometry, and the rendered HTML's
structure (language, headings, captions, the chart's accessible name), with no identifier
bytes anywhere."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from projections.chain_verify import JournalEntry, SubjectVerifier
from projections.hash_chain import GENESIS, subject_link
from projections.journal import event_payload
from projections.state import Position
from schemas import events as ev
from schemas.codec import default_codec
from schemas.events import Actor, Event, Source
from services.proof.decision_history import bands
from services.web import audit_chart, audit_view
from tests.unit.event_log import CATALOGUE, HISTORY, T0, dm_object, event, grant, withdraw

P = pytest.param
AVRO = Path(__file__).resolve().parents[4] / "schemas" / "avro"
INDEX = b"\x07" * 32
CIPHERTEXT = b"\x99" * 40
LINK = (
    ev.IDENTIFIER_LINKED,
    {"identifier_type": "email", "blind_index": INDEX, "ciphertext": CIPHERTEXT},
)


def _bytes_fields(schema: Any) -> set[str]:
    """Names of the fields whose type is (or may be) bytes, anywhere in a schema."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for f in schema.get("fields", []):
            types = f["type"] if isinstance(f["type"], list) else [f["type"]]
            if "bytes" in types or any(
                isinstance(t, dict) and t.get("type") == "fixed" for t in types
            ):
                found.add(f["name"])
            for t in types:
                found |= _bytes_fields(t)
    return found


@pytest.mark.parametrize("path", sorted(AVRO.glob("*.avsc")), ids=lambda p: p.name)
def test_no_bytes_field_of_any_event_is_shown(path: Path) -> None:
    assert _bytes_fields(json.loads(path.read_text())) <= audit_view.HIDDEN_FIELDS


def entries_of(events: list[Event]) -> list[JournalEntry]:
    """Journal entries as the projector stores them: bytes, payload and chained hashes."""
    codec = default_codec()
    out, head = [], GENESIS
    for i, e in enumerate(events):
        value = codec.encode(e)
        head = subject_link(head, value)
        out.append(
            JournalEntry(
                event_id=e.event_id,
                subject_id=e.subject_id,
                event_type=e.type,
                partition=2,
                offset=10 + i,
                occurred_at=e.occurred_at,
                recorded_at=e.recorded_at,
                payload=json.dumps(event_payload(e)),
                value=value,
                chain_hash=head,
            )
        )
    return out


def subject_events() -> list[Event]:
    src = Source("double_opt_in", "website", "footer-signup")
    first = replace(event(*grant("newsletter", "email"), index=0), source=src, notice_version="v1")
    first = replace(first, actor=Actor("subject", None))
    late = event(*withdraw("newsletter", "email"), index=2)
    return [
        first,
        event(*LINK, index=1),
        replace(late, occurred_at=T0 - timedelta(days=1)),
        event(*dm_object(), index=3),
    ]


@pytest.mark.parametrize(
    ("event_type", "data", "expected"),
    [
        P(*LINK, (("identifier", "e-mail address linked"),), id="linked"),
        P(ev.IDENTIFIER_UNLINKED, {"identifier_type": "phone", "blind_index": "AAAA"},
          (("identifier", "phone number unlinked"),), id="unlinked"),
        P(ev.CONSENT_WITHDRAWN, {"purpose": None, "channel": None, "reason": "moved"},
          (("purpose", "every purpose"), ("channel", "all channels"), ("reason", "moved")),
          id="nulls-say-what-they-mean"),
        P(ev.PROCESSING_RESTRICTED, {"ground": "legal_claims", "purposes": []},
          (("ground", "legal_claims"), ("purposes", "all purposes")), id="empty-list"),
        P(ev.RELATIONSHIP_RECORDED, {"basis": "contract", "purposes": ["a", "b"]},
          (("basis", "contract"), ("purposes", "a, b")), id="list"),
        P(ev.NOTICE_PUBLISHED, {"material": True, "language": None},
          (("material", "yes"), ("language", "none")), id="bool-and-plain-null"),
    ],
)  # fmt: skip
def test_details(event_type: str, data: dict[str, Any], expected: tuple[Any, ...]) -> None:
    payload = {"type": event_type, "event_id": "x", "source": {}, **data}
    assert audit_view.details(event_type, payload) == expected


def test_timeline_rows() -> None:
    events = subject_events()
    rows = audit_view.timeline(entries_of(events), None)
    assert [r.number for r in rows] == [1, 2, 3, 4]
    assert [r.type for r in rows] == [e.type for e in events]
    first = rows[0]
    assert (first.method, first.system, first.collection_point) == (
        "double_opt_in",
        "website",
        "footer-signup",
    )
    assert (first.actor, first.notice_version, first.partition, first.offset) == (
        "subject",
        "v1",
        2,
        10,
    )
    assert [r.late for r in rows] == [False, False, True, False]
    assert [[link.label for link in r.receipts] for r in rows] == [
        ["iso27560", "kantara"],
        [],
        ["iso27560", "kantara"],
        [],
    ]
    assert rows[0].receipts[1].href == f"../../v1/receipts/{events[0].event_id}?format=kantara"
    assert all(r.broken is None for r in rows)


def test_an_altered_payload_still_shows() -> None:
    entries = entries_of(subject_events())
    entries[0] = replace(entries[0], payload='"not an object"')
    rows = audit_view.timeline(entries, None)
    assert (rows[0].method, rows[0].details) == ("", ())


@pytest.mark.parametrize(
    ("span", "step"),
    [
        P(timedelta(seconds=3), 1, id="seconds"),
        P(timedelta(seconds=40), 10, id="tens-of-seconds"),
        P(timedelta(minutes=50), 600, id="ten-minutes"),
        P(timedelta(hours=20), 6 * 3600, id="six-hours"),
        P(timedelta(days=40), 7 * 86400, id="weeks"),
        P(timedelta(days=4000), 2 * 365 * 86400, id="years"),
        P(timedelta(days=365 * 200), 40 * 365 * 86400, id="beyond-the-table"),
        P(timedelta(0), 1, id="empty"),
    ],
)
def test_tick_step(span: timedelta, step: int) -> None:
    assert audit_chart.tick_step(span) == step


def test_ticks_are_round_instants_within_the_span() -> None:
    start = datetime(2026, 11, 25, 18, 3, 24, 820157, tzinfo=UTC)
    found = audit_chart.ticks(start, start + timedelta(seconds=9))
    assert [label for _, label in found] == ["18:03:26", "18:03:28", "18:03:30", "18:03:32"]
    days = audit_chart.ticks(start, start + timedelta(days=20))
    assert [label for _, label in days] == ["2026-11-26", "2026-12-03", "2026-12-10"]
    hours = audit_chart.ticks(start, start + timedelta(days=1, hours=2))
    assert [label for _, label in hours] == [
        "11-26 00:00",
        "11-26 06:00",
        "11-26 12:00",
        "11-26 18:00",
    ]


def chart_of(events: list[Event], end: datetime) -> audit_chart.Chart:
    positions: list[tuple[Event, Position]] = [(e, (2, 10 + i)) for i, e in enumerate(events)]
    made = audit_chart.chart(bands(positions, HISTORY, end), end)
    assert made is not None
    return made


def test_chart_geometry() -> None:
    events = subject_events()
    end = T0 + timedelta(minutes=10)
    chart = chart_of(events, end)
    scopes = [(p, c) for p in CATALOGUE.purposes.values() for c in p.channels]
    headings = [r.label for r in chart.rows if r.heading]
    channels = [r for r in chart.rows if not r.heading]
    assert headings == [p.title for p in CATALOGUE.purposes.values()]
    assert len(channels) == len(scopes)
    assert [r.y for r in chart.rows] == sorted(r.y for r in chart.rows)
    right = chart.label_width + chart.plot_width
    for row in channels:
        assert row.bars[0].x == chart.label_width
        assert row.bars[-1].x + row.bars[-1].width == pytest.approx(right, abs=0.02)
        for bar in row.bars:
            assert chart.label_width <= bar.x and bar.x + bar.width <= right + 0.02
    newsletter = channels[scopes.index((CATALOGUE.purposes["newsletter"], "email"))]
    assert newsletter.label == "by e-mail"
    assert [b.allowed for b in newsletter.bars] == [True, False, False]
    assert newsletter.bars[1].title.startswith("Newsletter: by e-mail: denied (consent_withdrawn)")
    assert "objected_direct_marketing" in newsletter.bars[2].title
    assert chart.height > chart.axis_y > channels[-1].y
    assert audit_chart.chart([], end) is None


class Structure(HTMLParser):
    """What an accessibility check reads: tags in order, their attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: dict[str, str] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            while self._open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        for tag in self._open:
            self.text[tag] = self.text.get(tag, "") + data

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)


def page(broken: bool = False) -> str:
    events = subject_events()
    entries = entries_of(events)
    if broken:
        entries[1] = replace(entries[1], chain_hash=bytes(32))
    verifier = SubjectVerifier("sub-1", default_codec())
    for entry in entries:
        verifier.feed(entry)
    end = T0 + timedelta(minutes=10)
    positions: list[tuple[Event, Position]] = [(e, (2, 10 + i)) for i, e in enumerate(events)]
    found = bands(positions, HISTORY, end)
    rows = audit_view.timeline(entries, verifier.first_broken)
    return audit_view.subject_page(
        controller="Example Controller",
        subject_id="sub-1",
        generated_at=end,
        rows=rows,
        chart=audit_chart.chart(found, end),
        decisions=audit_view.decision_rows(found, rows),
        verification=audit_view.Verification(
            verifier.valid,
            verifier.events,
            verifier.head.hex(),
            verifier.first_broken,
            next((r.number for r in rows if r.broken), None),
        ),
        erasure=None,
        undecodable=0,
    )


def test_page_structure_is_accessible() -> None:
    html = page()
    found = Structure()
    found.feed(html)
    assert found.tags[0] == ("html", {"lang": "en"})
    assert found.count("h1") == 1 and found.count("main") == 1
    assert found.count("h2") == 4
    assert found.count("caption") == 2
    svg = next(attrs for tag, attrs in found.tags if tag == "svg")
    assert (svg["role"], svg["aria-labelledby"]) == ("img", "chart-title chart-desc")
    assert ("title", {"id": "chart-title"}) in found.tags
    assert "Decisions per purpose and channel over time" in html
    assert all(attrs.get("scope") for tag, attrs in found.tags if tag == "th")
    assert "<script" not in html
    assert "Valid." in html and "Broken." not in html


def test_page_never_shows_identifier_bytes() -> None:
    html = page()
    for secret in (INDEX, CIPHERTEXT):
        assert base64.b64encode(secret).decode() not in html
        assert secret.hex() not in html
    assert "e-mail address linked" in html


def test_a_broken_chain_names_the_first_broken_link() -> None:
    html = page(broken=True)
    assert "Broken." in html and 'role="alert"' in html
    assert "event #2" in html and "hash_mismatch" in html
    assert html.count('class="broken"') == 1


def test_each_decision_row_names_the_purpose_version_it_was_made_with() -> None:
    html = page()
    assert '<th scope="col">Purpose version</th>' in html
    found = bands(
        [(event(*grant("newsletter", "email")), (2, 10))], HISTORY, T0 + timedelta(minutes=10)
    )
    rows = audit_view.decision_rows(found, [])
    assert {r.version for r in rows} == {1}
