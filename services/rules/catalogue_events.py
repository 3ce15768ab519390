"""The purpose catalogue as events: a purpose's version as `PurposeDefined` or `PurposeRetired`
data and back, what the catalogue file would seed into a log, and how the file differs from
the log. Pure.

Design: docs/developers/design/purpose-catalogue.md
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from schemas import events as ev
from services.rules.catalogue import Catalogue, Purpose, PurposeText, Recipient
from services.rules.catalogue_history import (
    EPOCH,
    TICK,
    CatalogueHistory,
    PurposeRetirement,
    PurposeVersion,
    same_definition,
)

#: event ids of purpose events derive from their content: the same seed written twice (two
#: processes starting at once, a retry) is one event, which the projector keeps once
PURPOSE_NAMESPACE: Final = uuid.UUID("7d0e4f1c-2b8a-5c3e-9f61-0a4b6c8d2e17")


def defined_data(purpose: Purpose, in_force_from: datetime) -> dict[str, Any]:
    """The fields of a PurposeDefined event after the envelope."""
    return {
        "purpose": purpose.id,
        "version": purpose.version,
        "in_force_from": in_force_from,
        "title": purpose.title,
        "texts": [
            {"language": t.language, "title": t.title, "description": t.description}
            for t in purpose.texts
        ],
        "basis": purpose.basis,
        "direct_marketing": purpose.direct_marketing,
        "channels": list(purpose.channels),
        "dpv": purpose.dpv,
        "recipients": [r.as_json() for r in purpose.recipients],
        "retention": purpose.retention,
        "proof_retention": purpose.proof_retention,
        "reconsent_on_material_change": purpose.reconsent_on_material_change,
        "browser_collectable": purpose.browser_collectable,
    }


def retired_data(
    purpose_id: str, version: int, in_force_from: datetime, reason: str | None
) -> dict[str, Any]:
    return {
        "purpose": purpose_id,
        "version": version,
        "in_force_from": in_force_from,
        "reason": reason,
    }


def version_of(event_type: str, data: Mapping[str, Any]) -> PurposeVersion:
    """The version a purpose event records (its data as the projection keeps it), read as
    recorded: the rules checked it when it was recorded, and a rule tightened since must not
    drop it from the history (the past would change, and its number would be taken again)."""
    pid, number, since = data["purpose"], data["version"], data["in_force_from"]
    if event_type == ev.PURPOSE_RETIRED:
        return PurposeVersion(since, PurposeRetirement(pid, number))
    purpose = Purpose(
        id=pid,
        version=number,
        title=data["title"],
        basis=data["basis"],
        direct_marketing=data["direct_marketing"],
        channels=tuple(data["channels"]),
        dpv=data["dpv"],
        recipients=tuple(
            Recipient(r["name"], r["country"], r.get("safeguard"), r.get("safeguard_note"))
            for r in data["recipients"]
        ),
        retention=data["retention"],
        reconsent_on_material_change=data["reconsent_on_material_change"],
        proof_retention=data["proof_retention"],
        texts=tuple(
            PurposeText(t["language"], t["title"], t["description"]) for t in data["texts"]
        ),
        browser_collectable=data["browser_collectable"],
    )
    return PurposeVersion(since, purpose)


def content_id(event_type: str, data: Mapping[str, Any]) -> uuid.UUID:
    """The event id of a purpose event: a digest of what it says."""
    text = json.dumps({"type": event_type, **data}, sort_keys=True, default=str)
    return uuid.uuid5(PURPOSE_NAMESPACE, text)


def seeds(file: Catalogue, log: CatalogueHistory) -> list[PurposeVersion]:
    """On the first start only (a log holding no purpose event at all): the file's purposes as
    their first versions in force since the epoch, since the file governed every decision made
    before the log recorded the catalogue. Afterwards the log is the truth: a purpose added to
    the file is a difference (`added`) that `purposes apply` records from then on, never a seed
    that would rewrite the past."""
    if log.ids:
        return []
    return [PurposeVersion(EPOCH, p) for p in file.purposes.values()]


#: the kinds of difference, in the order `purposes diff` explains them
CHANGES: Final = ("added", "changed", "retired", "missing")


@dataclass(frozen=True, slots=True)
class PurposeDifference:
    """How the catalogue file differs from the log on one purpose: `added` (only in the file),
    `changed` (the named fields differ), `retired` (in the file, retired in the log: never
    seeded again) or `missing` (in force in the log, not in the file)."""

    purpose: str
    change: str
    fields: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"purpose": self.purpose, "change": self.change, "fields": list(self.fields)}

    def __str__(self) -> str:
        return f"{self.purpose} {self.change} {', '.join(self.fields)}".strip()


def differences(file: Catalogue, log: CatalogueHistory) -> list[PurposeDifference]:
    """Where the file and the log's current catalogue disagree, in the file's order, then the
    log's purposes the file lacks."""
    found = []
    current, retired = log.current, log.retired_at()
    for pid, mine in file.purposes.items():
        theirs = current.get(pid)
        if pid in retired:
            found.append(PurposeDifference(pid, "retired"))
        elif theirs is None:
            found.append(PurposeDifference(pid, "added"))
        elif not same_definition(mine, theirs):
            a, b = mine.as_json(), theirs.as_json()
            names = tuple(k for k in a if k not in ("id", "version") and a[k] != b[k])
            found.append(PurposeDifference(pid, "changed", names))
    found.extend(
        PurposeDifference(pid, "missing") for pid in current.ids if pid not in file.purposes
    )
    return found


