"""The version of a public page's words, recorded in the context of what the page records:
the first 12 hex digits of the SHA-256 of the templates it renders and of the message
catalogues beside them, so it changes exactly when what a person could read changes, with no
constant anyone has to remember to bump.

Design: docs/developers/design/event-context.md
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Final

WEB_DIR: Final = Path(__file__).resolve().parent
#: page name -> the templates that show its words (the layout included)
PAGE_TEMPLATES: Final = {
    "unsubscribe": ("base.html", "unsubscribe.html"),
    "preferences": ("base.html", "preferences.html"),
    "confirmation": ("base.html", "confirm.html"),
}
VERSION_DIGITS: Final = 12


@functools.cache
def page_version(page: str) -> str:
    """The version of `page` in this build; the same files give the same version anywhere."""
    digest = hashlib.sha256()
    files = [WEB_DIR / "templates" / name for name in PAGE_TEMPLATES[page]]
    files += sorted(WEB_DIR.rglob("*.po"))
    for path in files:
        name = path.relative_to(WEB_DIR).as_posix().encode()
        content = path.read_bytes()
        digest.update(len(name).to_bytes(4, "big") + name)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()[:VERSION_DIGITS]
