"""The public pages' catalogues: every message the templates and the Python of services/web/
use (as Babel extracts them with locale/babel.cfg) is translated, not fuzzy, in every language,
with the same placeholders, and no catalogue keeps messages nothing uses."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir

from services.rules.languages import LANGUAGES
from services.web.translations import MAPPING_FILE, po_path, read_catalogue

ROOT = Path(__file__).resolve().parents[4]


def extracted() -> set[str]:
    """The msgids of the sources the mapping file names."""
    config = configparser.ConfigParser()
    config.read(MAPPING_FILE)
    method_map = [
        (section.split(":", 1)[1].strip(), section.split(":", 1)[0])
        for section in config.sections()
    ]
    options = {pattern: dict(config[f"{method}: {pattern}"]) for pattern, method in method_map}
    found: set[str] = set()
    for _, _, message, _, _ in extract_from_dir(ROOT, method_map, options):
        assert isinstance(message, str), f"plural or context messages need a test: {message!r}"
        found.add(message)
    return found


MESSAGES = extracted()


def test_the_pages_have_messages_to_translate() -> None:
    assert "Unsubscribe" in MESSAGES and "by e-mail" in MESSAGES
    assert "This link cannot be used" in MESSAGES  # from the Python, through N_()
    assert len(MESSAGES) >= 40


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated_in_every_language(language: str) -> None:
    catalogue = read_catalogue(language)
    assert str(catalogue.locale) == language
    entries = {m: catalogue.get(m) for m in MESSAGES}
    missing = [m for m, entry in entries.items() if entry is None]
    empty = [m for m, entry in entries.items() if entry is not None and not entry.string]
    fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
    unused = [m.id for m in catalogue if m.id and m.id not in MESSAGES]
    assert (missing, empty, fuzzy, unused) == ([], [], [], []), po_path(language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders(language: str) -> None:
    """Babel's checkers: the same %(name)s placeholders as the msgid, nothing else."""
    catalogue: Catalog = read_catalogue(language)
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalogue.check()]
    assert problems == []
