"""Registering websites (POST /v1/sites, `consent-ledger sites create`): the registration
checked field by field, then stored with a fresh publishable key, of which only the keyed hash
is kept (projections/sites.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from projections.sites import SiteRow, insert_site
from services.identity.api_keys import key_hash, name_problem
from services.identity.site_keys import new_site_key
from services.rules.catalogue import Catalogue
from services.rules.site_collection import (
    MAX_ORIGINS,
    FieldProblem,
    canonical_origin,
    default_site_purposes,
    origin_problem,
    site_purpose_problem,
)


@dataclass(frozen=True, slots=True)
class Registration:
    """A site as it will be stored: canonical origins, purposes in catalogue order."""

    name: str
    origins: tuple[str, ...]
    purposes: tuple[str, ...]


def check_registration(
    name: object,
    origins: object,
    purposes: object,
    catalogue: Catalogue,
    *,
    http_loopback: bool,
) -> tuple[Registration | None, list[FieldProblem]]:
    """The registration, or the problems naming each field (`origins[1]`, `purposes[0]`).
    `purposes` None: the catalogue's browser-collectable ones."""
    problems: list[FieldProblem] = []
    if not isinstance(name, str) or (problem := name_problem(name)):
        problems.append(FieldProblem("name", name_problem(str(name)) or "must be a string"))
    kept_origins: list[str] = []
    if not isinstance(origins, list) or not 1 <= len(origins) <= MAX_ORIGINS:
        detail = f"must be a list of 1-{MAX_ORIGINS} origins such as https://www.example.com"
        problems.append(FieldProblem("origins", detail))
    else:
        for i, origin in enumerate(origins):
            if not isinstance(origin, str):
                problems.append(FieldProblem(f"origins[{i}]", "must be a string"))
            elif problem := origin_problem(origin, http_loopback=http_loopback):
                problems.append(FieldProblem(f"origins[{i}]", problem))
            elif canonical_origin(origin) not in kept_origins:
                kept_origins.append(canonical_origin(origin))
    chosen: list[str] = []
    if purposes is None:
        chosen = list(default_site_purposes(catalogue))
        if not chosen:
            problems.append(
                FieldProblem("purposes", "the catalogue marks none browser_collectable")
            )
    elif not isinstance(purposes, list) or not purposes or len(purposes) > len(catalogue.ids):
        problems.append(FieldProblem("purposes", "must be a non-empty list of purpose ids"))
    else:
        for i, pid in enumerate(purposes):
            if not isinstance(pid, str) or len(pid) > 64:
                problems.append(FieldProblem(f"purposes[{i}]", "must be a purpose id"))
            elif problem := site_purpose_problem(pid, catalogue):
                problems.append(FieldProblem(f"purposes[{i}]", problem))
            elif pid not in chosen:
                chosen.append(pid)
    if problems:
        return None, problems
    assert isinstance(name, str)
    ordered = tuple(pid for pid in catalogue.ids if pid in chosen)
    return Registration(name, tuple(kept_origins), ordered), []


async def create_site(
    conn: asyncpg.Connection | asyncpg.Pool, registration: Registration, hash_key: bytes
) -> tuple[str, SiteRow]:
    """Store the site with a new key; the key and the row (the key is stored nowhere)."""
    while True:
        site_id, key = new_site_key()
        row = await insert_site(
            conn,
            site_id,
            registration.name,
            registration.origins,
            registration.purposes,
            key_hash(key, hash_key),
        )
        if row is not None:
            return key, row


def names(problems: Sequence[FieldProblem]) -> str:
    return "; ".join(f"{p.field}: {p.detail}" for p in problems)
