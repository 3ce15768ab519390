"""The access export's identities: every identifier the history linked, decrypted, with its
current status; none without the subject's key."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import events as ev
from schemas.events import Event
from services.proof.access_export import export_document, identities, versions_in_force
from services.rules.catalogue_history import CatalogueHistory, PurposeRetirement, PurposeVersion
from tests.unit.event_log import CATALOGUE, event

P = pytest.param
T = datetime(2026, 3, 1, tzinfo=UTC)
#: "ciphertexts" the test opener reads: the value itself, or b"?" for one it cannot open
Spec = tuple[str, str, bytes, bytes | None]


def log(specs: list[Spec]) -> list[Event]:
    out = []
    for i, (type_, kind, index, sealed) in enumerate(specs):
        data: dict[str, Any] = {"identifier_type": kind, "blind_index": index}
        if type_ == ev.IDENTIFIER_LINKED:
            data["ciphertext"] = sealed
        e = event(type_, data, i)
        out.append(replace(e, recorded_at=T + timedelta(days=i)))
    return out


def opener(kind: str, ciphertext: bytes) -> str | None:
    return None if ciphertext == b"?" else f"{kind}:{ciphertext.decode()}"


def link(kind: str, index: bytes, value: bytes) -> Spec:
    return ev.IDENTIFIER_LINKED, kind, index, value


def unlink(kind: str, index: bytes) -> Spec:
    return ev.IDENTIFIER_UNLINKED, kind, index, None


def day(n: int) -> str:
    return f"2026-03-0{n + 1}T00:00:00Z"


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        P([], [], id="none"),
        P([link("email", b"a", b"ada@x.org")],
          [("email", "email:ada@x.org", True, day(0), None)], id="linked"),
        P([link("email", b"a", b"ada@x.org"), unlink("email", b"a")],
          [("email", "email:ada@x.org", False, day(0), day(1))], id="unlinked"),
        P([link("email", b"a", b"ada@x.org"), unlink("email", b"a"),
           link("email", b"a", b"ada@x.org")],
          [("email", "email:ada@x.org", True, day(2), None)], id="linked-again"),
        P([link("email", b"a", b"ada@x.org"), link("phone", b"p", b"+358401"),
           link("email", b"b", b"bob@x.org"), unlink("phone", b"p")],
          [("email", "email:ada@x.org", True, day(0), None),
           ("phone", "phone:+358401", False, day(1), day(3)),
           ("email", "email:bob@x.org", True, day(2), None)], id="in-order-first-linked"),
        P([link("email", b"a", b"?")], [], id="unopenable-left-out"),
        P([unlink("email", b"a")], [], id="unlink-of-nothing"),
    ],
)  # fmt: skip
def test_identities(specs: list[Spec], expected: list[tuple[Any, ...]]) -> None:
    got = identities(log(specs), opener)
    shape = [(i["type"], i["value"], i["linked"], i["linked_at"], i["unlinked_at"]) for i in got]
    assert shape == expected


def test_no_key_no_identities() -> None:
    assert identities(log([link("email", b"a", b"ada@x.org")]), None) == []


def test_document_lists_every_purpose_with_recipients_and_retention() -> None:
    doc = export_document(
        subject_id="cust-1",
        controller="Example Oy",
        generated_at=T,
        catalogue=CATALOGUE,
        identities=[],
        state={"purposes": []},
        history=[],
        purpose_versions=[],
    )
    assert (doc["subject_id"], doc["controller"], doc["generated_at"]) == (
        "cust-1",
        "Example Oy",
        "2026-03-01T00:00:00Z",
    )
    assert [p["id"] for p in doc["purposes"]] == list(CATALOGUE.ids)
    assert all({"basis", "recipients", "retention"} <= p.keys() for p in doc["purposes"])


def _newsletter_history() -> CatalogueHistory:
    """newsletter v1 from the epoch, v2 from March 10, retired (v3) March 20."""
    base = CATALOGUE.purposes["newsletter"]
    return CatalogueHistory(
        [
            *CatalogueHistory.from_catalogue(CATALOGUE).versions("newsletter"),
            PurposeVersion(
                T + timedelta(days=9), replace(base, version=2, basis="legitimate_interest")
            ),
            PurposeVersion(T + timedelta(days=19), PurposeRetirement("newsletter", 3)),
        ]
    )


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        P(None, 30, [], id="no-history"),
        P(0, 5, [(1, 9)], id="only-v1"),
        P(0, 30, [(1, 9), (2, 19)], id="both-then-retired"),
        P(12, 30, [(2, 19)], id="since-after-v2"),
        P(25, 30, [], id="after-retirement"),
        P(9, 9, [(2, 19)], id="v1-ended-at-since"),
    ],
)
def test_the_versions_in_force_over_the_subjects_history(
    since: int | None, until: int, expected: list[tuple[int, int | None]]
) -> None:
    def day(n: int) -> datetime:
        return T + timedelta(days=n)

    found = versions_in_force(
        _newsletter_history(), day(since) if since is not None else None, day(until)
    )
    got = [(v["version"], v["in_force_until"]) for v in found if v["id"] == "newsletter"]
    want = [
        (n, f"2026-03-{ended + 1:02d}T00:00:00Z" if ended is not None else None)
        for n, ended in expected
    ]
    assert got == want
    if any(n == 2 for n, _ in expected):
        (v2,) = [v for v in found if v["id"] == "newsletter" and v["version"] == 2]
        assert v2["basis"] == "legitimate_interest"
        assert v2["in_force_from"] == "2026-03-10T00:00:00Z"
