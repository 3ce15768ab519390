"""The purpose catalogue: each purpose's legal basis, direct-marketing flag, channels, recipients,
and its title and description in the pages' languages.

One version of each purpose; how versions follow each other over time is
`catalogue_history.py`. The same checks read the TOML file the operator edits and the body of
`PUT /v1/purposes/{id}` (`parse_purpose`), so a refusal names the same key either way.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from projections.periods import Duration, parse_duration
from schemas.events import CHANNELS
from services.rules.catalogue_errors import MAX_TEXT as MAX_TEXT
from services.rules.catalogue_errors import CatalogueError as CatalogueError
from services.rules.languages import LANGUAGES
from services.rules.recipients import CONTROLLER_COUNTRY as CONTROLLER_COUNTRY
from services.rules.recipients import EU_EEA as EU_EEA
from services.rules.recipients import SAFEGUARDS as SAFEGUARDS
from services.rules.recipients import Recipient as Recipient
from services.rules.recipients import parse_recipients

#: a purpose id: the key `purpose/<id>`, the API's path and every event naming it carry it
PURPOSE_ID_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_PURPOSE_ID: Final = 64
LEGAL_BASES: Final = ("consent", "legitimate_interest", "contract", "legal_obligation")
#: how long an erased subject's consent facts are kept as proof when a purpose does not say:
#: the general limitation period of claims in Finland (Act 728/2003, section 4)
DEFAULT_PROOF_RETENTION: Final = "P3Y"
#: the longest proof retention accepted: a century outlasts every limitation period, and a
#: longer one would only overflow the retention job's date arithmetic
MAX_PROOF_RETENTION_YEARS: Final = 100
#: a duration longer than this is no duration a person means (length checked before the regex)
MAX_DURATION_LEN: Final = 32
#: the instant a proof retention is measured from when it is checked (a leap day's year)
_MEASURED_FROM: Final = datetime(2000, 1, 1, tzinfo=UTC)
#: an ISO 8601 duration (P1Y6M, P13M, P10Y, P30D, PT12H); a retention starting with P and a
#: digit or T must be one, anything else is read as text ("while the customer relationship lasts")
ISO_DURATION_RE: Final = re.compile(
    r"P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?"
)
_LOOKS_LIKE_DURATION: Final = re.compile(r"P[\dT]")
_TEXT_KEYS: Final = ("title", "description")
_PURPOSE_KEYS: Final = (
    "title", "basis", "direct_marketing", "channels", "dpv", "recipients", "retention",
    "reconsent_on_material_change", "proof_retention", "texts", "browser_collectable",
)  # fmt: skip
_MAX_TERM: Final = 100
_DPV_TERM: Final = re.compile(r"(?:[A-Z][A-Za-z0-9]*)?")


@dataclass(frozen=True, slots=True)
class PurposeText:
    """What a subscriber reads about a purpose in one language: a title and a sentence or two."""

    language: str
    title: str
    description: str


@dataclass(frozen=True, slots=True)
class Purpose:
    id: str
    title: str
    basis: str
    direct_marketing: bool
    channels: tuple[str, ...]
    dpv: str = ""
    #: who receives the data for this purpose, and in which country
    recipients: tuple[Recipient, ...] = ()
    #: how long the data is kept: an ISO 8601 duration or a sentence (Art. 13(2)(a), 15(1)(d))
    retention: str = ""
    #: a material change of the privacy notice covering the purpose outdates earlier grants
    #: (decision `consent_outdated`); the loader's default is true on consent, else false
    reconsent_on_material_change: bool = False
    #: how long an erased subject's consent facts for the purpose are kept as proof (Art.
    #: 7(1), 17(3)(e)): an ISO 8601 duration counted from the erasure
    proof_retention: str = DEFAULT_PROOF_RETENTION
    #: the title and description in each of the pages' languages (every one, on a marketing
    #: purpose; none or every one on any other)
    texts: tuple[PurposeText, ...] = ()
    #: a website's banner may record it from a visitor's browser (POST /v1/collect/consents):
    #: only a consent purpose on the `web` channel
    browser_collectable: bool = False
    #: counts the purpose's definitions from 1; a new definition takes the next number
    version: int = 1

    def text(self, language: str) -> PurposeText:
        """The purpose's words in `language`; `title` (and no description) if it has none."""
        for text in self.texts:
            if text.language == language:
                return text
        return PurposeText(language, self.title, "")

    def proof_period(self) -> Duration:
        return parse_duration(self.proof_retention)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "basis": self.basis,
            "direct_marketing": self.direct_marketing,
            "channels": list(self.channels),
            "dpv": self.dpv,
            "recipients": [r.as_json() for r in self.recipients],
            "retention": self.retention,
            "reconsent_on_material_change": self.reconsent_on_material_change,
            "proof_retention": self.proof_retention,
            "browser_collectable": self.browser_collectable,
            "texts": {
                t.language: {"title": t.title, "description": t.description} for t in self.texts
            },
        }


