"""Every validator of request input costs at most linear time: a string's length is checked
before any regular expression sees it, and the patterns that do run are linear.

Linearity is shown without a clock: every compiled pattern of the ledger's modules (and the
`re` module's functions) is wrapped while a validator runs, recording how much text each
search is given, and failing at once when a pattern is handed more than the longest text a
field takes whole (a notice URL, 2000 characters). Before this check a 1 MiB subject id went
to a pattern that is quadratic on it: about 35 minutes of CPU.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from starlette.requests import Request

from schemas import events
from schemas.events import BY_IDENTIFIER, EMAIL_LIKE_RE, SUBJECT_ID_RE, subject_id_problem
from services.api.batch_request import parse_batch
from services.api.commands import Context
from services.api.notices import MAX_URL, build_notice
from services.http.body import Fields, check_subject_id, parse_time, query_fields
from services.http.problems import ProblemError
from services.identity.api_keys import KeyRefused, bearer_key
from services.identity.identities import IdentifierError, normalise_email, normalise_phone
from services.ledger.tokens import TokenError, decode_snapshot_token, decode_token, token_positions
from services.telemetry.logs import MAX_LOGGED, JsonFormatter, mask_emails
from services.telemetry.request_context import request_id_for
from tests.unit.event_log import CATALOGUE, NOW

P = pytest.param
#: the longest text a validator hands a pattern whole: a notice's URL
LONGEST_FIELD = MAX_URL
MIB = 1024 * 1024
LEDGER_PACKAGES = ("services", "schemas", "projections")
RE_FUNCTIONS = ("search", "match", "fullmatch", "sub", "subn", "split", "findall", "finditer")


class PatternTooLong(AssertionError):
    """A pattern was handed more text than any field takes."""


def _watch(seen: list[int], size: int, what: str) -> None:
    seen.append(size)
    if size > LONGEST_FIELD:
        raise PatternTooLong(f"{what} was given {size} characters")


class WatchedPattern:
    """A compiled pattern that records the length of the text each call may look at."""

    def __init__(self, pattern: re.Pattern[Any], seen: list[int]) -> None:
        self._pattern = pattern
        self._seen = seen

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pattern, name)

    def _span(self, string: Any, pos: int = 0, endpos: int = sys.maxsize) -> None:
        size = max(0, min(len(string), endpos) - pos)
        _watch(self._seen, size, f"pattern {self._pattern.pattern!r}")

    def search(self, string: Any, pos: int = 0, endpos: int = sys.maxsize) -> Any:
        self._span(string, pos, endpos)
        return self._pattern.search(string, pos, endpos)

    def match(self, string: Any, pos: int = 0, endpos: int = sys.maxsize) -> Any:
        self._span(string, pos, endpos)
        return self._pattern.match(string, pos, endpos)

    def fullmatch(self, string: Any, pos: int = 0, endpos: int = sys.maxsize) -> Any:
        self._span(string, pos, endpos)
        return self._pattern.fullmatch(string, pos, endpos)

    def sub(self, repl: Any, string: Any, count: int = 0) -> Any:
        self._span(string)
        return self._pattern.sub(repl, string, count)

    def subn(self, repl: Any, string: Any, count: int = 0) -> Any:
        self._span(string)
        return self._pattern.subn(repl, string, count)

    def split(self, string: Any, maxsplit: int = 0) -> Any:
        self._span(string)
        return self._pattern.split(string, maxsplit)

    def findall(self, string: Any, pos: int = 0, endpos: int = sys.maxsize) -> Any:
        self._span(string, pos, endpos)
        return self._pattern.findall(string, pos, endpos)

    def finditer(self, string: Any, pos: int = 0, endpos: int = sys.maxsize) -> Any:
        self._span(string, pos, endpos)
        return self._pattern.finditer(string, pos, endpos)


def _watched_function(function: Callable[..., Any], seen: list[int]) -> Callable[..., Any]:
    def watched(pattern: Any, *args: Any, **kwargs: Any) -> Any:
        # (pattern, string, ...) for search/match/...; (pattern, repl, string, ...) for sub
        string = args[1] if function.__name__ in ("sub", "subn") else args[0]
        _watch(seen, len(string), f"re.{function.__name__}({pattern!r})")
        return function(pattern, *args, **kwargs)

    return watched


@contextmanager
def watched_patterns() -> Iterator[list[int]]:
    """While inside, every module-level pattern of the ledger's packages and every `re`
    function records the text it is given; yields the recorded lengths."""
    seen: list[int] = []
    replaced: list[tuple[object, str, object]] = []
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").split(".")[0] not in LEDGER_PACKAGES:
            continue
        for name, value in list(vars(module).items()):
            if isinstance(value, re.Pattern):
                replaced.append((module, name, value))
                setattr(module, name, WatchedPattern(value, seen))
    for name in RE_FUNCTIONS:
        function = getattr(re, name)
        replaced.append((re, name, function))
        setattr(re, name, _watched_function(function, seen))
    try:
        yield seen
    finally:
        for owner, name, value in reversed(replaced):
            setattr(owner, name, value)


REFUSALS = (ProblemError, TokenError, IdentifierError, KeyRefused)


def _fields(name: str, value: str) -> Fields:
    return Fields({name: value})


def _notice(value: str) -> None:
    body = {"version": value, "effective_from": value, "text_sha256": value, "url": value}
    build_notice(
        Fields({**body, "material": True, "language": value}), Context("x", NOW, CATALOGUE)
    )


def _batch_with(field: str) -> Callable[[str], object]:
    def run(text: str) -> object:
        body: dict[str, Any] = {"purpose": "newsletter", "channel": "email", "subjects": ["s-1"]}
        body[field] = [text] if field in ("subjects", "min_tokens") else text
        return parse_batch(body, CATALOGUE)

    return run


#: every validator that takes request text: a query value, a path segment, a body field or a
#: header; each is given the same huge text
VALIDATORS: list[Any] = [
    P(subject_id_problem, id="subject-id"),
    P(check_subject_id, id="subject-id-in-a-path"),
    P(lambda v: _fields("subject_id", v).subject_id(), id="subject-id-in-a-query-or-body"),
    P(lambda v: _fields("after", v).subject_id("after"), id="reconsent-cursor"),
    P(lambda v: _fields("note", v).text("note", max_len=1000, free_text=True), id="free-text"),
    P(lambda v: _fields("at", v).instant("at"), id="instant"),
    P(parse_time, id="parse-time"),
    P(_batch_with("subjects"), id="batch-subject-ids"),
    P(_batch_with("campaign_id"), id="batch-campaign-id"),
    P(_batch_with("min_tokens"), id="batch-min-tokens"),
    P(_notice, id="notice-fields"),
    P(request_id_for, id="x-request-id"),
    P(decode_token, id="min-token"),
    P(token_positions, id="min-tokens-entry"),
    P(decode_snapshot_token, id="snapshot-token"),
    P(normalise_email, id="email-lookup"),
    P(normalise_phone, id="phone-lookup"),
    P(lambda v: bearer_key(f"Bearer {v}"), id="api-key"),
]
#: texts that make a backtracking pattern work hardest: long runs of one class, an `@` at an
#: end, many separators
HUGE_TEXTS = [
    P("a" * MIB, id="letters"),
    P("a" * MIB + "@", id="letters-then-at"),
    P("@" + "a" * MIB, id="at-then-letters"),
    P("a." * (MIB // 2), id="dotted"),
    P("1" * MIB, id="digits"),
    P("2026-01-31T12:00:00." + "0" * MIB + "Z", id="long-fraction"),
]


@pytest.mark.parametrize("text", HUGE_TEXTS)
@pytest.mark.parametrize("validator", VALIDATORS)
def test_no_pattern_is_handed_more_than_a_field_takes(
    validator: Callable[[str], object], text: str
) -> None:
    with watched_patterns() as seen, suppress(*REFUSALS):
        validator(text)
    assert max(seen, default=0) <= LONGEST_FIELD


def test_the_watch_sees_the_ledgers_patterns() -> None:
    """The check above would prove nothing if the wrapping missed the patterns."""
    with watched_patterns() as seen:
        assert subject_id_problem("crm:42") is None
        assert _fields("note", "write to a@b.example").text("note", free_text=True) is None
        with pytest.raises(PatternTooLong):
            events.SUBJECT_ID_RE.fullmatch("a" * (LONGEST_FIELD + 1))
    assert seen[:2] == [6, len("write to a@b.example")]


def test_a_huge_subject_id_is_refused_for_its_length() -> None:
    for text in ("a" * MIB, "a@" * (MIB // 2)):
        with watched_patterns():
            found = subject_id_problem(text)
        assert found == (
            f"is {len(text)} characters long; must be 1-128 characters from letters, digits"
            " and . _ : -"
        )
    with pytest.raises(ProblemError) as caught, watched_patterns():
        check_subject_id("a" * MIB)
    assert caught.value.status == 422
    assert [(e["field"], e["detail"][:25]) for e in caught.value.errors] == [
        ("subject_id", "is 1048576 characters lon")
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        P("crm:42", None, id="an-id"),
        P("x" * 128, None, id="128-characters"),
        P("a.b_c-d:9", None, id="every-punctuation-mark"),
        P("", "is 0 characters long; must be 1-128", id="empty"),
        P("x" * 129, "is 129 characters long; must be 1-128", id="129-characters"),
        P("jane@example.com", "looks like an e-mail address", id="an-address"),
        P("jane@example", "looks like an e-mail address", id="anything-with-an-at"),
        P("a b", "must be 1-128 characters from letters", id="a-space"),
        P("crm/42", "must be 1-128 characters from letters", id="a-slash"),
        P(BY_IDENTIFIER, f"{BY_IDENTIFIER!r} is reserved", id="reserved"),
    ],
)
def test_subject_id_problems(value: str, problem: str | None) -> None:
    found = subject_id_problem(value)
    assert found == problem if problem is None else (found or "").startswith(problem)


@given(st.text(st.sampled_from("aZ9._:-@ /é"), max_size=140) | st.text(max_size=140))
@example("a" * 129)
def test_a_subject_id_is_the_pattern_without_the_reserved_word(value: str) -> None:
    problem = subject_id_problem(value)
    expected = bool(SUBJECT_ID_RE.fullmatch(value)) and value != BY_IDENTIFIER
    assert (problem is None) == expected
    if problem is not None and 1 <= len(value) <= 128 and "@" in value:
        assert problem.startswith("looks like an e-mail address")


#: the free-text e-mail pattern before it was anchored on the `@` (quadratic on long words)
FORMER_EMAIL_LIKE = re.compile(r"[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+")


@given(st.text(st.sampled_from("ab.@ <>\n"), max_size=40))
@example("jane.doe@example.com")
@example("a@.b")
@example("a@b.")
def test_the_free_text_address_pattern_finds_what_the_former_one_found(text: str) -> None:
    assert (EMAIL_LIKE_RE.search(text) is None) == (FORMER_EMAIL_LIKE.search(text) is None)


#: the log mask before it was anchored on the `@` (quadratic on long words)
FORMER_MASK = re.compile(
    r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
    re.IGNORECASE,
)


@given(st.text(st.sampled_from("ab1.-+%40@ ="), max_size=60))
@example("email=bob%2Bnews%40example.com&x=1")
@example("a@b.com@c.org")
@example("%40%40a%40b.com")
def test_the_log_mask_masks_what_the_former_one_masked(text: str) -> None:
    """Within RFC 5321's lengths (64 before the `@`, 255 after) the masks agree."""
    assert mask_emails(text) == FORMER_MASK.sub("[email]", text)


