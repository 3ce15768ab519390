"""The public pages' gettext catalogues: one .po file per language under locale/, read into
memory once per process (nothing compiled is committed, and there is no build step).

Design: docs/developers/design/public-pages.md
"""

from __future__ import annotations

import io
from gettext import GNUTranslations
from pathlib import Path
from typing import Final

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
DOMAIN: Final = "messages"
#: what pybabel extracts from (the templates and this package's Python), for `pybabel extract -F`
MAPPING_FILE: Final = LOCALE_DIR / "babel.cfg"


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalogue(language: str) -> Catalog:
    with po_path(language).open("rb") as po:
        return read_po(po, locale=language, domain=DOMAIN)


def catalogue_translations(language: str) -> GNUTranslations:
    """The language's .po file as gettext translations; fuzzy entries are left out (a page
    then shows the English msgid), and the catalogue test keeps any from being committed."""
    buffer = io.BytesIO()
    write_mo(buffer, read_catalogue(language), use_fuzzy=False)
    buffer.seek(0)
    return GNUTranslations(buffer)
