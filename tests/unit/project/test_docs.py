"""The docs against the code: every setting, reason, event type, purpose and route is on the
page that owns its table, and the README's quick start comes first."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.events import EVENT_TYPES
from services.api.app import routes
from services.config import ENVIRONMENT
from services.rules.catalogue import load_catalogue
from services.rules.decisions import REASONS

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"
SETTINGS = DOCS / "operators" / "settings.md"
DECISIONS = DOCS / "integrators" / "decisions.md"
EVENTS = DOCS / "integrators" / "events.md"
PURPOSES = DOCS / "integrators" / "purposes.md"
HTTP_API = DOCS / "integrators" / "http-api.md"
PURPOSE_IDS = load_catalogue(ROOT / "services" / "rules" / "purposes.toml").ids
ROUTES = [
    (method, route.path)
    for route in routes()
    for method in sorted(route.methods or ())
    if method != "HEAD"
]


def read(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def settings_rows() -> dict[str, list[str]]:
    """The settings table: variable name -> the cells after it."""
    rows: dict[str, list[str]] = {}
    for line in read(SETTINGS).splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells[1:]
    return rows


@pytest.mark.parametrize("command", ["make up", "make test"])
def test_quick_start_commands_come_first(command: str) -> None:
    head = "\n".join(read(ROOT / "README.md").splitlines()[:40])
    assert command in head, f"{command!r} is not in the first 40 lines of README.md"


@pytest.mark.parametrize("name", sorted(ENVIRONMENT))
def test_every_setting_has_a_row_with_its_default_and_meaning(name: str) -> None:
    _, default, meaning = ENVIRONMENT[name]
    row = settings_rows().get(name)
    assert row is not None, f"{SETTINGS.relative_to(ROOT)} has no row for {name}"
    assert row == [f"`{default}`" if default else "(empty)", meaning], (
        f"the row of {name} in {SETTINGS.relative_to(ROOT)} differs from services/environment.py"
    )


def test_the_settings_table_has_no_row_the_code_lacks() -> None:
    unknown = sorted(set(settings_rows()) - set(ENVIRONMENT))
    assert unknown == [], f"rows for variables services/environment.py does not read: {unknown}"


@pytest.mark.parametrize("reason", REASONS)
def test_every_decision_reason_is_documented(reason: str) -> None:
    assert f"`{reason}`" in read(DECISIONS), f"{reason} is not in {DECISIONS.relative_to(ROOT)}"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_is_documented(event_type: str) -> None:
    assert f"| `{event_type}` |" in read(EVENTS), f"no row for {event_type} in the events table"


@pytest.mark.parametrize("purpose_id", PURPOSE_IDS)
def test_every_purpose_is_in_the_catalogue_table(purpose_id: str) -> None:
    assert f"| `{purpose_id}` |" in read(PURPOSES), f"no row for {purpose_id} in the catalogue"


def test_routes_are_found() -> None:
    assert {path for _, path in ROUTES} == {route.path for route in routes()}


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_is_documented(method: str, path: str) -> None:
    pages = [HTTP_API, *sorted(DOCS.rglob("*.md"))]
    found = [page for page in pages if f"`{method} {path}`" in read(page)]
    assert found, f"`{method} {path}` is on no page: document it in {HTTP_API.relative_to(ROOT)}"