@pytest.mark.parametrize(
    "text",
    [
        P("a" * (MAX_LOGGED - 1) + "@", id="letters-then-at"),
        P("@" * MAX_LOGGED, id="at-signs"),
        P("%40" * (MAX_LOGGED // 3), id="encoded-at-signs"),
        P("a@" + "b." * (MAX_LOGGED // 2 - 2), id="a-long-domain"),
    ],
)
def test_masking_looks_at_a_bounded_window_around_each_at_sign(text: str) -> None:
    with watched_patterns() as seen:
        mask_emails(text)
    assert max(seen, default=0) <= 255


def test_a_huge_log_message_keeps_its_head_and_tail_and_is_masked() -> None:
    message = "head ada@example.com " + "x" * MIB + " tail bob@example.com"
    made = logging.LogRecord("consent_ledger.test", logging.INFO, __file__, 1, message, (), None)
    with watched_patterns() as seen:
        logged = json.loads(JsonFormatter().format(made))["message"]
    assert logged.startswith("head [email] xxx") and logged.endswith("xxx tail [email]")
    assert f" [... {len(message) - MAX_LOGGED} characters left out ...] " in logged
    assert len(logged) < MAX_LOGGED + 100
    assert max(seen, default=0) <= 255


# --- repeated query parameters ---------------------------------------------------------


def _request(query: bytes) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query})


@pytest.mark.parametrize(
    ("query", "repeated"),
    [
        P(b"", [], id="none"),
        P(b"purpose=newsletter&channel=email", [], id="distinct"),
        P(b"a=1&a=1", ["a"], id="same-value-twice"),
        P(b"email=x&b=2&email=y", ["email"], id="different-values"),
        P(b"z=&y=&z=&y=&x=", ["y", "z"], id="several-named-in-order"),
        P(b"a=" + b"&a=" * 999, ["a"], id="a-thousand-times"),
    ],
)
def test_repeated_query_parameters_are_named(query: bytes, repeated: list[str]) -> None:
    if not repeated:
        assert query_fields(_request(query)).data == dict(_request(query).query_params)
        return
    with pytest.raises(ProblemError) as caught:
        query_fields(_request(query))
    assert caught.value.status == 422
    assert [e["field"] for e in caught.value.errors] == repeated
    assert all(e["detail"] == "is given more than once" for e in caught.value.errors)


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.sampled_from(["", "1", "x"]))))
def test_exactly_the_repeated_parameters_are_refused(items: list[tuple[str, str]]) -> None:
    query = "&".join(f"{name}={value}" for name, value in items).encode()
    counts = Counter(name for name, _ in items)
    expected = sorted(name for name, n in counts.items() if n > 1)
    try:
        found = query_fields(_request(query))
    except ProblemError as exc:
        assert [e["field"] for e in exc.errors] == expected
    else:
        assert expected == [] and found.data == dict(items)


class CountedName(str):
    """A parameter name that counts the comparisons made with it."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        CountedName.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


@pytest.mark.parametrize("repeated", [True, False])
def test_counting_parameters_compares_each_name_a_bounded_number_of_times(
    repeated: bool,
) -> None:
    """Linear, counted without a clock: one comparison per parameter and lookup, where
    `names.count(name)` per parameter made n * n."""
    n = 3000
    names = [CountedName("a" if repeated else f"p{i}") for i in range(n)]
    items = [(name, "") for name in names]
    params = SimpleNamespace(multi_items=lambda: items)
    CountedName.compared = 0
    try:
        query_fields(cast(Request, SimpleNamespace(query_params=params)))
    except ProblemError:
        assert repeated
    assert CountedName.compared <= 4 * n
