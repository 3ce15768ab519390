"""Who receives a purpose's data, where, and on what ground a transfer outside the EU/EEA
rests (GDPR Art. 13(1)(e)-(f), 15(1)(c), 15(2), 30(1)(d)-(e), Chapter V): the recipients of a
catalogue entry, checked. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import iso3166

from services.rules.catalogue_errors import MAX_TEXT, CatalogueError

#: a plain-text recipient is in the controller's own country (a Finnish company)
CONTROLLER_COUNTRY: Final = "FI"
#: the EU member states and the other EEA states (Iceland, Liechtenstein, Norway), and the
#: parts of member states with codes of their own where the GDPR applies (Åland; the French
#: outermost regions Guadeloupe, French Guiana, Martinique, Réunion, Mayotte, Saint-Martin): a
#: transfer to them needs no Chapter V safeguard
EU_EEA: Final = frozenset(
    ("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
     "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "IS", "LI", "NO",
     "AX", "GF", "GP", "MQ", "RE", "YT", "MF")
)  # fmt: skip
#: the countries with a European Commission adequacy decision (GDPR Art. 45), as the
#: Commission's list stood on ADEQUACY_CHECKED, each with what the decision covers when it is
#: not the whole country; `adequacy_decision` is refused for any other country
ADEQUATE: Final = {
    "AD": "", "AR": "", "CA": "commercial organisations subject to PIPEDA", "CH": "", "FO": "",
    "GB": "", "GG": "", "IL": "", "IM": "", "JE": "", "JP": "", "KR": "", "NZ": "", "UY": "",
    "US": "DPF-certified recipients only",
}  # fmt: skip
ADEQUACY_CHECKED: Final = "2026-12-07"
#: ISO 3166-1 leaves these to private use (Kosovo's XK among them): no record of processing
#: can say unambiguously where data goes with one
_USER_ASSIGNED: Final = frozenset(
    [
        "AA",
        "ZZ",
        *(f"Q{c}" for c in "MNOPQRSTUVWXYZ"),
        *(f"X{c}" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    ]
)
#: the ground of a transfer outside the EU/EEA (GDPR Art. 45, 46(2)(c), 47, other 46, 49)
SAFEGUARDS: Final = (
    "adequacy_decision",
    "standard_contractual_clauses",
    "binding_corporate_rules",
    "art46_other",
    "art49_derogation",
)
_RECIPIENT_KEYS: Final = ("name", "country", "safeguard", "safeguard_note")
_ALPHA2: Final = frozenset(c.alpha2 for c in iso3166.countries)


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who receives a purpose's data and where (Art. 13(1)(e)-(f), 15(1)(c), 15(2), 30(1)(d)-(e)):
    `safeguard` names the ground of a transfer outside the EU/EEA and is None inside it."""

    name: str
    country: str = CONTROLLER_COUNTRY
    safeguard: str | None = None
    #: what the safeguard rests on in words (which clauses, the DPF certification, the
    #: derogation's ground): shown with it in the record of processing and the receipts
    safeguard_note: str | None = None

    @property
    def transfer(self) -> bool:
        """A transfer to a third country (GDPR Chapter V)."""
        return self.country not in EU_EEA

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "country": self.country,
            "safeguard": self.safeguard,
            "safeguard_note": self.safeguard_note,
        }


def parse_recipients(pid: str, value: Any) -> tuple[Recipient, ...]:
    """Required, so an access answer always says who gets the data; [] means nobody does. A
    plain string is a recipient in the controller's country; a table names the country and,
    outside the EU/EEA, the safeguard."""
    if not isinstance(value, list):
        raise CatalogueError(
            f"purposes.{pid}.recipients={value!r}; a list of recipients, each a description of"
            f" 1-{MAX_TEXT} characters or a table {{name, country, safeguard}} ([] when the data"
            " goes to nobody)",
            "recipients",
        )
    return tuple(_recipient(f"recipients[{i}]", pid, entry) for i, entry in enumerate(value))


def _recipient(field: str, pid: str, entry: Any) -> Recipient:
    where = f"purposes.{pid}.{field}"
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict) or set(entry) - set(_RECIPIENT_KEYS):
        raise CatalogueError(
            f"{where}={entry!r}; a description or a table of {', '.join(_RECIPIENT_KEYS)}", field
        )
    name = entry.get("name")
    if (
        not isinstance(name, str)
        or not name.strip()
        or len(name) > MAX_TEXT
        or not name.isprintable()
    ):
        raise CatalogueError(
            f"{where}.name must be text of 1-{MAX_TEXT} printable characters (no line"
            " breaks or control characters: it is a cell of the record of processing)",
            f"{field}.name",
        )
    country = entry.get("country", CONTROLLER_COUNTRY)
    if (
        not isinstance(country, str)
        or len(country) != 2
        or country not in _ALPHA2
        or country in _USER_ASSIGNED
    ):
        raise CatalogueError(
            f"{where}.country={country!r}; an ISO 3166-1 alpha-2 code such as FI, SE or US"
            " (user-assigned codes such as XK are refused)",
            f"{field}.country",
        )
    safeguard = entry.get("safeguard")
    if country in EU_EEA and safeguard is not None:
        raise CatalogueError(
            f"{where}.safeguard={safeguard!r}, but {country} is in the EU/EEA: a safeguard is"
            " named only for a transfer outside it",
            f"{field}.safeguard",
        )
    if country not in EU_EEA and safeguard not in SAFEGUARDS:
        raise CatalogueError(
            f"{where}.safeguard={safeguard!r}; {country} is outside the EU/EEA, so one of"
            f" {', '.join(SAFEGUARDS)} is required",
            f"{field}.safeguard",
        )
    if safeguard == "adequacy_decision" and country not in ADEQUATE:
        raise CatalogueError(
            f"{where}.safeguard='adequacy_decision', but {country} has no adequacy decision"
            f" (the European Commission's list as of {ADEQUACY_CHECKED}:"
            f" {', '.join(sorted(ADEQUATE))}); name another safeguard",
            f"{field}.safeguard",
        )
    note = entry.get("safeguard_note")
    if note is not None and (
        safeguard is None
        or not isinstance(note, str)
        or not note.strip()
        or len(note) > MAX_TEXT
        or not note.isprintable()
    ):
        raise CatalogueError(
            f"{where}.safeguard_note must be text of 1-{MAX_TEXT} printable characters, given"
            " only with a safeguard",
            f"{field}.safeguard_note",
        )
    return Recipient(name, country, safeguard, note)
