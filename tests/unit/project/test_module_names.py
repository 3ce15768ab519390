"""Module names say what they hold: two modules share a name only when they are one concept on
two sides (an HTTP endpoint and its projection, say), and then each docstring names the other."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("services", "projections", "schemas")


def modules_by_name() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = defaultdict(list)
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name != "__init__.py":
                found[path.name].append(path)
    return found


def test_modules_that_share_a_name_name_each_other() -> None:
    unexplained = []
    for paths in modules_by_name().values():
        if len(paths) < 2:
            continue
        for path in paths:
            docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            others = [p.relative_to(ROOT).as_posix() for p in paths if p != path]
            missing = [other for other in others if other not in docstring]
            if missing:
                unexplained.append(f"{path.relative_to(ROOT)} does not name {', '.join(missing)}")
    assert unexplained == []


def test_the_top_of_services_holds_a_handful_of_modules() -> None:
    top = sorted(p.name for p in (ROOT / "services").glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 5, top
