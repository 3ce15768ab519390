"""The access and portability answer (GDPR Art. 15 and 20) for one subject, as one document.

Pure: the route reads the state, the history and the data key in one snapshot and hands them
here. The contact identifiers are the only plain personal data the ledger ever answers with,
and only in this document, to the caller asking for the subject: decrypted with the subject's
data key, every address or number the history ever linked (an erased subject has no key, so
none). Purposes come from the catalogue with their recipients and retention (Art. 15(1)(c),
(d)).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from schemas import events as ev
from schemas.events import Event, rfc3339
from services.rules.catalogue import Catalogue, Purpose
from services.rules.catalogue_history import CatalogueHistory

#: bump when a field changes meaning or goes away; new fields may appear without a bump
EXPORT_VERSION: Final = 1

#: (identifier type, ciphertext) -> the value, or None when it cannot be decrypted
Opener = Callable[[str, bytes], str | None]


def identities(events: Iterable[Event], open_: Opener | None) -> list[dict[str, Any]]:
    """Every identifier the subject's history linked, in the order first linked: the value
    (from the latest link's ciphertext), whether it is still linked, and when it changed."""
    if open_ is None:
        return []
    found: dict[tuple[str, bytes], dict[str, Any]] = {}
    for event in events:
        if event.type not in (ev.IDENTIFIER_LINKED, ev.IDENTIFIER_UNLINKED):
            continue
        kind = event.data["identifier_type"]
        key = (kind, bytes(event.data["blind_index"]))
        if event.type == ev.IDENTIFIER_LINKED:
            entry = found.setdefault(key, {"type": kind})
            entry.update(
                value=open_(kind, bytes(event.data["ciphertext"])),
                linked=True,
                linked_at=rfc3339(event.recorded_at),
                unlinked_at=None,
            )
        elif key in found:
            found[key].update(linked=False, unlinked_at=rfc3339(event.recorded_at))
    return [e for e in found.values() if e["value"] is not None]


def versions_in_force(
    history: CatalogueHistory, since: datetime | None, until: datetime
) -> list[dict[str, Any]]:
    """Every purpose version in force at some instant from `since` (the subject's first
    recorded event; None: no history, so none) to `until`, each with when it was in force
    (`in_force_until` null while it still is); retirements are left out."""
    if since is None:
        return []
    out = []
    for pid in history.ids:
        versions = history.versions(pid)
        for i, version in enumerate(versions):
            ended = versions[i + 1].in_force_from if i + 1 < len(versions) else None
            if not isinstance(version.definition, Purpose):
                continue
            if version.in_force_from > until or (ended is not None and ended <= since):
                continue
            out.append(
                {
                    **version.definition.as_json(),
                    "in_force_from": rfc3339(version.in_force_from),
                    "in_force_until": rfc3339(ended) if ended is not None else None,
                }
            )
    return out


def export_document(
    *,
    subject_id: str,
    controller: str,
    generated_at: datetime,
    catalogue: Catalogue,
    identities: list[dict[str, Any]],
    state: Mapping[str, Any],
    history: list[dict[str, Any]],
    purpose_versions: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "export_version": EXPORT_VERSION,
        "subject_id": subject_id,
        "controller": controller,
        "generated_at": rfc3339(generated_at),
        "identities": identities,
        "state": dict(state),
        "purposes": [p.as_json() for p in catalogue.purposes.values()],
        "purpose_versions": purpose_versions,
        "history": history,
    }