def applied_versions(file: Catalogue, log: CatalogueHistory, now: datetime) -> list[PurposeVersion]:
    """What `purposes apply` records: on a log without purpose events, the seeds (as the first
    start records them); otherwise each `changed` purpose as its next version and each `added`
    one as its version 1, both in force from `now` (the added ones a microsecond apart, so
    the catalogue lists them in the file's order): the past keeps the catalogue it had. A
    retired purpose stays retired (a PUT defines it again) and a `missing` one stays in force
    (retiring is `DELETE /v1/purposes/{id}`): the file alone never withdraws a purpose."""
    if not log.ids:
        return seeds(file, log)
    out: list[PurposeVersion] = []
    for d in differences(file, log):
        if d.change == "added":
            since = now + sum(v.version == 1 for v in out) * TICK
            out.append(PurposeVersion(since, replace(file.purposes[d.purpose], version=1)))
        elif d.change == "changed":
            number = log.next_version(d.purpose)
            since = log.next_in_force(d.purpose, now)
            out.append(PurposeVersion(since, replace(file.purposes[d.purpose], version=number)))
    return out


#: who records the versions seeded from the catalogue file
FILE_ACTOR: Final = ev.Actor("system", "purpose-catalogue-file")
#: who records the file's changed purposes through `consent-ledger purposes apply`
APPLY_ACTOR: Final = ev.Actor("system", "purposes-apply")


def version_event(
    version: PurposeVersion, now: datetime, actor: ev.Actor, reason: str | None = None
) -> ev.Event:
    """The event that records `version` (a definition, or a retirement with its `reason`). A
    version in force from the moment it is recorded carries that one instant as both
    `in_force_from` and `recorded_at`; a seed (in force since the epoch) is recorded `now`."""
    if version.in_force_from != EPOCH:
        now = version.in_force_from
    if isinstance(version.definition, PurposeRetirement):
        kind = ev.PURPOSE_RETIRED
        data = retired_data(version.id, version.version, version.in_force_from, reason)
    else:
        kind = ev.PURPOSE_DEFINED
        data = defined_data(version.definition, version.in_force_from)
    return ev.Event(
        type=kind,
        event_id=content_id(kind, data),
        subject_id=ev.purpose_key(version.id),
        occurred_at=now,
        recorded_at=now,
        source=ev.Source("api", "consent-ledger", "purpose catalogue"),
        actor=actor,
        data=data,
    )
