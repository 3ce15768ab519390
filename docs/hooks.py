"""mkdocs hook: the design notes under docs/developers/design/ join the Developers section of
the nav by themselves, so a new note needs no nav entry (and strict mode still sees every page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def on_config(config: Any) -> Any:
    notes = sorted(Path(config["docs_dir"], "developers", "design").glob("*.md"))
    pages = [f"developers/design/{note.name}" for note in notes]
    for section in config["nav"]:
        if "Developers" in section and pages:
            section["Developers"].append({"Design notes": pages})
    return config
