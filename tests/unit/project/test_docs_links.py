"""The README and the pages under docs/ link only to files and headings that exist, and the
README leads to the security page."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
#: an inline link or image: [text](target) — the target without spaces or a title
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans blanked."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append(re.sub(r"`[^`]*`", "``", line))
    return out


def slug(heading: str) -> str:
    """A heading's anchor as GitHub (and mkdocs' toc with its GitHub-style slugs) makes it."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: Counter[str] = Counter()
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        match = HEADING.match(line) if not fenced else None
        if match:
            base = slug(match.group(1))
            found.add(base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
    return found


def links(page: Path) -> list[str]:
    return [
        target
        for line in prose(page.read_text(encoding="utf-8"))
        for target in LINK.findall(line)
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_of_a_page_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        goal = (page.parent / path).resolve() if path else page
        if not goal.exists():
            broken.append(f"{target}: no such file")
        elif anchor and goal.suffix == ".md" and anchor not in anchors(goal):
            broken.append(f"{target}: no heading with that anchor")
    assert broken == []


def test_the_readme_links_to_the_security_page() -> None:
    assert "docs/security.md" in links(ROOT / "README.md")


def test_the_security_page_links_every_page_of_its_folder() -> None:
    linked = {
        (ROOT / "docs" / t.partition("#")[0]).resolve()
        for t in links(ROOT / "docs" / "security.md")
    }
    assert sorted(set((ROOT / "docs" / "security").glob("*.md")) - linked) == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Access control", "access-control"),
        ("What each key scope can do", "what-each-key-scope-can-do"),
        ("`restore FILE`", "restore-file"),
        ("M5 (a): personal data in `Idempotency-Key`", "m5-a-personal-data-in-idempotency-key"),
        ("Pool timeouts: a slow or exhausted database is a 503, not a queue",
         "pool-timeouts-a-slow-or-exhausted-database-is-a-503-not-a-queue"),
    ],
)  # fmt: skip
def test_anchors_are_made_as_github_makes_them(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor
