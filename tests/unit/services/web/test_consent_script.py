"""The banner script's files (services/web/sdk/): a released file never changes, the declaration
file declares exactly the module's exports, the module parses and stays a few kilobytes, and it
sets no inline style a strict Content-Security-Policy would block."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

import pytest

from services.web.consent_script import ALIASES, CURRENT, DIRECTORY, FILES

#: every released file and its SHA-256: a change is a new version, never an edit, since pages
#: and caches keep a versioned URL for a year
RELEASED: Final = {
    "consent-1.0.0.js": "136de43565f50f064f2614ec025f8d1a6fb4fb1e7193b635617541d96ea4fb87",
    "consent-1.0.0.d.ts": "14ddd40036058193ed495168ec6a6a430d714160b2bfc5b7491533a1ba9d91dc",
}
NODE: Final = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="no node on PATH to run the module")


def version_key(name: str) -> tuple[int, ...]:
    found = re.fullmatch(r"consent-(\d+)\.(\d+)\.(\d+)\.(?:js|d\.ts)", name)
    assert found, f"{name}: a file of services/web/sdk/ is named consent-<major.minor.patch>"
    return tuple(int(part) for part in found.groups())


def current_script() -> str:
    return (DIRECTORY / f"consent-{CURRENT}.js").read_text(encoding="utf-8")


def declared(dts: str) -> set[str]:
    return set(re.findall(r"^export declare (?:function|const) (\w+)", dts, re.MULTILINE))


def test_released_files_are_never_edited() -> None:
    digests = {name: hashlib.sha256(body).hexdigest() for name, body in FILES.items()}
    assert digests == RELEASED


def test_the_current_version_is_the_newest_and_has_both_files() -> None:
    newest = max(FILES, key=version_key)
    assert version_key(newest)[:3] == tuple(int(p) for p in CURRENT.split("."))
    assert {f"consent-{CURRENT}.js", f"consent-{CURRENT}.d.ts"} <= set(FILES)
    assert dict(ALIASES) == {
        "consent.js": f"consent-{CURRENT}.js",
        "consent.d.ts": f"consent-{CURRENT}.d.ts",
    }
    assert f'export const version = "{CURRENT}";' in current_script()


@pytest.mark.parametrize("name", sorted(n for n in RELEASED if n.endswith(".js")))
def test_the_declarations_are_the_exports(name: str) -> None:
    script = (DIRECTORY / name).read_text(encoding="utf-8")
    exported = set(re.findall(r"^export (?:async )?(?:function|const) (\w+)", script, re.M))
    dts = (DIRECTORY / name.replace(".js", ".d.ts")).read_text(encoding="utf-8")
    assert declared(dts) == exported
    assert exported == {"version", "init", "get", "set", "onChange", "showBanner"}


@needs_node
def test_the_module_loads_and_exports_what_it_declares() -> None:
    """Imported by node as the browser imports it (an ES module); it touches no DOM at import."""
    program = (
        "const m = await import(process.argv[1]);"
        "console.log(JSON.stringify(Object.entries(m).map(([k, v]) => [k, typeof v])));"
    )
    url = (DIRECTORY / f"consent-{CURRENT}.js").as_uri()
    assert NODE is not None
    ran = subprocess.run(
        [NODE, "--input-type=module", "-e", program, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    exports = dict(json.loads(ran.stdout))
    dts = (DIRECTORY / f"consent-{CURRENT}.d.ts").read_text(encoding="utf-8")
    assert set(exports) == declared(dts)
    assert exports.pop("version") == "string"
    assert set(exports.values()) == {"function"}


def test_the_script_is_a_few_kilobytes() -> None:
    body = FILES[f"consent-{CURRENT}.js"]
    assert len(body) < 16_000 and len(gzip.compress(body)) < 6_000


def test_the_banner_sets_no_inline_style() -> None:
    """A strict CSP (style-src without 'unsafe-inline') blocks style attributes: the banner's
    styles come from a constructed stylesheet, or a <style> with the page's nonce."""
    script = current_script()
    assert ".style." not in script and ".style =" not in script
    assert not re.search(r"""\bstyle["']?\s*:|setAttribute\(\s*["']style""", script)
    assert "cssText" not in script and "innerHTML" not in script


def test_the_directory_holds_only_released_files() -> None:
    on_disk = {p.name for p in Path(DIRECTORY).iterdir()}
    assert on_disk == set(RELEASED)
