"""No module imports another module's private names: what a module shares, it names without a
leading underscore. ruff's PLC2701 exempts imports within one top-level package, which is every
import inside services/, so this test is the check."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FIRST_PARTY = ("services", "schemas", "projections", "tests", "bench")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(source: str) -> list[str]:
    """`module.name` for each private name `source` imports from a first-party module (or a
    relative one); `module._sub` for each private first-party module it imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.level == 0 and module.split(".")[0] not in FIRST_PARTY:
                continue
            if any(_private(part) for part in module.split(".") if part):
                found.append(module)
            prefix = module if module.endswith(".") else module + "."
            found += [prefix + a.name for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Import):
            found += [
                a.name
                for a in node.names
                if a.name.split(".")[0] in FIRST_PARTY and any(map(_private, a.name.split(".")))
            ]
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from services.api.read import _wait_for_token", ["services.api.read._wait_for_token"]),
        ("from services.http.subjects import wait_for_token", []),
        (
            "from services.web.routes import HEADERS, _DEPENDENCY_ERRORS as errors",
            ["services.web.routes._DEPENDENCY_ERRORS"],
        ),
        ("from tests.integration.support import _ring", ["tests.integration.support._ring"]),
        ("def f() -> None:\n    from projections.state import _fold", ["projections.state._fold"]),
        ("from . import _shared", ["._shared"]),
        ("from ._helpers import value", ["._helpers"]),
        ("import services.api._hidden", ["services.api._hidden"]),
        ("from __future__ import annotations", []),
        ("from services import __version__", []),
        ("from os import _exit", []),
        ("import json as _json", []),
    ],
)
def test_private_imports_are_found(source: str, expected: list[str]) -> None:
    assert private_imports(source) == expected


def test_no_module_imports_a_private_name_of_another() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for package in FIRST_PARTY
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in private_imports(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
