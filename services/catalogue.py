"""The purpose catalogue: each purpose's legal basis, direct-marketing flag and channels.

Loaded once at start-up from a TOML file the operator edits; nothing on a hot path re-reads it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from schemas.events import CHANNELS

LEGAL_BASES: Final = ("consent", "legitimate_interest", "contract", "legal_obligation")


class CatalogueError(ValueError):
    """The catalogue file is unusable; the message names the purpose and the key."""


@dataclass(frozen=True, slots=True)
class Purpose:
    id: str
    title: str
    basis: str
    direct_marketing: bool
    channels: tuple[str, ...]
    dpv: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "basis": self.basis,
            "direct_marketing": self.direct_marketing,
            "channels": list(self.channels),
            "dpv": self.dpv,
        }


@dataclass(frozen=True, slots=True)
class Catalogue:
    purposes: dict[str, Purpose]

    def get(self, purpose_id: str) -> Purpose | None:
        return self.purposes.get(purpose_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self.purposes)


def load_catalogue(path: Path) -> Catalogue:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogueError(f"cannot read purpose catalogue {path}: {exc}") from exc
    entries = raw.get("purposes")
    if not isinstance(entries, dict) or not entries:
        raise CatalogueError(f"{path}: expected a [purposes.<id>] table for each purpose")
    return Catalogue({pid: _purpose(pid, entry) for pid, entry in entries.items()})


def _purpose(pid: str, entry: Any) -> Purpose:
    if not isinstance(entry, dict):
        raise CatalogueError(f"purposes.{pid} must be a table")
    basis = entry.get("basis")
    if basis not in LEGAL_BASES:
        raise CatalogueError(f"purposes.{pid}.basis={basis!r}; accepted: {', '.join(LEGAL_BASES)}")
    channels = entry.get("channels")
    if not isinstance(channels, list) or not channels or any(c not in CHANNELS for c in channels):
        raise CatalogueError(
            f"purposes.{pid}.channels={channels!r}; a non-empty list of {', '.join(CHANNELS)}"
        )
    direct_marketing = entry.get("direct_marketing", False)
    if not isinstance(direct_marketing, bool):
        raise CatalogueError(f"purposes.{pid}.direct_marketing must be true or false")
    return Purpose(
        id=pid,
        title=str(entry.get("title", pid)),
        basis=basis,
        direct_marketing=direct_marketing,
        channels=tuple(channels),
        dpv=str(entry.get("dpv", "")),
    )
