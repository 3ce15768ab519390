"""Privacy notices: the POST /v1/notices body rules, the catalogue flag, golden bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from projections.outdating import NO_NOTICES, notice_from_event
from schemas import events as ev
from schemas.codec import default_codec
from schemas.events import Actor, Event, Source
from services.api.commands import Context
from services.api.notices import build_notice, conflicts
from services.http.body import Fields
from services.http.problems import ProblemError
from services.rules.catalogue import CatalogueError, load_catalogue
from tests.unit.event_log import (
    CATALOGUE,
    NOW,
)
from tests.unit.notice_support import CA, NL

# POST /v1/notices bodies
BODY = {
    "version": "2026-01",
    "effective_from": "2026-02-01T00:00:00Z",
    "text_sha256": "AB" * 32,
    "url": "https://example.com/privacy/2026-01",
    "material": True,
    "purposes": [NL],
    "language": "fi",
}


def build(body: dict[str, Any]) -> Event:
    return build_notice(Fields(body), Context("notice", NOW, CATALOGUE))


def test_a_notice_body_becomes_its_event() -> None:
    event = build(BODY)
    assert event.type == ev.NOTICE_PUBLISHED
    assert (event.subject_id, event.notice_version) == ("notice/2026-01", "2026-01")
    assert event.data["text_sha256"] == "ab" * 32
    assert default_codec().decode(default_codec().encode(event)) == event
    again = build({**BODY, "occurred_at": "2026-01-01T11:00:00Z"})
    assert again.event_id == event.event_id  # derived from the content, not the metadata
    assert build({**BODY, "material": False}).event_id != event.event_id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": "two words"}, "version"),
        ({"version": None}, "version"),
        ({"effective_from": "tomorrow"}, "effective_from"),
        ({"text_sha256": "abc"}, "text_sha256"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "example.com/privacy"}, "url"),
        ({"material": "yes"}, "material"),
        ({"material": None}, "material"),
        ({"purposes": ["nonsense"]}, "purposes"),
        ({"language": "finnish!"}, "language"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_notice_bodies_name_the_field(change: dict[str, Any], field: str) -> None:
    body = {k: v for k, v in {**BODY, **change}.items() if v is not None}
    with pytest.raises(ProblemError) as caught:
        build(body)
    assert caught.value.status == 422
    assert field in {e["field"] for e in caught.value.errors}


def test_conflicting_fields_are_named() -> None:
    first = notice_from_event(build(BODY), (0, 0))
    second = notice_from_event(build({**BODY, "url": "https://example.com/other"}), (0, 0))
    same = notice_from_event(build({**BODY, "purposes": [NL]}), (1, 5))
    assert first is not None and second is not None and same is not None
    assert conflicts(first, second) == ["url"]
    assert conflicts(first, same) == []


def test_the_catalogue_flag_defaults_by_basis_and_is_checked(tmp_path: Path) -> None:
    flags = {p.id: p.reconsent_on_material_change for p in CATALOGUE.purposes.values()}
    assert flags == {p.id: p.basis == "consent" for p in CATALOGUE.purposes.values()}
    base = 'recipients = []\nretention = "P1Y"\nchannels = ["email"]\n'
    path = tmp_path / "purposes.toml"
    path.write_text(
        f'[purposes.a]\nbasis = "contract"\n{base}reconsent_on_material_change = true\n'
    )
    with pytest.raises(CatalogueError, match="reconsent_on_material_change"):
        load_catalogue(path)
    path.write_text(f'[purposes.a]\nbasis = "consent"\n{base}reconsent_on_material_change = 1\n')
    with pytest.raises(CatalogueError, match="true or false"):
        load_catalogue(path)
    path.write_text(
        f'[purposes.a]\nbasis = "legitimate_interest"\n{base}reconsent_on_material_change = true\n'
    )
    assert load_catalogue(path).purposes["a"].reconsent_on_material_change
    assert NO_NOTICES.cutoff("a", NOW) is None


GOLDEN_NOTICE = Event(
    type=ev.NOTICE_PUBLISHED,
    event_id=UUID("0b9d2a4e-5a57-5c0e-9a4c-3f1f7a1d9b10"),
    subject_id="notice/2023-05-04",
    occurred_at=datetime(2023, 5, 4, 9, 0, tzinfo=UTC),
    recorded_at=datetime(2023, 5, 4, 9, 0, 0, 123456, tzinfo=UTC),
    source=Source("api", "cms", None),
    actor=Actor("staff", "dpo"),
    notice_version="2023-05-04",
    data={
        "version": "2023-05-04",
        "effective_from": datetime(2023, 5, 4, tzinfo=UTC),
        "text_sha256": "ab" * 32,
        "url": "https://example.com/privacy",
        "material": True,
        "purposes": ["newsletter"],
        "language": "fi",
    },
)
GOLDEN_NOTICE_HEX = (
    "c301aec56729893c8dee4830623964326134652d356135372d356330652d396134632d336631663761316439"
    "623130226e6f746963652f323032332d30352d30348090c9dbccb6fd058099d8dbccb6fd050c0206636d7300"
    "02020664706f0214323032332d30352d303414323032332d30352d30348080c3a8dbb4fd0580016162616261"
    "6261626162616261626162616261626162616261626162616261626162616261626162616261626162616261"
    "6261626162616261626162616261623668747470733a2f2f6578616d706c652e636f6d2f7072697661637901"
    "02146e6577736c65747465720002046669"
)


def test_notice_published_v1_golden_bytes() -> None:
    codec = default_codec()
    assert codec.encode(GOLDEN_NOTICE).hex() == GOLDEN_NOTICE_HEX
    assert codec.decode(bytes.fromhex(GOLDEN_NOTICE_HEX)) == GOLDEN_NOTICE
    notice = notice_from_event(GOLDEN_NOTICE, (2, 7))
    assert notice is not None and notice.position == (2, 7) and notice.covers(NL)
    assert not notice.covers(CA)
