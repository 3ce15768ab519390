"""The record of processing activities (GDPR Art. 30(1)) built from the purpose catalogue in
force at an instant: one activity per purpose, as JSON or as a CSV sheet (pure).

The catalogue is the ledger's authority on purposes, legal bases, recipients and retention;
what it cannot know (the controller's contact, its DPO, who the data subjects are) comes from
the settings. Design decisions: docs/auditors/records-of-processing.md
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from schemas.events import rfc3339
from services.proof.history_formats import spreadsheet_safe
from services.rules.catalogue import Catalogue, Purpose, Recipient

#: bump when a field changes meaning or goes away; new fields may appear without a bump
RECORD_VERSION: Final = 1
FORMATS: Final = ("json", "csv")
MEDIA_TYPES: Final = {"json": "application/json", "csv": "text/csv; charset=utf-8"}

#: channel -> the category of personal data a purpose on it processes (Art. 30(1)(c))
CHANNEL_DATA: Final = {
    "email": "e-mail address",
    "sms": "telephone number",
    "phone": "telephone number",
    "post": "postal address",
    "web": "online identifiers and browsing data (cookies, device, IP address)",
}
#: what the ledger itself keeps for every purpose: the proof of Art. 7(1) and Art. 21
LEDGER_DATA: Final = (
    "pseudonymous subject identifier",
    "consents, withdrawals, objections and restrictions with when, how and under which"
    " privacy notice version they were expressed",
)
#: Art. 30(1)(g): the ledger's own measures; the security pages describe each
SECURITY_MEASURES: Final = (
    "contact identifiers encrypted under a per-subject data key that erasure destroys;"
    " looked up through a keyed blind index",
    "every record on the log authenticated with a MAC; per-subject hash chains and signed"
    " checkpoint digests make alterations evident",
    "API access by scoped keys stored only as keyed hashes; every read of a subject's data"
    " in the access log",
    "transport encryption to Kafka and PostgreSQL where configured; backups encrypted",
)
SECURITY_REFERENCE: Final = "docs/security/ of the consent ledger's documentation"

CSV_COLUMNS: Final = (
    "purpose",
    "version",
    "title",
    "description",
    "legal_basis",
    "direct_marketing",
    "dpv",
    "data_subjects",
    "personal_data",
    "recipients",
    "third_country_transfers",
    "retention",
    "proof_retention",
)


@dataclass(frozen=True, slots=True)
class Controller:
    """Art. 30(1)(a): who keeps the record (settings LEDGER_CONTROLLER_NAME,
    LEDGER_CONTROLLER_CONTACT, LEDGER_JURISDICTION, LEDGER_DPO_CONTACT) and (c) whose data
    it is (LEDGER_DATA_SUBJECTS)."""

    name: str
    contact: str
    country: str
    dpo_contact: str
    data_subjects: str


def recipient_json(recipient: Recipient) -> dict[str, Any]:
    """A recipient with its country and, outside the EU/EEA, the transfer's safeguard."""
    return {**recipient.as_json(), "transfer": recipient.transfer}


def personal_data(purpose: Purpose) -> list[str]:
    """The categories of personal data: the contact data of its channels, then the ledger's."""
    return list(dict.fromkeys([*(CHANNEL_DATA[c] for c in purpose.channels), *LEDGER_DATA]))


def activity(purpose: Purpose, controller: Controller) -> dict[str, Any]:
    """One processing activity: the purpose's version in force, in English (the record is
    the controller's, not a subscriber's page)."""
    text = purpose.text("en")
    recipients = [recipient_json(r) for r in purpose.recipients]
    return {
        "purpose": purpose.id,
        "version": purpose.version,
        "title": purpose.title,
        "description": text.description or None,
        "legal_basis": purpose.basis,
        "direct_marketing": purpose.direct_marketing,
        "dpv": purpose.dpv or None,
        "data_subjects": controller.data_subjects,
        "personal_data": personal_data(purpose),
        "recipients": recipients,
        "third_country_transfers": [r for r in recipients if r["transfer"]],
        "retention": purpose.retention,
        "proof_retention": purpose.proof_retention,
    }


def record(catalogue: Catalogue, controller: Controller, at: datetime) -> dict[str, Any]:
    """The Art. 30(1) record as of `at`, from `catalogue` (the one in force at `at`)."""
    return {
        "record_version": RECORD_VERSION,
        "at": rfc3339(at),
        "controller": {
            "name": controller.name,
            "contact": controller.contact or None,
            "country": controller.country,
            "dpo_contact": controller.dpo_contact or None,
        },
        "activities": [activity(p, controller) for p in catalogue.purposes.values()],
        "security_measures": {"summary": list(SECURITY_MEASURES), "see": SECURITY_REFERENCE},
    }


def _recipient_cell(recipient: dict[str, Any]) -> str:
    where = recipient["country"]
    if recipient["safeguard"]:
        where = f"{where}, {recipient['safeguard']}"
    if recipient.get("safeguard_note"):
        where = f"{where}: {recipient['safeguard_note']}"
    return f"{recipient['name']} ({where})"


def csv_rows(document: dict[str, Any]) -> Iterable[list[str]]:
    """One row per activity; lists joined with "; ", null as the empty cell, every cell
    spreadsheet-safe."""
    yield list(CSV_COLUMNS)
    for entry in document["activities"]:
        cells: dict[str, Any] = {
            **entry,
            "personal_data": "; ".join(entry["personal_data"]),
            "recipients": "; ".join(_recipient_cell(r) for r in entry["recipients"]),
            "third_country_transfers": "; ".join(
                _recipient_cell(r) for r in entry["third_country_transfers"]
            ),
            "direct_marketing": "true" if entry["direct_marketing"] else "false",
        }
        yield ["" if cells[c] is None else spreadsheet_safe(str(cells[c])) for c in CSV_COLUMNS]


def as_csv(document: dict[str, Any]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(csv_rows(document))
    return out.getvalue().encode("utf-8")