@dataclass(frozen=True, slots=True)
class Catalogue:
    purposes: dict[str, Purpose]

    def get(self, purpose_id: str) -> Purpose | None:
        return self.purposes.get(purpose_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self.purposes)

    def browser_collectable(self) -> list[Purpose]:
        """The purposes a website's banner may record, in catalogue order."""
        return [p for p in self.purposes.values() if p.browser_collectable]

    def marketing_purposes(self) -> list[Purpose]:
        """The direct-marketing purposes, in catalogue order."""
        return [p for p in self.purposes.values() if p.direct_marketing]


def load_catalogue(path: Path) -> Catalogue:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogueError(f"cannot read purpose catalogue {path}: {exc}") from exc
    entries = raw.get("purposes")
    if not isinstance(entries, dict) or not entries:
        raise CatalogueError(f"{path}: expected a [purposes.<id>] table for each purpose")
    for pid in entries:
        if not purpose_id_ok(pid):
            raise CatalogueError(
                f"{path}: purpose id {pid[:80]!r} must be 1-{MAX_PURPOSE_ID} characters: a-z"
                " first, then a-z, 0-9 or _ (it is the key purpose/<id> and part of the API's"
                " paths, so it could not be changed or retired otherwise)",
                "id",
            )
    return Catalogue({pid: parse_purpose(pid, entry) for pid, entry in entries.items()})


def purpose_id_ok(pid: str) -> bool:
    """A usable purpose id (length checked before the pattern)."""
    return len(pid) <= MAX_PURPOSE_ID and PURPOSE_ID_RE.fullmatch(pid) is not None


def parse_purpose(pid: str, entry: Any, version: int = 1) -> Purpose:
    """One purpose from its TOML table or a JSON object of the same keys, checked."""
    if not isinstance(entry, dict):
        raise CatalogueError(f"purposes.{pid} must be a table")
    unknown = sorted(set(entry) - set(_PURPOSE_KEYS))
    if unknown:
        raise CatalogueError(
            f"purposes.{pid} has unknown keys {unknown}; accepted: {', '.join(_PURPOSE_KEYS)}",
            unknown[0],
        )
    basis = entry.get("basis")
    if basis not in LEGAL_BASES:
        raise CatalogueError(
            f"purposes.{pid}.basis={basis!r}; accepted: {', '.join(LEGAL_BASES)}", "basis"
        )
    channels = entry.get("channels")
    if not isinstance(channels, list) or not channels or any(c not in CHANNELS for c in channels):
        raise CatalogueError(
            f"purposes.{pid}.channels={channels!r}; a non-empty list of {', '.join(CHANNELS)}",
            "channels",
        )
    if len(set(channels)) != len(channels):
        raise CatalogueError(f"purposes.{pid}.channels={channels!r}; each channel once", "channels")
    direct_marketing = entry.get("direct_marketing", False)
    if not isinstance(direct_marketing, bool):
        raise CatalogueError(
            f"purposes.{pid}.direct_marketing must be true or false", "direct_marketing"
        )
    return Purpose(
        id=pid,
        version=version,
        title=_title(pid, entry.get("title", pid)),
        basis=basis,
        direct_marketing=direct_marketing,
        channels=tuple(channels),
        dpv=_dpv(pid, entry.get("dpv", "")),
        recipients=parse_recipients(pid, entry.get("recipients")),
        retention=_retention(pid, entry.get("retention")),
        reconsent_on_material_change=_reconsent(pid, basis, entry),
        proof_retention=_proof_retention(pid, entry.get("proof_retention")),
        texts=_texts(pid, entry.get("texts"), direct_marketing),
        browser_collectable=_browser_collectable(pid, entry, basis, channels),
    )


def _browser_collectable(pid: str, entry: dict[str, Any], basis: str, channels: list[Any]) -> bool:
    """Optional (default false); true only on a consent purpose with the `web` channel: a
    banner records consent, and on the web."""
    value = entry.get("browser_collectable", False)
    if not isinstance(value, bool):
        raise CatalogueError(
            f"purposes.{pid}.browser_collectable must be true or false", "browser_collectable"
        )
    if value and (basis != "consent" or "web" not in channels):
        raise CatalogueError(
            f'purposes.{pid}.browser_collectable=true needs basis = "consent" and "web" among'
            f" its channels (it has basis {basis!r}, channels {channels!r})",
            "browser_collectable",
        )
    return value


