"""The purpose catalogue as events: a version to PurposeDefined / PurposeRetired data and back
(through the Avro codec too), content-derived event ids, what the file seeds, how it differs
from the log and what `purposes apply` records."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import events as ev
from schemas.codec import default_codec
from schemas.events import CHANNELS
from services.rules import catalogue
from services.rules.catalogue import (
    EU_EEA,
    LEGAL_BASES,
    SAFEGUARDS,
    Catalogue,
    Purpose,
    Recipient,
    load_catalogue,
)
from services.rules.catalogue_events import (
    APPLY_ACTOR,
    FILE_ACTOR,
    PurposeDifference,
    applied_versions,
    content_id,
    defined_data,
    differences,
    seeds,
    version_event,
    version_of,
)
from services.rules.catalogue_history import (
    EPOCH,
    TICK,
    CatalogueHistory,
    PurposeRetirement,
    PurposeVersion,
)

FILE = load_catalogue(Path(catalogue.__file__).parent / "purposes.toml")
NL, MP = "newsletter", "marketing_partners"
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
LOG = CatalogueHistory(PurposeVersion(EPOCH, p) for p in FILE.purposes.values())


def _file(**changes: Purpose | None) -> Catalogue:
    """The catalogue file with some purposes replaced (None: removed)."""
    kept = {pid: changes.get(pid, p) for pid, p in FILE.purposes.items()}
    kept.update({pid: p for pid, p in changes.items() if pid not in kept})
    return Catalogue({pid: p for pid, p in kept.items() if p is not None})


def _retired(pid: str) -> CatalogueHistory:
    return CatalogueHistory(
        [*(PurposeVersion(EPOCH, p) for p in FILE.purposes.values()),
         PurposeVersion(T0, PurposeRetirement(pid, 2))]
    )  # fmt: skip


NEW = Purpose("loyalty", "Loyalty club", "consent", True, ("email",), recipients=())
TITLED = replace(FILE.purposes[NL], title="Weekly news")
RESENT = replace(FILE.purposes[NL], channels=("sms",), direct_marketing=False)


@pytest.mark.parametrize(
    ("file", "log", "expected"),
    [
        (FILE, LOG, []),
        (_file(newsletter=TITLED), LOG, [PurposeDifference(NL, "changed", ("title",))]),
        (
            _file(newsletter=RESENT),
            LOG,
            [PurposeDifference(NL, "changed", ("direct_marketing", "channels"))],
        ),
        (_file(loyalty=NEW), LOG, [PurposeDifference("loyalty", "added")]),
        (_file(newsletter=None), LOG, [PurposeDifference(NL, "missing")]),
        (FILE, _retired(NL), [PurposeDifference(NL, "retired")]),
        (_file(newsletter=None), _retired(NL), []),
        (FILE, CatalogueHistory(()), [PurposeDifference(p, "added") for p in FILE.ids]),
    ],
    ids=["same", "title", "two-fields", "added", "missing", "retired", "retired-gone", "empty"],
)
def test_differences(
    file: Catalogue, log: CatalogueHistory, expected: list[PurposeDifference]
) -> None:
    assert differences(file, log) == expected


def test_a_version_number_alone_is_no_difference() -> None:
    assert differences(_file(newsletter=replace(FILE.purposes[NL], version=7)), LOG) == []


@pytest.mark.parametrize(
    ("file", "log", "expected"),
    [
        (FILE, LOG, []),
        (_file(newsletter=TITLED), LOG, [PurposeVersion(T0, replace(TITLED, version=2))]),
        # a purpose added to the file after the first start is in force from now, not 1970
        (_file(loyalty=NEW), LOG, [PurposeVersion(T0, NEW)]),
        (_file(newsletter=None), LOG, []),  # the file never retires a purpose
        (_file(newsletter=TITLED), _retired(NL), []),  # nor defines a retired one again
        # on a log without purpose events, apply records what the first start would
        (FILE, CatalogueHistory(()), [PurposeVersion(EPOCH, p) for p in FILE.purposes.values()]),
    ],
    ids=["same", "changed", "added", "missing", "retired", "first-start"],
)
def test_what_apply_records(
    file: Catalogue, log: CatalogueHistory, expected: list[PurposeVersion]
) -> None:
    assert applied_versions(file, log, T0) == expected


def test_purposes_added_together_are_in_force_in_the_files_order() -> None:
    """Each a microsecond after the one before, so the log lists them in the file's order
    whichever partitions their events land on."""
    zeta, alpha = replace(NEW, id="zeta"), replace(NEW, id="alpha")
    applied = applied_versions(_file(zeta=zeta, alpha=alpha), LOG, T0)
    assert [(v.id, v.in_force_from) for v in applied] == [
        ("zeta", T0),
        ("alpha", T0 + TICK),
    ]
    grown = CatalogueHistory([*(v for pid in LOG.ids for v in LOG.versions(pid)), *applied])
    assert grown.current.ids[-2:] == ("zeta", "alpha")


def test_applying_twice_records_nothing_more() -> None:
    file = _file(newsletter=TITLED, loyalty=NEW)
    log = CatalogueHistory([*LOG.versions(NL), *applied_versions(file, LOG, T0)])
    full = CatalogueHistory(
        [v for pid in LOG.ids for v in LOG.versions(pid)] + applied_versions(file, LOG, T0)
    )
    assert log.versions(NL)[-1].version == 2
    assert applied_versions(file, full, T0 + timedelta(days=1)) == []


def test_the_file_seeds_only_a_log_without_purpose_events() -> None:
    assert seeds(FILE, CatalogueHistory(())) == [
        PurposeVersion(EPOCH, p) for p in FILE.purposes.values()
    ]
    assert seeds(FILE, LOG) == []
    assert NL not in [v.id for v in seeds(FILE, _retired(NL))]  # never seeded again
    # a purpose added to the file later is a difference, never a seed since the epoch
    assert seeds(_file(loyalty=NEW), LOG) == []
    assert differences(_file(loyalty=NEW), LOG) == [PurposeDifference("loyalty", "added")]


def test_an_event_id_is_a_digest_of_the_content() -> None:
    one = version_event(PurposeVersion(EPOCH, FILE.purposes[NL]), T0, FILE_ACTOR)
    again = version_event(PurposeVersion(EPOCH, FILE.purposes[NL]), T0 + timedelta(1), APPLY_ACTOR)
    other = version_event(PurposeVersion(EPOCH, TITLED), T0, FILE_ACTOR)
    assert one.event_id == again.event_id != other.event_id
    assert one.event_id == content_id(ev.PURPOSE_DEFINED, defined_data(FILE.purposes[NL], EPOCH))
    assert (one.subject_id, one.type) == (f"purpose/{NL}", ev.PURPOSE_DEFINED)


def test_a_version_in_force_from_its_recording_carries_one_instant() -> None:
    """in_force_from and recorded_at are one instant, whatever `now` the sender read later."""
    event = version_event(PurposeVersion(T0, TITLED), T0 + timedelta(seconds=3), APPLY_ACTOR)
    assert event.recorded_at == event.occurred_at == event.data["in_force_from"] == T0
    seed = version_event(PurposeVersion(EPOCH, TITLED), T0, FILE_ACTOR)
    assert (seed.recorded_at, seed.data["in_force_from"]) == (T0, EPOCH)


def test_apply_records_a_change_after_the_latest_version_whatever_the_clock() -> None:
    later = CatalogueHistory(
        [*(v for pid in LOG.ids for v in LOG.versions(pid)),
         PurposeVersion(T0, replace(TITLED, version=2))]
    )  # fmt: skip
    [applied] = applied_versions(_file(newsletter=RESENT), later, T0 - timedelta(hours=1))
    assert applied.version == 3 and applied.in_force_from > T0


def test_a_retirement_carries_its_reason() -> None:
    retired = version_event(PurposeVersion(T0, PurposeRetirement(NL, 2)), T0, APPLY_ACTOR, "done")
    assert retired.type == ev.PURPOSE_RETIRED
    assert retired.data == {"purpose": NL, "version": 2, "in_force_from": T0, "reason": "done"}
    decoded = default_codec().decode(default_codec().encode(retired))
    assert version_of(decoded.type, decoded.data) == PurposeVersion(T0, PurposeRetirement(NL, 2))


_COUNTRIES = sorted(EU_EEA)
recipients = st.one_of(
    st.builds(Recipient, st.sampled_from(["Mailer Oy", "CRM AB"]), st.sampled_from(_COUNTRIES)),
    st.builds(
        Recipient,
        st.sampled_from(["Mailer Inc", "Ads Ltd"]),
        st.sampled_from(["US", "GB"]),
        st.sampled_from(SAFEGUARDS),
        st.sampled_from([None, "the 2021 clauses"]),
    ),
    st.builds(
        Recipient,
        st.just("Outsourcing Pvt"),
        st.just("IN"),
        st.sampled_from([s for s in SAFEGUARDS if s != "adequacy_decision"]),
    ),
)
titles = st.text(st.characters(codec="utf-8", categories=("L", "N", "Zs")), min_size=1).map(
    lambda t: t.strip() or "x"
)


@st.composite
def definitions(draw: st.DrawFn) -> Purpose:
    base = draw(st.sampled_from(list(FILE.purposes.values())))
    # re-consent on a material change needs a basis on which something is granted
    basis = draw(
        st.sampled_from(LEGAL_BASES[:2] if base.reconsent_on_material_change else LEGAL_BASES)
    )
    channels = tuple(draw(st.lists(st.sampled_from(CHANNELS), min_size=1, unique=True)))
    return replace(
        base,
        version=draw(st.integers(1, 10_000)),
        title=draw(titles.filter(lambda t: len(t) <= 200)),
        basis=basis,
        direct_marketing=draw(st.booleans()) and bool(base.texts),  # texts required then
        channels=channels,
        recipients=tuple(draw(st.lists(recipients, max_size=3))),
        browser_collectable=draw(st.booleans()) and basis == "consent" and "web" in channels,
    )


#: the instants an event may carry (schemas/event_limits.py)
instants = st.datetimes(datetime(1900, 1, 1), datetime(8999, 12, 31), timezones=st.just(UTC))


@given(definitions(), instants)
def test_a_definition_round_trips_through_its_event(purpose: Purpose, since: datetime) -> None:
    version = PurposeVersion(since, purpose)
    assert version_of(ev.PURPOSE_DEFINED, defined_data(purpose, since)) == version
    event = version_event(version, T0, FILE_ACTOR)
    decoded = default_codec().decode(default_codec().encode(event))
    assert decoded.event_id == event.event_id
    assert version_of(decoded.type, decoded.data) == version


def test_a_stored_version_is_read_as_recorded_under_rules_since_tightened() -> None:
    """Rules tightened after a version was recorded (a century's proof limit, the adequacy
    list, user-assigned codes) never drop it from the history: it is read as recorded."""
    loose = replace(
        FILE.purposes[NL],
        version=2,
        proof_retention="P99999Y",
        recipients=(
            Recipient("Ops Pvt", "IN", "adequacy_decision"),
            Recipient("Field office", "XK", "art49_derogation", "occasional"),
        ),
    )
    body = {k: v for k, v in loose.as_json().items() if k not in ("id", "version")}
    with pytest.raises(catalogue.CatalogueError, match="no adequacy decision"):
        catalogue.parse_purpose(NL, body)  # what a PUT of it would be told today
    read = version_of(ev.PURPOSE_DEFINED, defined_data(loose, T0))
    assert read == PurposeVersion(T0, loose)
    history = CatalogueHistory([*LOG.versions(NL), read])
    assert [v.version for v in history.versions(NL)] == [1, 2]
    assert history.next_version(NL) == 3
