"""The preference form's logic: current choices, parsing, changes, and what unsubscribes record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from projections.state import ALL, CONSENT, DM_OBJECTION, RELATIONSHIP, Fact, FactKey
from schemas import events as ev
from schemas.codec import default_codec
from schemas.events import Actor, Source
from services.web import pages
from services.web.preferences import (
    ALL_DIRECT_MARKETING,
    Change,
    Choices,
    Form,
    FormError,
    changes,
    choices_digest,
    current_choices,
    episode_key,
    groups,
    lift_evidence,
    link_actor,
    link_key,
    parse_form,
    preference_source,
    request_key,
    to_events,
    unsubscribe_changes,
)
from tests.unit.page_support import CATALOGUE, Page

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def fact(kind: str, a: str, b: str, type_: str, offset: int, **extra: object) -> Fact:
    return Fact(kind, a, b, type_, uuid.uuid4(), (0, offset), NOW, **extra)  # type: ignore[arg-type]


def state(*facts: Fact) -> dict[FactKey, Fact]:
    return {f.key: f for f in facts}


GRANT_NL = fact(CONSENT, "newsletter", "email", ev.CONSENT_GRANTED, 1)
EXPIRED_NL = fact(
    CONSENT, "newsletter", "email", ev.CONSENT_GRANTED, 1, until=NOW - timedelta(days=1)
)
WITHDRAW_ALL_PARTNERS = fact(CONSENT, "marketing_partners", ALL, ev.CONSENT_WITHDRAWN, 2)
GRANT_PARTNERS = fact(CONSENT, "marketing_partners", ALL, ev.CONSENT_GRANTED, 1)
LI = fact(RELATIONSHIP, "legitimate_interest", ALL, ev.RELATIONSHIP_RECORDED, 1)
OPT_OUT_OWN_SMS = fact(CONSENT, "marketing_own", "sms", ev.CONSENT_WITHDRAWN, 3)
OBJECTED = fact(DM_OBJECTION, ALL, ALL, ev.DIRECT_MARKETING_OBJECTED, 4)
OBJECTED_EMAIL = fact(DM_OBJECTION, ALL, "email", ev.DIRECT_MARKETING_OBJECTED, 4)
LIFTED = fact(DM_OBJECTION, ALL, ALL, ev.DIRECT_MARKETING_OBJECTION_LIFTED, 5)

OWN = {("marketing_own", c) for c in ("email", "sms", "phone", "post")}
PROFILING = {("profiling", c) for c in ("email", "web")}
PARTNERS = {("marketing_partners", c) for c in ("email", "sms", "phone", "post")}


@pytest.mark.parametrize(
    ("facts", "chosen", "objected"),
    [
        ((), set(), False),
        ((GRANT_NL,), {("newsletter", "email")}, False),
        ((EXPIRED_NL,), set(), False),
        ((GRANT_PARTNERS,), PARTNERS, False),
        ((GRANT_PARTNERS, WITHDRAW_ALL_PARTNERS), set(), False),
        ((LI,), OWN | PROFILING, False),
        ((LI, OPT_OUT_OWN_SMS), (OWN | PROFILING) - {("marketing_own", "sms")}, False),
        ((GRANT_NL, OBJECTED), {("newsletter", "email")}, True),
        ((GRANT_NL, OBJECTED_EMAIL), {("newsletter", "email")}, False),
        ((GRANT_NL, LIFTED), {("newsletter", "email")}, False),
    ],
    ids=[
        "nothing",
        "granted",
        "expired",
        "purpose-wide-grant",
        "purpose-wide-withdrawal",
        "legitimate-interest",
        "opted-out-one-channel",
        "objection-keeps-the-choices",
        "channel-objection-is-not-the-box",
        "lifted-objection",
    ],
)
def test_current_choices(
    facts: tuple[Fact, ...], chosen: set[tuple[str, str]], objected: bool
) -> None:
    assert current_choices(state(*facts), CATALOGUE, NOW) == Choices(frozenset(chosen), objected)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], Choices(frozenset(), False)),
        ([("choice", "newsletter.email")], Choices(frozenset({("newsletter", "email")}), False)),
        (
            [("choice", "newsletter.email"), ("choice", "newsletter.email")],
            Choices(frozenset({("newsletter", "email")}), False),
        ),
        ([("object", ALL_DIRECT_MARKETING)], Choices(frozenset(), True)),
    ],
    ids=["empty", "one", "repeated", "object"],
)
def test_parse_form(items: list[tuple[str, str]], expected: Choices) -> None:
    assert parse_form(items, CATALOGUE) == Form(expected, None)


def test_parse_form_takes_the_digest_of_the_page() -> None:
    digest = choices_digest(Choices(frozenset(), False))
    form = parse_form([("shown", digest), ("choice", "newsletter.email")], CATALOGUE)
    assert form == Form(Choices(frozenset({("newsletter", "email")}), False), digest)


@pytest.mark.parametrize(
    ("items", "named"),
    [
        ([("choice", "newsletter.sms")], "choice"),
        ([("choice", "legal_obligation.email")], "choice"),
        ([("choice", "newsletter")], "choice"),
        ([("choice", "<b>")], "choice"),
        ([("object", "yes")], "object"),
        ([("subject_id", "someone-else")], "field"),
        ([("shown", "not-a-digest")], "shown"),
        ([("shown", "A" * 64)], "shown"),
        ([("shown", "a" * 64), ("shown", "b" * 64)], "shown"),
    ],
    ids=["wrong-channel", "not-marketing", "no-channel", "markup", "object-value", "unknown",
         "shown-not-hex", "shown-upper", "shown-twice"],
)  # fmt: skip
def test_parse_form_refuses_what_the_page_never_sends(
    items: list[tuple[str, str]], named: str
) -> None:
    with pytest.raises(FormError, match=named):
        parse_form(items, CATALOGUE)


def picks(*pairs: tuple[str, str], objected: bool = False) -> Choices:
    return Choices(frozenset(pairs), objected)


NL = ("newsletter", "email")
OWN_SMS = ("marketing_own", "sms")
PROF_WEB = ("profiling", "web")


@pytest.mark.parametrize(
    ("current", "wanted", "expected"),
    [
        (picks(), picks(), []),
        (picks(NL), picks(NL), []),
        (picks(), picks(NL), [Change(ev.CONSENT_GRANTED, *NL)]),
        (picks(NL), picks(), [Change(ev.CONSENT_WITHDRAWN, *NL)]),
        (
            picks(NL, OWN_SMS),
            picks(OWN_SMS, PROF_WEB),
            [Change(ev.CONSENT_WITHDRAWN, *NL), Change(ev.CONSENT_GRANTED, *PROF_WEB)],
        ),
        (picks(NL), picks(NL, objected=True), [Change(ev.DIRECT_MARKETING_OBJECTED)]),
        (picks(NL, objected=True), picks(NL, objected=True), []),
        (picks(objected=True), picks(), [Change(ev.DIRECT_MARKETING_OBJECTION_LIFTED)]),
        (
            picks(NL, objected=True),
            picks(OWN_SMS),
            [
                Change(ev.DIRECT_MARKETING_OBJECTION_LIFTED),
                Change(ev.CONSENT_WITHDRAWN, *NL),
                Change(ev.CONSENT_GRANTED, *OWN_SMS),
            ],
        ),
        (
            picks(NL),
            picks(objected=True),
            [Change(ev.CONSENT_WITHDRAWN, *NL), Change(ev.DIRECT_MARKETING_OBJECTED)],
        ),
    ],
    ids=[
        "nothing",
        "unchanged",
        "tick",
        "untick",
        "several-in-catalogue-order",
        "object",
        "still-objected",
        "lift",
        "lift-first",
        "object-last",
    ],
)
def test_changes(current: Choices, wanted: Choices, expected: list[Change]) -> None:
    assert changes(current, wanted, CATALOGUE.marketing_purposes()) == expected


def submitted(current: Choices) -> Form:
    """What a browser posts for the page showing `current`, left as it is."""
    english = pages.page_language("en")
    html = pages.preferences_page(
        english,
        controller="ACME",
        groups=groups(CATALOGUE, current, english),
        objected=current.objected,
        shown=choices_digest(current),
    )
    fields = [
        (str(i["name"]), str(i["value"]))
        for i in Page(html).all("input")
        if i.get("type") == "hidden" or (i.get("type") == "checkbox" and "checked" in i)
    ]
    return parse_form(fields, CATALOGUE)


def test_submitting_the_page_unchanged_records_nothing() -> None:
    current = current_choices(state(GRANT_NL, LI, OPT_OUT_OWN_SMS, OBJECTED), CATALOGUE, NOW)
    form = submitted(current)
    assert form.shown == choices_digest(current)
    assert changes(current, form.wanted, CATALOGUE.marketing_purposes()) == []


def test_the_digest_of_a_page_no_longer_matches_after_an_unsubscribe_elsewhere() -> None:
    """The page showed the newsletter ticked; an unsubscribe through another message withdrew
    it since. The form, submitted unchanged, would grant it again: its digest tells it apart."""
    shown = current_choices(state(GRANT_NL), CATALOGUE, NOW)
    form = submitted(shown)
    now = current_choices(state(WITHDRAWN_NL), CATALOGUE, NOW)
    assert changes(now, form.wanted, CATALOGUE.marketing_purposes()) == [
        Change(ev.CONSENT_GRANTED, "newsletter", "email")
    ]
    assert form.shown != choices_digest(now)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (picks(), picks(objected=True)),
        (picks(NL), picks()),
        (picks(NL), picks(OWN_SMS)),
        (picks(NL, OWN_SMS), picks(NL)),
    ],
    ids=["objection", "one-box", "other-box", "one-more"],
)
def test_different_choices_have_different_digests(a: Choices, b: Choices) -> None:
    assert choices_digest(a) != choices_digest(b)
    assert choices_digest(picks(*sorted(a.chosen), objected=a.objected)) == choices_digest(a)


# --- what an unsubscribe records, and under which key ---------------------------------------

WITHDRAWN_NL = fact(CONSENT, "newsletter", "email", ev.CONSENT_WITHDRAWN, 6)
WITHDRAWN_ALL = fact(CONSENT, ALL, ALL, ev.CONSENT_WITHDRAWN, 6)
WITHDRAW = Change(ev.CONSENT_WITHDRAWN, "newsletter", "email")
OBJECT = Change(ev.DIRECT_MARKETING_OBJECTED)


@pytest.mark.parametrize(
    ("facts", "everything", "todo", "done"),
    [
        ((), False, [(WITHDRAW, None)], []),
        ((GRANT_NL,), False, [(WITHDRAW, GRANT_NL)], []),
        ((WITHDRAWN_NL,), False, [], [WITHDRAWN_NL]),
        ((WITHDRAWN_ALL,), False, [], [WITHDRAWN_ALL]),
        ((GRANT_NL,), True, [(WITHDRAW, GRANT_NL), (OBJECT, None)], []),
        ((WITHDRAWN_NL, OBJECTED), True, [], [WITHDRAWN_NL, OBJECTED]),
        ((WITHDRAWN_NL, LIFTED), True, [(OBJECT, LIFTED)], [WITHDRAWN_NL]),
        ((WITHDRAWN_NL, OBJECTED_EMAIL), True, [(OBJECT, None)], [WITHDRAWN_NL]),
    ],
    ids=[
        "nothing-yet",
        "granted",
        "already-withdrawn",
        "withdrawn-from-everything",
        "and-object",
        "already-both",
        "objection-lifted",
        "channel-objection-is-not-all",
    ],
)
def test_unsubscribe_changes(
    facts: tuple[Fact, ...],
    everything: bool,
    todo: list[tuple[Change, Fact | None]],
    done: list[Fact],
) -> None:
    pending, already = unsubscribe_changes(state(*facts), "newsletter", "email", everything)
    assert [(p.change, p.overrides) for p in pending] == todo
    assert already == done


@pytest.mark.parametrize(
    ("earlier", "overrides", "new_episode"),
    [
        (None, None, False),
        (None, GRANT_NL, False),
        ((0, 0), None, False),
        ((0, 5), GRANT_NL, False),
        ((0, 0), GRANT_NL, True),
    ],
    ids=["first-use", "first-use-over-a-grant", "repeat", "grant-projected-late", "regranted"],
)
def test_episode_key(
    earlier: tuple[int, int] | None, overrides: Fact | None, new_episode: bool
) -> None:
    first = link_key("TOKEN", WITHDRAW)
    assert first.startswith("unsubscribe:") and "TOKEN" not in first
    key = episode_key(first, earlier, overrides)
    assert key == (f"{first}:{GRANT_NL.event_id}" if new_episode else first)


@pytest.mark.parametrize(
    "link_id",
    ["0123456789abcdef0123456789abcdef", "89abcdef01234567"],
    ids=["link-id", "fingerprint-of-a-version-2-link"],
)
def test_preference_page_events_name_the_link_in_source_and_actor(link_id: str) -> None:
    """What the preference page records says it came through a link, and which one: the
    collection point and the actor id both name it (security review finding M3)."""
    assert preference_source("consent-ledger", link_id) == Source(
        "preference_center", "consent-ledger", f"preference_link:{link_id}"
    )
    assert link_actor(link_id) == Actor("subject", f"link:{link_id}")
    assert link_id in lift_evidence(link_actor(link_id))


def test_link_keys_differ_by_token_and_change() -> None:
    keys = {link_key(t, c) for t in ("A", "B") for c in (WITHDRAW, OBJECT)}
    assert len(keys) == 4


def test_events_carry_the_source_the_subject_and_the_campaign() -> None:
    source = Source("unsubscribe_link", "consent-ledger", "list_unsubscribe")
    todo = [
        WITHDRAW,
        OBJECT,
        Change(ev.CONSENT_GRANTED, "profiling", "web"),
        Change(ev.DIRECT_MARKETING_OBJECTION_LIFTED),
    ]
    events = to_events(todo, subject_id="s1", now=NOW, source=source, campaign_id="c1")
    assert [e.type for e in events] == [c.type for c in todo]
    assert {(e.subject_id, e.source, e.actor, e.occurred_at) for e in events} == {
        ("s1", source, Actor("subject"), NOW)
    }
    assert [dict(e.data) for e in events] == [
        {"purpose": "newsletter", "channel": "email", "reason": None, "campaign_id": "c1"},
        {"channel": None, "campaign_id": "c1"},
        {
            "purpose": "profiling",
            "channel": "web",
            "expires_at": None,
            "request_event_id": None,
            "evidence": None,
        },
        {"channel": None, "evidence": lift_evidence(Actor("subject"))},
    ]
    codec = default_codec()
    assert [codec.decode(codec.encode(e)) for e in events] == events


def test_events_through_a_preference_link_name_the_link_as_actor() -> None:
    link_id = "00112233445566778899aabbccddeeff"
    source = preference_source("consent-ledger", link_id)
    todo = [Change(ev.DIRECT_MARKETING_OBJECTION_LIFTED), Change(ev.CONSENT_GRANTED, "ads", "sms")]
    events = to_events(
        todo,
        subject_id="s1",
        now=NOW,
        source=source,
        campaign_id=None,
        actor=link_actor(link_id),
    )
    assert {(e.source, e.actor) for e in events} == {(source, Actor("subject", f"link:{link_id}"))}
    assert events[0].data["evidence"] == (
        "'stop all direct marketing' was unticked on the preference page opened with"
        f" link:{link_id}"
    )
    codec = default_codec()
    assert [codec.decode(codec.encode(e)) for e in events] == events


def test_preference_keys_ignore_facts_the_page_does_not_show() -> None:
    restriction = fact("restriction", "legal_claims", ALL, ev.PROCESSING_RESTRICTED, 9)
    plain = request_key("preference_center", "T", state(GRANT_NL), [WITHDRAW])
    assert plain == request_key("preference_center", "T", state(GRANT_NL, restriction), [WITHDRAW])
    assert plain != request_key("preference_center", "T", state(GRANT_NL, LI), [WITHDRAW])
    assert plain != request_key("preference_center", "T", state(GRANT_NL), [OBJECT])
    assert plain != request_key("preference_center", "U", state(GRANT_NL), [WITHDRAW])