def _texts(pid: str, value: Any, direct_marketing: bool) -> tuple[PurposeText, ...]:
    """Every language's title and description: required on a marketing purpose, which the
    public pages show; optional on the others, but then complete too."""
    if value is None and not direct_marketing:
        return ()
    if not isinstance(value, dict) or sorted(value) != sorted(LANGUAGES):
        given = sorted(value) if isinstance(value, dict) else value
        required = " (required on a direct-marketing purpose)" if direct_marketing else ""
        raise CatalogueError(
            f"purposes.{pid}.texts={given!r}; a table with a title and a description for each of"
            f" {', '.join(LANGUAGES)}{required}",
            "texts",
        )
    texts = []
    for language in LANGUAGES:
        entry = value[language]
        words: dict[str, str] = {}
        for key in _TEXT_KEYS:
            text = entry.get(key) if isinstance(entry, dict) else None
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
                raise CatalogueError(
                    f"purposes.{pid}.texts.{language}.{key} must be text of 1-{MAX_TEXT}"
                    " characters",
                    f"texts.{language}.{key}",
                )
            words[key] = text
        if isinstance(entry, dict) and set(entry) - set(_TEXT_KEYS):
            raise CatalogueError(
                f"purposes.{pid}.texts.{language} has keys other than {', '.join(_TEXT_KEYS)}",
                f"texts.{language}",
            )
        texts.append(PurposeText(language, words["title"], words["description"]))
    return tuple(texts)


def _proof_retention(pid: str, value: Any) -> str:
    """Optional (default P3Y); when given, a duration the retention job can count with: longer
    than nothing (P0D would purge the Art. 7(1) proof at once) and at most a century."""
    if value is None:
        return DEFAULT_PROOF_RETENTION
    ends: datetime | None = None
    try:
        if isinstance(value, str) and len(value) <= MAX_DURATION_LEN:
            ends = parse_duration(value).after(_MEASURED_FROM)
    except (ValueError, OverflowError):  # DurationError, or a count no calendar reaches
        ends = None
    longest = _MEASURED_FROM.replace(year=_MEASURED_FROM.year + MAX_PROOF_RETENTION_YEARS)
    if not isinstance(value, str) or ends is None or not _MEASURED_FROM < ends <= longest:
        shown = value if not isinstance(value, str) or len(value) <= MAX_TEXT else value[:40] + "…"
        raise CatalogueError(
            f"purposes.{pid}.proof_retention={shown!r}; an ISO 8601 duration longer than"
            f" nothing and at most P{MAX_PROOF_RETENTION_YEARS}Y, such as P3Y, P18M or P90D",
            "proof_retention",
        )
    return value


def _reconsent(pid: str, basis: str, entry: dict[str, Any]) -> bool:
    """Default true where consent is the basis; grants exist only on consent and legitimate
    interest, so the flag means nothing on the other bases."""
    value = entry.get("reconsent_on_material_change", basis == "consent")
    if not isinstance(value, bool):
        raise CatalogueError(
            f"purposes.{pid}.reconsent_on_material_change must be true or false",
            "reconsent_on_material_change",
        )
    if value and basis not in ("consent", "legitimate_interest"):
        raise CatalogueError(
            f"purposes.{pid}.reconsent_on_material_change=true needs basis consent or"
            f" legitimate_interest, not {basis}: nothing is granted on {basis}",
            "reconsent_on_material_change",
        )
    return value


def _title(pid: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise CatalogueError(
            f"purposes.{pid}.title must be text of 1-{MAX_TEXT} characters", "title"
        )
    return value


def _dpv(pid: str, value: Any) -> str:
    """Empty, or a term of the W3C Data Privacy Vocabulary (a CamelCase name)."""
    if not isinstance(value, str) or len(value) > _MAX_TERM or not _DPV_TERM.fullmatch(value):
        raise CatalogueError(
            f"purposes.{pid}.dpv={value!r}; a DPV purpose term such as ServiceProvision"
            f" (letters and digits, at most {_MAX_TERM})",
            "dpv",
        )
    return value


def _retention(pid: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise CatalogueError(
            f"purposes.{pid}.retention={value!r}; an ISO 8601 duration (e.g. P10Y) "
            f"or a sentence of 1-{MAX_TEXT} characters",
            "retention",
        )
    if _LOOKS_LIKE_DURATION.match(value) and not ISO_DURATION_RE.fullmatch(value):
        raise CatalogueError(
            f"purposes.{pid}.retention={value!r} is not an ISO 8601 duration; e.g. P10Y, P13M,"
            " P30D",
            "retention",
        )
    return value
