"""README.md against the code: every setting, reason, event type, purpose and route is in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.events import EVENT_TYPES
from services.api.app import routes
from services.config import ENVIRONMENT
from services.rules.catalogue import load_catalogue
from services.rules.decisions import REASONS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PURPOSE_IDS = load_catalogue(ROOT / "services" / "rules" / "purposes.toml").ids
ROUTES = [
    (method, route.path)
    for route in routes()
    for method in sorted(route.methods or ())
    if method != "HEAD"
]


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


@pytest.mark.parametrize("command", ["make up", "make test"])
def test_quick_start_commands_come_first(readme: str, command: str) -> None:
    head = "\n".join(readme.splitlines()[:40])
    assert command in head, f"{command!r} is not in the first 40 lines of README.md"


@pytest.mark.parametrize("name", sorted(ENVIRONMENT))
def test_every_setting_has_a_row_with_its_default_and_meaning(readme: str, name: str) -> None:
    _, default, meaning = ENVIRONMENT[name]
    prefix = f"| `{name}` |"
    rows = [line for line in readme.splitlines() if line.startswith(prefix)]
    assert rows, f"README.md has no settings row for {name}"
    cells = [cell.strip() for cell in rows[0].strip().strip("|").split("|")]
    assert cells[1:] == [f"`{default}`" if default else "(empty)", meaning]


@pytest.mark.parametrize("reason", REASONS)
def test_every_decision_reason_is_documented(readme: str, reason: str) -> None:
    assert f"`{reason}`" in readme


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_is_documented(readme: str, event_type: str) -> None:
    assert f"| `{event_type}` |" in readme, f"no row for {event_type} in the events table"


@pytest.mark.parametrize("purpose_id", PURPOSE_IDS)
def test_every_purpose_is_in_the_catalogue_table(readme: str, purpose_id: str) -> None:
    assert f"| `{purpose_id}` |" in readme, f"no row for {purpose_id} in the catalogue table"


def test_routes_are_found() -> None:
    assert {path for _, path in ROUTES} == {route.path for route in routes()}


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_is_documented(readme: str, method: str, path: str) -> None:
    assert f"`{method} {path}`" in readme, f"README.md does not document {method} {path}"
