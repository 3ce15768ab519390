"""Which language a public page speaks: the page's own switch, the link's sealed language, the
browser's Accept-Language (region subtags and q-values honoured), the ledger's default."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.rules.languages import (
    LANGUAGES,
    MAX_ACCEPT_LANGUAGE,
    choose_language,
    from_accept_language,
    language_problem,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9,sv;q=0.8", "sv"),
        ("sv-FI", "sv"),
        ("en-GB", "en"),
        ("fi-FI,fi;q=0.9,en-US;q=0.8,en;q=0.7", "fi"),
        ("en;q=0.5, fi;q=0.8", "fi"),
        ("en, fi", "en"),
        ("fi;q=0.5, sv;q=0.5", "fi"),
        ("SV-se", "sv"),
        ("de, fr;q=0.9", None),
        ("fi;q=0, sv;q=0.1", "sv"),
        ("sv, fi;q=0", "sv"),
        ("fi;q=0, fi-FI", None),
        ("fi-FI;q=0, fi;q=0.4", "fi"),
        ("en;q=0.2, en-GB;q=0.9, fi;q=0.5", "en"),
        ("*", None),
        ("*, sv;q=0.1", "sv"),
        ("", None),
        ("fi;q=2", None),
        ("fi;q=abc, sv", "sv"),
        ("fi;level=1, sv", "sv"),
        ("f!, en", "en"),
        ("fi;q=0.001", "fi"),
        ("en ; q = 0.9 , fi ; q = 1.0", "fi"),
        ("de," * 30 + "fi", None),
        ("fi" + " " * MAX_ACCEPT_LANGUAGE, None),
    ],
    ids=["issue-example", "region", "en-GB", "browser-fi", "q-order", "header-order", "tie",
         "case", "none-offered", "q0-skips", "q0-late", "q0-wins", "q0-variant", "best-q-of-tag",
         "star", "star-and-sv", "empty", "q-too-big", "bad-q", "other-param", "bad-tag",
         "tiny-q", "spaces", "too-many-ranges", "too-long"],
)  # fmt: skip
def test_accept_language(header: str, expected: str | None) -> None:
    assert from_accept_language(header) == expected


@pytest.mark.parametrize(
    ("asked", "sealed", "header", "expected"),
    [
        ("sv", "fi", "en", "sv"),
        (None, "fi", "sv", "fi"),
        ("de", "fi", "sv", "fi"),
        ("", None, "sv-FI", "sv"),
        ("x" * 5000, "de", "de-DE,de;q=0.9,sv;q=0.8", "sv"),
        (None, None, "de", "en"),
        (None, None, None, "en"),
        ("FI", None, None, "en"),
    ],
    ids=["switch-first", "sealed-next", "unknown-asked", "accept-language", "junk-ignored",
         "default-when-none-offered", "default", "exact-codes-only"],
)  # fmt: skip
def test_choose_language(
    asked: str | None, sealed: str | None, header: str | None, expected: str
) -> None:
    assert choose_language(asked=asked, sealed=sealed, accept_language=header, default="en") == (
        expected
    )


@pytest.mark.parametrize(("value", "problem"), [("fi", None), ("sv", None), ("en", None),
                                               ("de", "must be one of fi, sv, en"),
                                               (7, "must be one of fi, sv, en")])  # fmt: skip
def test_language_problem(value: object, problem: str | None) -> None:
    assert language_problem(value) == problem


@given(
    asked=st.none() | st.text(max_size=20),
    sealed=st.none() | st.text(max_size=20),
    header=st.none() | st.text(max_size=700),
    default=st.sampled_from(LANGUAGES),
)
def test_any_input_chooses_a_language_of_the_pages(
    asked: str | None, sealed: str | None, header: str | None, default: str
) -> None:
    chosen = choose_language(asked=asked, sealed=sealed, accept_language=header, default=default)
    assert chosen in LANGUAGES
    if asked in LANGUAGES:
        assert chosen == asked
    elif sealed in LANGUAGES:
        assert chosen == sealed


_TAGS = st.sampled_from(["fi", "sv", "en", "de", "fr", "fi-FI", "sv-FI", "en-GB", "*", "x-y"])
_WEIGHTS = st.sampled_from([None, "0", "0.1", "0.5", "0.500", "0.9", "1", "1.0"])


@given(st.lists(st.tuples(_TAGS, _WEIGHTS), max_size=10))
def test_the_most_wanted_offered_language_wins(ranges: list[tuple[str, str | None]]) -> None:
    """Against a direct reading of RFC 9110: the offered language with the highest q of its
    ranges, the first such in the header, never one a bare `xx;q=0` refuses."""
    header = ", ".join(tag if q is None else f"{tag};q={q}" for tag, q in ranges)
    best: dict[str, float] = {}
    refused = {tag for tag, q in ranges if tag in LANGUAGES and q is not None and float(q) == 0}
    for tag, q in ranges:
        lang, weight = tag.split("-")[0], 1.0 if q is None else float(q)
        if lang in LANGUAGES and weight > 0 and lang not in refused:
            best[lang] = max(best.get(lang, 0.0), weight)
    top = max(best.values(), default=None)
    expected = next((lang for lang, q in best.items() if q == top), None)
    assert from_accept_language(header) == expected
