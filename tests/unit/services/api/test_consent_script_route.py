"""GET /sdk/consent.js and /sdk/{file} in-process: no key, the headers a cross-origin module
import and a strict browser need, a year's immutable caching for a versioned URL and an hour
for the unversioned one, revalidation, and a problem for an unknown file. The public port
serves them too."""

from __future__ import annotations

import pytest

from services.web.consent_script import CURRENT, FILES
from tests.unit.services.api.in_process import PROBLEM, InProcess, serving

JS = "text/javascript; charset=utf-8"
DTS = "application/typescript; charset=utf-8"
YEAR = "public, max-age=31536000, immutable"
HOUR = "public, max-age=3600"


@pytest.mark.parametrize(
    ("path", "file", "media_type", "cache"),
    [
        (f"/sdk/consent-{CURRENT}.js", f"consent-{CURRENT}.js", JS, YEAR),
        (f"/sdk/consent-{CURRENT}.d.ts", f"consent-{CURRENT}.d.ts", DTS, YEAR),
        ("/sdk/consent.js", f"consent-{CURRENT}.js", JS, HOUR),
        ("/sdk/consent.d.ts", f"consent-{CURRENT}.d.ts", DTS, HOUR),
    ],
)
async def test_a_file_is_served_without_a_key_to_any_origin(
    served: InProcess, path: str, file: str, media_type: str, cache: str
) -> None:
    async with served.client() as anyone:
        answer = await anyone.get(path, headers={"Origin": "https://shop.example.net"})
    assert answer.status_code == 200
    assert answer.content == FILES[file]
    headers = answer.headers
    assert headers["content-type"] == media_type
    assert headers["cache-control"] == cache
    assert headers["access-control-allow-origin"] == "*"
    assert headers["cross-origin-resource-policy"] == "cross-origin"
    assert headers["x-content-type-options"] == "nosniff"
    assert "set-cookie" not in headers


async def test_a_cached_copy_is_revalidated_by_its_etag(served: InProcess) -> None:
    async with served.client() as anyone:
        first = await anyone.get("/sdk/consent.js")
        again = await anyone.get(
            "/sdk/consent.js", headers={"If-None-Match": first.headers["etag"]}
        )
        other = await anyone.get("/sdk/consent.js", headers={"If-None-Match": '"stale"'})
        head = await anyone.head(f"/sdk/consent-{CURRENT}.js")
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["access-control-allow-origin"] == "*"
    assert other.status_code == 200 and other.content == first.content
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(first.content))


@pytest.mark.parametrize(
    "name",
    ["consent-0.0.1.js", "consent.css", "consent_script.py", "consent-1.0.0.js.map", "x" * 300],
)
async def test_an_unknown_file_is_a_404_problem(served: InProcess, name: str) -> None:
    async with served.client() as anyone:
        answer = await anyone.get(f"/sdk/{name}")
    assert answer.status_code == 404 and answer.headers["content-type"] == PROBLEM
    assert f"consent-{CURRENT}.js" in answer.json()["detail"]


async def test_no_path_leads_out_of_the_directory(served: InProcess) -> None:
    async with served.client() as anyone:
        for path in ("/sdk/..%2Fconsent_script.py", "/sdk/../web/consent_script.py", "/sdk/"):
            answer = await anyone.get(path)
            assert answer.status_code == 404 and answer.headers["content-type"] == PROBLEM


async def test_the_public_port_serves_the_script() -> None:
    async with (
        serving(LEDGER_PUBLIC_PORT="8001", LEDGER_PUBLIC_HOST="127.0.0.1") as served,
        served.client(port=8001) as public,
    ):
        latest = await public.get("/sdk/consent.js")
        pinned = await public.get(f"/sdk/consent-{CURRENT}.d.ts")
    assert latest.status_code == 200 and latest.content == FILES[f"consent-{CURRENT}.js"]
    assert pinned.status_code == 200
