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


@dataclass(frozen=True, slots=True)
class SecurityMeasure:
    """Art. 30(1)(g): one measure, who takes it (`ledger`: the code does, whatever the
    deployment; `operator`: the ledger leaves it to whoever runs it) and the documentation
    page that describes it."""

    measure: str
    by: str
    see: str

    def as_json(self) -> dict[str, str]:
        return {"measure": self.measure, "by": self.by, "see": self.see}


#: what the code does, each as its page says; what it leaves to the operator, said so
SECURITY_MEASURES: Final = (
    SecurityMeasure(
        "contact identifiers (e-mail addresses, telephone numbers) encrypted under a data key"
        " of their own subject, wrapped by the master key; erasure destroys the data key;"
        " lookups go through a keyed blind index (HMAC-SHA-256)",
        "ledger",
        "docs/developers/design/identities.md",
    ),
    SecurityMeasure(
        "every record the ledger writes to Kafka, events and checkpoints alike, carries an"
        " HMAC-SHA-256 under the writer key; the projector dead-letters a record without a valid"
        " one",
        "ledger",
        "docs/security/record-macs.md",
    ),
    SecurityMeasure(
        "each subject's events form a hash chain, and per-partition checkpoint digests of the"
        " whole log go to the checkpoint topic (MACed, not signed): `consent-ledger verify` and"
        " `checkpoint-verify` show an alteration, against checkpoints an auditor kept outside"
        " the ledger",
        "ledger",
        "docs/auditors/tamper-evidence.md",
    ),
    SecurityMeasure(
        "consent receipts signed with Ed25519, verifiable with the published public keys",
        "ledger",
        "docs/auditors/receipts.md",
    ),
    SecurityMeasure(
        "API access by scoped keys, stored only as keyed hashes (HMAC-SHA-256); reads of a"
        " subject's data (state, events, history, export, receipts, the auditor's page)"
        " recorded in the access log under the reading key's id before they answer; the live"
        " decision and the batch check are not",
        "ledger",
        "docs/auditors/access-log.md",
    ),
    SecurityMeasure(
        "transport encryption: Kafka over SASL_SSL (a warning at start where it is not) and"
        " PostgreSQL over TLS (`sslmode=verify-full` in DATABASE_URL), as the operator"
        " configures them",
        "operator",
        "docs/security.md",
    ),
    SecurityMeasure(
        "backups encrypted at rest: `consent-ledger backup` writes a compressed, unencrypted"
        " Avro file (pseudonymous ids, contact identifiers still encrypted) and PostgreSQL's"
        " own backups hold the wrapped data keys; encrypting and keeping both apart from the"
        " secrets file is the operator's duty",
        "operator",
        "docs/operators/backup-restore.md",
    ),
)
#: what a null field of the controller's block means
NONE_DECLARED: Final = "none declared"

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
    LEDGER_CONTROLLER_CONTACT, LEDGER_JURISDICTION, LEDGER_DPO_CONTACT,
    LEDGER_JOINT_CONTROLLERS, LEDGER_EU_REPRESENTATIVE) and (c) whose data it is
    (LEDGER_DATA_SUBJECTS)."""

    name: str
    contact: str
    country: str
    dpo_contact: str
    data_subjects: str
    #: Art. 26: "name, contact; name, contact" (LEDGER_JOINT_CONTROLLERS); empty: none
    joint_controllers: str = ""
    #: Art. 27 (LEDGER_EU_REPRESENTATIVE); empty: none
    representative: str = ""

    def as_json(self) -> dict[str, Any]:
        """The block, a field the settings leave empty as null with a note saying so."""
        joint = [j.strip() for j in self.joint_controllers.split(";") if j.strip()]
        block: dict[str, Any] = {
            "name": self.name,
            "contact": self.contact or None,
            "country": self.country,
            "dpo_contact": self.dpo_contact or None,
            "joint_controllers": joint or None,
            "representative": self.representative.strip() or None,
        }
        notes = {
            "dpo_contact": "none designated",
            "joint_controllers": NONE_DECLARED,
            "representative": NONE_DECLARED,
        }
        block["notes"] = {k: v for k, v in notes.items() if block[k] is None}
        return block

    def missing(self) -> list[str]:
        """What Art. 30(1)(a) asks for that the settings do not give."""
        wanted = {"controller.name": self.name, "controller.contact": self.contact}
        return [k for k, v in wanted.items() if not v.strip()]


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
        "controller": controller.as_json(),
        "missing": controller.missing(),
        "activities": [activity(p, controller) for p in catalogue.purposes.values()],
        "security_measures": [m.as_json() for m in SECURITY_MEASURES],
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
