"""The purpose catalogue: the default one as the register's policy defines it, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.config import Settings
from services.rules.catalogue import (
    EU_EEA,
    CatalogueError,
    Recipient,
    load_catalogue,
    parse_purpose,
    purpose_id_ok,
)
from services.rules.languages import LANGUAGES

DEFAULT = load_catalogue(Settings.from_env({}).catalogue_file)

# id -> (legal basis, direct marketing), as the ledger-core issue fixes them
EXPECTED = {
    "customer_relationship": ("contract", False),
    "customer_communication": ("legitimate_interest", False),
    "web_services": ("contract", False),
    "research": ("legitimate_interest", False),
    "newsletter": ("consent", True),
    "marketing_own": ("legitimate_interest", True),
    "marketing_partners": ("consent", True),
    "profiling": ("legitimate_interest", True),
    "cookies_analytics": ("consent", False),
    "cookies_marketing": ("consent", True),
    "legal_obligation": ("legal_obligation", False),
}


def test_default_catalogue_has_exactly_the_register_purposes() -> None:
    assert set(DEFAULT.ids) == set(EXPECTED)


@pytest.mark.parametrize(("purpose_id", "expected"), EXPECTED.items())
def test_default_purpose_basis_and_direct_marketing(
    purpose_id: str, expected: tuple[str, bool]
) -> None:
    purpose = DEFAULT.get(purpose_id)
    assert purpose is not None
    assert (purpose.basis, purpose.direct_marketing) == expected
    assert purpose.channels and purpose.dpv


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("", "expected a \\[purposes.<id>\\] table"),
        ('[purposes.a]\nbasis = "whim"\nchannels = ["email"]', "purposes.a.basis"),
        ('[purposes.a]\nbasis = "consent"\nchannels = ["fax"]', "purposes.a.channels"),
        ('[purposes.a]\nbasis = "consent"\nchannels = []', "purposes.a.channels"),
        ('[purposes.a]\nbasis = "consent"\nchannels = ["email", "email"]', "each channel once"),
        (
            '[purposes.a]\nbasis = "consent"\nchannels = ["email"]\ndirect_marketing = "yes"',
            "purposes.a.direct_marketing",
        ),
        ("[purposes", "cannot read purpose catalogue"),
        (
            '[purposes.a]\nbasis = "consent"\nchannels = ["web"]\nrecipients = []'
            '\nretention = "P1Y"'
            "\nbrowser_collectable = 1",
            "purposes.a.browser_collectable must be true or false",
        ),
        (
            '[purposes.a]\nbasis = "consent"\nchannels = ["email"]\nrecipients = []'
            '\nretention = "P1Y"'
            "\nbrowser_collectable = true",
            "purposes.a.browser_collectable=true needs",
        ),
        (
            '[purposes.a]\nbasis = "contract"\nchannels = ["web"]\nrecipients = []'
            '\nretention = "P1Y"'
            "\nbrowser_collectable = true",
            "purposes.a.browser_collectable=true needs",
        ),
    ],
    ids=[
        "empty",
        "basis",
        "channel",
        "no-channels",
        "duplicate-channel",
        "dm-flag",
        "syntax",
        "collectable-flag",
        "collectable-off-web",
        "collectable-not-consent",
    ],
)
def test_a_broken_catalogue_is_refused_naming_the_key(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "purposes.toml"
    path.write_text(toml)
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(path)


def test_every_default_purpose_names_recipients_and_retention() -> None:
    for purpose in DEFAULT.purposes.values():
        assert purpose.recipients and purpose.retention, purpose.id
        assert purpose.as_json()["recipients"] == [
            {"name": r.name, "country": r.country, "safeguard": r.safeguard, "safeguard_note": None}
            for r in purpose.recipients
        ]


_BASE = '[purposes.a]\nbasis = "consent"\nchannels = ["email"]\n'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('retention = "P1Y"', "purposes.a.recipients"),
        ('recipients = "everyone"\nretention = "P1Y"', "purposes.a.recipients"),
        ('recipients = [""]\nretention = "P1Y"', "purposes.a.recipients"),
        ("recipients = []", "purposes.a.retention"),
        ('recipients = []\nretention = " "', "purposes.a.retention"),
        ('recipients = []\nretention = "P1X"', "not an ISO 8601 duration"),
        ('recipients = []\nretention = "PT"', "purposes.a.retention"),
        ('recipients = []\nretention = "P1YT"', "not an ISO 8601 duration"),
    ],
    ids=[
        "no-recipients",
        "recipients-text",
        "empty-recipient",
        "no-retention",
        "blank",
        "bad-unit",
        "bare-T",
        "dangling-T",
    ],
)
def test_recipients_and_retention_are_required_and_checked(
    tmp_path: Path, extra: str, message: str
) -> None:
    path = tmp_path / "purposes.toml"
    path.write_text(_BASE + extra)
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(path)


@pytest.mark.parametrize(
    "retention", ["P10Y", "P13M", "P1Y6M", "P30D", "PT12H", "P2W", "P1DT2H", "Permanent record"]
)
def test_retention_accepts_durations_and_sentences(tmp_path: Path, retention: str) -> None:
    path = tmp_path / "purposes.toml"
    path.write_text(_BASE + f'recipients = []\nretention = "{retention}"')
    assert load_catalogue(path).purposes["a"].retention == retention


def test_every_default_marketing_purpose_speaks_every_language() -> None:
    for purpose in DEFAULT.marketing_purposes():
        assert [t.language for t in purpose.texts] == list(LANGUAGES), purpose.id
        assert all(t.title and t.description for t in purpose.texts), purpose.id
        assert len({t.title for t in purpose.texts}) >= 2, f"{purpose.id}: titles left untranslated"
    newsletter = DEFAULT.purposes["newsletter"]
    assert newsletter.text("fi").title == "Uutiskirje"
    assert newsletter.text("sv").title == "Nyhetsbrev"
    assert newsletter.as_json()["texts"]["sv"]["title"] == "Nyhetsbrev"


def test_a_purpose_without_texts_reads_its_title_in_every_language() -> None:
    analytics = DEFAULT.purposes["cookies_analytics"]
    assert analytics.texts == () and analytics.as_json()["texts"] == {}
    assert (analytics.text("fi").title, analytics.text("fi").description) == (
        "Analytics cookies",
        "",
    )


_MARKETING = _BASE + 'direct_marketing = true\nrecipients = []\nretention = "P1Y"\n'
_TEXT = 'title = "T"\ndescription = "D"\n'
_NO_DESCRIPTION = '[purposes.a.texts.en]\ntitle = "T"\n'
_BLANK_TITLE = '[purposes.a.texts.en]\ntitle = " "\ndescription = "D"\n'
_OTHER = _BASE + 'recipients = []\nretention = "P1Y"\n'


def _texts(*languages: str, extra: str = "") -> str:
    return "".join(f"[purposes.a.texts.{lang}]\n{_TEXT}{extra}" for lang in languages)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (_MARKETING, r"purposes.a.texts=None; .* \(required on a direct-marketing purpose\)"),
        (_MARKETING + _texts("fi", "en"), r"purposes.a.texts=\['en', 'fi'\]"),
        (_MARKETING + _texts("fi", "sv", "en", "de"), r"texts=\['de', 'en', 'fi', 'sv'\]"),
        (_MARKETING + _texts("fi", "sv") + _NO_DESCRIPTION,
         "purposes.a.texts.en.description must be text"),
        (_MARKETING + _texts("fi", "sv") + _BLANK_TITLE, "purposes.a.texts.en.title must be text"),
        (_MARKETING + _texts("fi", "sv", "en", extra='note = "x"\n'),
         "purposes.a.texts.fi has keys other than title, description"),
        (_OTHER + _texts("en"), r"purposes.a.texts=\['en'\]"),
    ],
    ids=["none-on-marketing", "missing-sv", "unknown-language", "no-description", "blank-title",
         "unknown-key", "partial-on-other"],
)  # fmt: skip
def test_purpose_texts_are_checked_at_load(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "purposes.toml"
    path.write_text(toml)
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(path)


def test_purpose_texts_load_in_the_pages_order(tmp_path: Path) -> None:
    path = tmp_path / "purposes.toml"
    path.write_text(_MARKETING + _texts("en", "sv", "fi"))
    purpose = load_catalogue(path).purposes["a"]
    assert [t.language for t in purpose.texts] == ["fi", "sv", "en"]
    assert purpose.text("sv").description == "D"


_ONE = {"basis": "consent", "channels": ["email"], "retention": "P1Y"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Mailer Oy", Recipient("Mailer Oy", "FI", None)),
        ({"name": "Mailer AB", "country": "SE"}, Recipient("Mailer AB", "SE", None)),
        ({"name": "Mailer AS", "country": "NO"}, Recipient("Mailer AS", "NO", None)),
        (
            {"name": "Mailer Inc", "country": "US", "safeguard": "standard_contractual_clauses"},
            Recipient("Mailer Inc", "US", "standard_contractual_clauses"),
        ),
        (
            {"name": "Mailer Ltd", "country": "GB", "safeguard": "adequacy_decision"},
            Recipient("Mailer Ltd", "GB", "adequacy_decision"),
        ),
        (
            {
                "name": "Ads Inc",
                "country": "US",
                "safeguard": "adequacy_decision",
                "safeguard_note": "certified under the EU-US Data Privacy Framework",
            },
            Recipient(
                "Ads Inc",
                "US",
                "adequacy_decision",
                "certified under the EU-US Data Privacy Framework",
            ),
        ),
        ({"name": "Mailer Ab", "country": "AX"}, Recipient("Mailer Ab", "AX", None)),
        ({"name": "Mailer SARL", "country": "RE"}, Recipient("Mailer SARL", "RE", None)),
    ],
    ids=[
        "text-is-controller-country",
        "eu",
        "eea",
        "us-scc",
        "uk-adequacy",
        "us-dpf-note",
        "aland",
        "reunion",
    ],
)
def test_a_recipient_is_text_or_a_table(given: object, expected: Recipient) -> None:
    purpose = parse_purpose("a", {**_ONE, "recipients": [given]})
    assert purpose.recipients == (expected,)
    assert purpose.recipients[0].transfer is (expected.country not in EU_EEA)


@pytest.mark.parametrize(
    ("given", "field", "message"),
    [
        ({"name": "X", "country": "US"}, "recipients[0].safeguard", "outside the EU/EEA"),
        ({"name": "X", "country": "US", "safeguard": "trust"}, "recipients[0].safeguard", "one of"),
        ({"name": "X", "country": "SE", "safeguard": "art49_derogation"},
         "recipients[0].safeguard", "in the EU/EEA"),
        ({"name": "X", "country": "XX"}, "recipients[0].country", "ISO 3166-1 alpha-2"),
        ({"name": "X", "country": "fi"}, "recipients[0].country", "ISO 3166-1 alpha-2"),
        ({"name": "X", "country": "FIN"}, "recipients[0].country", "ISO 3166-1 alpha-2"),
        ({"name": "X", "country": 246}, "recipients[0].country", "ISO 3166-1 alpha-2"),
        ({"country": "FI"}, "recipients[0].name", "1-500 printable characters"),
        ({"name": "x" * 501}, "recipients[0].name", "1-500 printable characters"),
        ({"name": "Mailer\nInc"}, "recipients[0].name", "control characters"),
        ("Mailer\x00Inc", "recipients[0].name", "printable"),
        ({"name": "X", "city": "Espoo"}, "recipients[0]", "a table of name, country"),
        (7, "recipients[0]", "a description or a table"),
        ({"name": "X", "country": "IN", "safeguard": "adequacy_decision"},
         "recipients[0].safeguard", "no adequacy decision"),
        ({"name": "X", "country": "CN", "safeguard": "adequacy_decision"},
         "recipients[0].safeguard", "no adequacy decision"),
        ({"name": "X", "country": "GP", "safeguard": "standard_contractual_clauses"},
         "recipients[0].safeguard", "in the EU/EEA"),
        ({"name": "X", "country": "XK", "safeguard": "standard_contractual_clauses"},
         "recipients[0].country", "user-assigned"),
        ({"name": "X", "country": "US", "safeguard": "standard_contractual_clauses",
          "safeguard_note": "x" * 501}, "recipients[0].safeguard_note", "1-500"),
        ({"name": "X", "country": "US", "safeguard": "standard_contractual_clauses",
          "safeguard_note": "line\nbreak"}, "recipients[0].safeguard_note", "printable"),
        ({"name": "X", "country": "FI", "safeguard_note": "why"},
         "recipients[0].safeguard_note", "only with a safeguard"),
    ],
    ids=["no-safeguard", "unknown-safeguard", "safeguard-inside", "unknown-country",
         "lower-case", "alpha-3", "numeric", "no-name", "long-name", "name-line-break",
         "name-nul", "unknown-key", "number",
         "india-adequacy", "china-adequacy", "guadeloupe-is-eu", "kosovo-user-assigned",
         "long-note", "control-in-note", "note-without-safeguard"],
)  # fmt: skip
def test_a_recipient_is_refused_naming_its_field(given: object, field: str, message: str) -> None:
    """The last cases: adequacy only where the European Commission decided it, the EU's
    outermost regions and Åland inside the EU, no user-assigned code, a short printable note."""
    with pytest.raises(CatalogueError, match=message) as refused:
        parse_purpose("a", {**_ONE, "recipients": ["Fine Oy", given]})
    assert refused.value.field == field.replace("[0]", "[1]")


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({**_ONE, "recipients": [], "title": ""}, "title"),
        ({**_ONE, "recipients": [], "title": 3}, "title"),
        ({**_ONE, "recipients": [], "dpv": "not a term"}, "dpv"),
        ({**_ONE, "recipients": [], "dpv": "A" * 101}, "dpv"),
        ({**_ONE, "recipients": [], "direct_markting": True}, "direct_markting"),
        ({**_ONE, "recipients": [], "basis": "whim"}, "basis"),
        ({**_ONE, "recipients": [], "retention": "P1X"}, "retention"),
        ({**_ONE, "recipients": [], "texts": {"fi": {}}}, "texts"),
    ],
    ids=["blank-title", "number-title", "dpv-words", "dpv-long", "misspelt-key", "basis",
         "retention", "texts"],
)  # fmt: skip
def test_a_purpose_refusal_names_the_field(entry: dict[str, object], field: str) -> None:
    with pytest.raises(CatalogueError) as refused:
        parse_purpose("a", entry)
    assert refused.value.field == field


def test_parse_purpose_carries_the_version() -> None:
    purpose = parse_purpose("a", {**_ONE, "recipients": []}, version=4)
    assert (purpose.version, purpose.as_json()["version"]) == (4, 4)
    assert DEFAULT.purposes["newsletter"].version == 1


@pytest.mark.parametrize(
    "pid",
    ['"Weird Id/2"', '"2fast"', '"news-letter"', '"Newsletter"', '"a' + "b" * 64 + '"', '""'],
    ids=["space-slash", "digit-first", "hyphen", "capital", "65-characters", "empty"],
)
def test_a_purpose_id_the_api_could_not_name_is_refused(tmp_path: Path, pid: str) -> None:
    """An id outside a-z, 0-9, _ (a-z first, at most 64) would be seeded as purpose/<id> and
    then could never be changed or retired through /v1/purposes/{id}."""
    path = tmp_path / "purposes.toml"
    path.write_text(
        f'[purposes.{pid}]\nbasis = "consent"\nchannels = ["email"]\nrecipients = []\n'
        'retention = "P1Y"\n'
    )
    with pytest.raises(CatalogueError, match="purpose id") as refused:
        load_catalogue(path)
    assert refused.value.field == "id"


def test_every_default_purpose_id_is_one_the_api_names() -> None:
    assert all(purpose_id_ok(pid) for pid in DEFAULT.ids)
