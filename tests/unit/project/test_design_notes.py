"""Module docstrings stay short, and a module whose design needs more points at its page under
docs/developers/design/, which names it back; the index lists every page."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DESIGN = ROOT / "docs" / "developers" / "design"
MODULES = sorted(
    p for package in ("services", "schemas", "projections") for p in (ROOT / package).rglob("*.py")
)
POINTER = re.compile(r"^Design: (docs/developers/design/[\w-]+\.md)$", re.MULTILINE)
#: lines of docstring text above which the design goes to a page of its own
LONGEST = 10


def docstring(module: Path) -> str:
    return ast.get_docstring(ast.parse(module.read_text(encoding="utf-8"))) or ""


def named(page: Path) -> set[str]:
    """The modules a design page has a section for (`## \\`services/...py\\``)."""
    return set(re.findall(r"^## `([\w/]+\.py)`$", page.read_text(encoding="utf-8"), re.MULTILINE))


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_docstring_is_short_and_its_pointer_leads_to_a_page_that_names_it(
    module: Path,
) -> None:
    text = docstring(module)
    lines = len(text.strip().splitlines())
    assert lines <= LONGEST, (
        f"the docstring has {lines} lines (at most {LONGEST}): keep a line or two of what the "
        "module is and why, move the design to a page under docs/developers/design/ and end "
        "the docstring with `Design: docs/developers/design/<page>.md`"
    )
    for pointer in POINTER.findall(text):
        page = ROOT / pointer
        assert page.is_file(), f"{pointer}: no such page"
        assert str(module.relative_to(ROOT)) in named(page), f"{pointer} has no section for it"


def test_every_design_page_is_in_the_index_and_names_only_modules_that_point_to_it() -> None:
    index = (DESIGN / "index.md").read_text(encoding="utf-8")
    pointing: dict[str, set[str]] = {}
    for module in MODULES:
        for pointer in POINTER.findall(docstring(module)):
            pointing.setdefault(pointer, set()).add(str(module.relative_to(ROOT)))
    pages = sorted(p for p in DESIGN.glob("*.md") if p.name != "index.md")
    assert pages
    for page in pages:
        assert f"]({page.name})" in index, (
            f"docs/developers/design/index.md: no link to {page.name}"
        )
        assert named(page) == pointing[str(page.relative_to(ROOT))], page.name
