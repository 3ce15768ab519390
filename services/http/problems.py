"""RFC 9457 problem details: every error answer is application/problem+json naming the field."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.telemetry.request_context import current_request_id

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """Raised anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
        self.kind = kind or title.lower().replace(" ", "-")

    def response(self, instance: str | None = None) -> Response:
        body: dict[str, Any] = {
            "type": f"urn:consent-ledger:problem:{self.kind}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        request_id = current_request_id()
        if request_id is not None:
            # not `request_id`: that names a rights request in this API
            body["http_request_id"] = request_id
        return JSONResponse(body, self.status, headers=self.headers, media_type=PROBLEM_JSON)


def field_error(
    field: str, detail: str, accepted: Any = None, path: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """One entry of a problem's `errors` list: the field, its JSON pointer, what is wrong.

    `field` is the dotted name people read; `path` the exact keys, when a key may itself
    contain a dot or a slash (RFC 6901 escapes them in the pointer)."""
    keys = path if path is not None else tuple(field.split("."))
    pointer = "#/" + "/".join(k.replace("~", "~0").replace("/", "~1") for k in keys)
    out: dict[str, Any] = {"field": field, "pointer": pointer, "detail": detail}
    if accepted is not None:
        out["accepted"] = accepted
    return out


def invalid(errors: list[dict[str, Any]], status: int = 422) -> ProblemError:
    names = ", ".join(e["field"] for e in errors)
    first = errors[0]["detail"]
    detail = f"{errors[0]['field']}: {first}" if len(errors) == 1 else f"invalid fields: {names}"
    return ProblemError(status, "Invalid request", detail, errors=errors, kind="invalid-request")


def unavailable(detail: str, retry_after: int = 1) -> ProblemError:
    return ProblemError(
        503,
        "Service unavailable",
        detail,
        headers={"Retry-After": str(retry_after)},
        kind="unavailable",
    )


def instance_of(request: Request) -> str | None:
    """The route template, not the concrete path: a path may carry a mistyped e-mail address."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


async def problem_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return exc.response(instance_of(request))
