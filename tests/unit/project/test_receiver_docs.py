"""The pages for sending tools against the code: every event type has a row saying what a
webhook receiver does with it, and the suppression list's CSV, as the API writes it, becomes a
file listmonk's importer takes (an `email` column, no empty address)."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from pathlib import Path

from schemas.events import EVENT_TYPES, PURPOSE_EVENTS
from services.api.suppressions import CSV_COLUMNS

DOCS = Path(__file__).resolve().parents[3] / "docs" / "integrators"
CONVERT = DOCS / "examples" / "suppressions_to_listmonk.py"


def receiver_rows() -> set[str]:
    """The event types named in the first cell of the receiver page's event table."""
    page = (DOCS / "webhook-receivers.md").read_text(encoding="utf-8")
    table = page.split("| Event type | What the receiver does |", 1)[1].split("\n\n", 1)[0]
    firsts = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return {name for cell in firsts for name in re.findall(r"`([A-Za-z]+)`", cell)}


def test_every_event_type_has_a_row_for_receivers() -> None:
    """Every type a webhook may subscribe to: purpose definitions are about no subject and are
    never delivered (see webhooks.md)."""
    assert receiver_rows() == set(EVENT_TYPES) - set(PURPOSE_EVENTS)


def test_the_mail_and_crm_pages_say_what_to_suppress_on_every_denying_event() -> None:
    for page in ("mail-tools.md", "crms.md"):
        text = (DOCS / page).read_text(encoding="utf-8")
        for kind in ("ProcessingObjected", "ProcessingObjectionResolved", "RelationshipEnded"):
            assert f"`{kind}`" in text, (page, kind)


def suppression_page(rows: list[dict[str, str]]) -> str:
    """A page of GET /v1/suppressions?format=csv&include_identifiers=true: its columns, CRLF."""
    out = io.StringIO()
    columns = [*CSV_COLUMNS, "address"]
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([row.get(c, "") for c in columns] for row in rows)
    return out.getvalue()


def entry(reason: str, address: str) -> dict[str, str]:
    return {
        "blind_index": "ab" * 32,
        "identifier_type": "email",
        "reason": reason,
        "since": "2026-11-25T19:12:10.783981Z",
        "event_id": "0c1f3e0a-7d55-5b8e-9c55-4f0f2b6f1a9d",
        "address": address,
    }


def test_the_suppression_csv_becomes_a_listmonk_blocklist_import(tmp_path: Path) -> None:
    first = tmp_path / "page-1.csv"
    second = tmp_path / "page-2.csv"
    first.write_text(
        suppression_page(
            [entry("objected_direct_marketing", "ada@example.com"), entry("erased", "")]
        ),
        newline="",
    )
    second.write_text(suppression_page([entry("withdrawn_all", "grace@example.com")]), newline="")

    done = subprocess.run(
        [sys.executable, str(CONVERT), str(first), str(second)],
        capture_output=True,
        text=True,
        check=True,
    )

    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    # listmonk requires `email` and reads `name`; an erased entry has no address to give it
    assert [(r["email"], bool(r["name"])) for r in rows] == [
        ("ada@example.com", True),
        ("grace@example.com", True),
    ]
    assert done.stdout.splitlines()[0] == "email,name"
    assert done.stderr.strip() == "2 addresses"


def test_a_list_asked_for_without_addresses_is_refused(tmp_path: Path) -> None:
    page = tmp_path / "page.csv"
    page.write_text(",".join(CSV_COLUMNS) + "\r\n" + "ab,email,erased,x,y\r\n")

    done = subprocess.run([sys.executable, str(CONVERT), str(page)], capture_output=True, text=True)

    assert done.returncode != 0
    assert "include_identifiers=true" in done.stderr
