"""The Art. 30(1) record built from a catalogue: each part of the article from the catalogue
or the controller's settings, transfers outside the EU/EEA with their safeguard, and the CSV
sheet a spreadsheet reads back."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.proof.processing_record import (
    CSV_COLUMNS,
    LEDGER_DATA,
    Controller,
    as_csv,
    record,
)
from services.rules.catalogue import Catalogue, parse_purpose
from tests.unit.event_log import CATALOGUE

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONTROLLER = Controller(
    "Example Oy", "privacy@example.com", "FI", "", "customers and prospects (business contacts)"
)


def with_recipients(pid: str, recipients: list[Any], **changes: Any) -> Catalogue:
    entry = {**CATALOGUE.purposes[pid].as_json(), "recipients": recipients, **changes}
    # as_json writes `texts: {}` for a purpose without texts, which the parser reads as "none given"
    entry = {k: v for k, v in entry.items() if k not in ("id", "version") and v != {}}
    purpose = parse_purpose(pid, entry, version=3)
    return Catalogue({**CATALOGUE.purposes, pid: purpose})


def activity(document: dict[str, Any], pid: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [a for a in document["activities"] if a["purpose"] == pid]
    (only,) = found
    return only


def test_one_activity_per_purpose_in_catalogue_order() -> None:
    document = record(CATALOGUE, CONTROLLER, AT)
    assert [a["purpose"] for a in document["activities"]] == list(CATALOGUE.ids)
    assert document["at"] == "2026-03-01T12:00:00Z"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("controller", "name"), "Example Oy"),
        (("controller", "contact"), "privacy@example.com"),
        (("controller", "country"), "FI"),
        (("controller", "dpo_contact"), None),
        (("newsletter", "version"), 1),
        (("newsletter", "legal_basis"), "consent"),
        (("newsletter", "direct_marketing"), True),
        (("newsletter", "description"), CATALOGUE.purposes["newsletter"].text("en").description),
        (("newsletter", "data_subjects"), "customers and prospects (business contacts)"),
        (("newsletter", "personal_data"), ["e-mail address", *LEDGER_DATA]),
        (("newsletter", "retention"), CATALOGUE.purposes["newsletter"].retention),
        (("newsletter", "proof_retention"), "P3Y"),
        (("newsletter", "third_country_transfers"), []),
        (("legal_obligation", "description"), None),
        (("legal_obligation", "retention"), "P10Y"),
        (
            ("marketing_own", "personal_data"),
            ["e-mail address", "telephone number", "postal address", *LEDGER_DATA],
        ),
    ],
)
def test_each_part_of_the_article(path: tuple[str, str], expected: Any) -> None:
    document = record(CATALOGUE, CONTROLLER, AT)
    where, key = path
    found = document["controller"] if where == "controller" else activity(document, where)
    assert found[key] == expected


def test_a_recipient_outside_the_eea_is_a_transfer_with_its_safeguard() -> None:
    catalogue = with_recipients(
        "cookies_analytics",
        [
            {"name": "Analytics Ltd", "country": "IE"},
            {
                "name": "Analytics Inc.",
                "country": "US",
                "safeguard": "adequacy_decision",
                "safeguard_note": "DPF-certified",
            },
        ],
    )
    found = activity(record(catalogue, CONTROLLER, AT), "cookies_analytics")
    assert found["version"] == 3
    assert found["recipients"] == [
        {
            "name": "Analytics Ltd",
            "country": "IE",
            "safeguard": None,
            "safeguard_note": None,
            "transfer": False,
        },
        {
            "name": "Analytics Inc.",
            "country": "US",
            "safeguard": "adequacy_decision",
            "safeguard_note": "DPF-certified",
            "transfer": True,
        },
    ]
    assert found["third_country_transfers"] == [found["recipients"][1]]


def test_the_csv_sheet_has_one_row_per_activity_and_reads_back() -> None:
    catalogue = with_recipients(
        "newsletter",
        [
            '=HYPERLINK("http://x")',
            {
                "name": "Mailer Inc.",
                "country": "US",
                "safeguard": "standard_contractual_clauses",
                "safeguard_note": "module 3 clauses of 2021",
            },
        ],
    )
    rows = list(csv.reader(io.StringIO(as_csv(record(catalogue, CONTROLLER, AT)).decode())))
    assert rows[0] == list(CSV_COLUMNS)
    assert [r[0] for r in rows[1:]] == list(CATALOGUE.ids)
    newsletter = dict(zip(CSV_COLUMNS, rows[1 + CATALOGUE.ids.index("newsletter")], strict=True))
    assert newsletter["version"] == "3"
    assert newsletter["direct_marketing"] == "true"
    assert newsletter["recipients"] == (
        '\'=HYPERLINK("http://x") (FI); Mailer Inc. (US, standard_contractual_clauses: module 3'
        " clauses of 2021)"
    )
    assert newsletter["third_country_transfers"] == (
        "Mailer Inc. (US, standard_contractual_clauses: module 3 clauses of 2021)"
    )
    assert newsletter["personal_data"].startswith("e-mail address; pseudonymous subject identifier")


@pytest.mark.parametrize(
    ("joint", "representative", "expected", "notes"),
    [
        ("", "", {"joint_controllers": None, "representative": None}, 3),
        (
            "Partner Oy, privacy@partner.fi; ; Other AB, dpo@other.se",
            " EU Rep GmbH, rep@example.de ",
            {
                "joint_controllers": ["Partner Oy, privacy@partner.fi", "Other AB, dpo@other.se"],
                "representative": "EU Rep GmbH, rep@example.de",
            },
            1,
        ),
    ],
    ids=["none-declared", "declared"],
)
def test_joint_controllers_and_the_representative(
    joint: str, representative: str, expected: dict[str, Any], notes: int
) -> None:
    controller = replace(CONTROLLER, joint_controllers=joint, representative=representative)
    block = record(CATALOGUE, controller, AT)["controller"]
    assert {k: block[k] for k in expected} == expected
    assert len(block["notes"]) == notes
    for key, value in expected.items():
        assert (block["notes"].get(key) == "none declared") == (value is None)
    assert block["notes"]["dpo_contact"] == "none designated"


@pytest.mark.parametrize(
    ("contact", "missing"),
    [("privacy@example.com", []), ("", ["controller.contact"]), ("  ", ["controller.contact"])],
)
def test_a_missing_controller_contact_is_flagged(contact: str, missing: list[str]) -> None:
    document = record(CATALOGUE, replace(CONTROLLER, contact=contact), AT)
    assert document["missing"] == missing


def test_each_security_measure_says_who_takes_it_and_where_it_is_described() -> None:
    measures = record(CATALOGUE, CONTROLLER, AT)["security_measures"]
    assert {m["by"] for m in measures} == {"ledger", "operator"}
    docs = Path(__file__).parents[4]
    for m in measures:
        assert (docs / m["see"]).is_file(), m["see"]
    text = " ".join(m["measure"] for m in measures)
    # the checkpoint digests are MACed, and the backup file is not encrypted by the ledger
    assert "signed checkpoint" not in text and "MACed, not signed" in text
    [backup] = [m for m in measures if "backup" in m["measure"]]
    assert backup["by"] == "operator" and "unencrypted" in backup["measure"]
