"""GET /sdk/consent.js: the banner script a website imports to record its visitors' cookie
choices (docs/integrators/websites.md), with its TypeScript declarations.

The files live in services/web/sdk/, one pair per version (`consent-<version>.js` and `.d.ts`),
and a released file is never edited (tests/unit/services/web/test_consent_script.py pins their
digests). A versioned URL is cached for a year as immutable; `/sdk/consent.js` and
`/sdk/consent.d.ts` are the current version under a name that a page may import without
pinning, cached for an hour. Pages on any origin import the script as a module, so every
answer allows any origin; the files name no one and need no key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from services.http.openapi_parts import PROBLEM, path_param
from services.http.problems import ProblemError

#: the version `/sdk/consent.js` serves: the newest file in services/web/sdk/
CURRENT: Final = "1.0.0"
DIRECTORY: Final = Path(__file__).resolve().parent / "sdk"
LATEST_PATH: Final = "/sdk/consent.js"
FILE_PATH: Final = "/sdk/{file}"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
LATEST: Final = "public, max-age=3600"
MEDIA_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".d.ts": "application/typescript; charset=utf-8",
}


def _suffix(name: str) -> str:
    return ".d.ts" if name.endswith(".d.ts") else Path(name).suffix


def _load() -> Mapping[str, bytes]:
    """Every file of services/web/sdk/ by name, read once at import."""
    files = {
        p.name: p.read_bytes()
        for p in sorted(DIRECTORY.iterdir())
        if _suffix(p.name) in MEDIA_TYPES
    }
    return MappingProxyType(files)


FILES: Final = _load()
#: the unversioned names: the current version's files
ALIASES: Final = MappingProxyType(
    {f"consent{suffix}": f"consent-{CURRENT}{suffix}" for suffix in MEDIA_TYPES}
)


def _answer(request: Request, name: str, cache: str) -> Response:
    body = FILES[name]
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "Cache-Control": cache,
        "ETag": etag,
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, headers=headers, media_type=MEDIA_TYPES[_suffix(name)])


async def latest_script(request: Request) -> Response:
    """GET /sdk/consent.js: the current version."""
    return _answer(request, ALIASES["consent.js"], LATEST)


async def sdk_file(request: Request) -> Response:
    """GET /sdk/{file}: a versioned file (immutable) or the current declarations."""
    name = str(request.path_params["file"])
    if name in ALIASES:
        return _answer(request, ALIASES[name], LATEST)
    if name not in FILES:
        raise ProblemError(
            404,
            "Not found",
            f"no such file; the current script is {LATEST_PATH} or consent-{CURRENT}.js",
        )
    return _answer(request, name, IMMUTABLE)


def _file_answer(description: str, media_types: list[str]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {media: {"schema": {"type": "string"}} for media in media_types},
    }


LATEST_OPERATION: Final[dict[str, Any]] = {
    "summary": "The current banner script (an ES module), cached for an hour",
    "responses": {
        "200": _file_answer("the script", ["text/javascript"]),
        "304": _file_answer("not modified (If-None-Match)", ["text/javascript"]),
    },
}
FILE_OPERATION: Final[dict[str, Any]] = {
    "summary": "A versioned banner script or its TypeScript declarations, cached as immutable",
    "parameters": [path_param("file", {"type": "string", "examples": [f"consent-{CURRENT}.js"]})],
    "responses": {
        "200": _file_answer(
            "consent-<version>.js (the script) or .d.ts (its declarations); consent.d.ts is"
            " the current version's declarations",
            ["text/javascript", "application/typescript"],
        ),
        "304": _file_answer(
            "not modified (If-None-Match)", ["text/javascript", "application/typescript"]
        ),
        "404": PROBLEM,
    },
}
