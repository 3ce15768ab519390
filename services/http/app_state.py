"""Typed access to what the app keeps in `app.state` (services/api/app.py sets it): the Ledger
and the key cache the lifespan opens, and the public pages' rate limits; and to the caller the
access check (services/api/guard.py) found for a request."""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from services.bootstrap import Ledger
from services.identity.api_key_store import KeyCache
from services.identity.api_keys import Caller
from services.rules.catalogue_history import CatalogueHistory


class PageLimiter(Protocol):
    """The public pages' rate limits (services/web/page_limits.py PageLimits)."""

    def refuse(self, request: Request, route: str, now: float) -> Response | None:
        """The 429 page when the request is over a limit, else None."""

    def save_wait(self, subject_id: str, now: float) -> float:
        """Seconds until a save that changes the subject's choices may be recorded."""


def ledger_of(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def purpose_history_of(ledger: Ledger) -> CatalogueHistory:
    """Every version of every purpose: what an answer as of an instant decides with
    (`history.at(instant)`). The log's versions, followed as the projector applies new ones;
    the file's purposes the log has not recorded yet stand in for them since the epoch."""
    return ledger.purposes.history


def api_keys_of(request: Request) -> KeyCache:
    keys: KeyCache = request.app.state.api_keys
    return keys


def page_limits_of(request: Request) -> PageLimiter:
    limits: PageLimiter = request.app.state.page_limits
    return limits


def set_caller(request: Request, caller: Caller | None) -> None:
    """What the access check found: the key's caller, or None for a route a key is optional on
    that was asked without one."""
    request.state.caller = caller


def caller_of(request: Request) -> Caller | None:
    """The caller the access check found for this request (None: no key was sent where none is
    needed)."""
    caller: Caller | None = getattr(request.state, "caller", None)
    return caller
