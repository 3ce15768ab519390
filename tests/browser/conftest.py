"""Browser tests: Debian's chromium driven by Playwright. Without a chromium they are skipped,
and the summary says so in a line of its own so a green run cannot hide it."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

ARTIFACTS: Final = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    """LEDGER_CHROMIUM when set, else Debian's /usr/bin/chromium, else one on PATH."""
    named = os.environ.get("LEDGER_CHROMIUM", "").strip()
    candidates = [named] if named else ["/usr/bin/chromium"]
    candidates += [shutil.which(n) or "" for n in ("chromium", "chromium-browser")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        if named:
            return None  # an explicit choice that is wrong is not silently replaced
    return None


CHROMIUM: Final = find_chromium()
SKIP_REASON: Final = (
    "no chromium found (set LEDGER_CHROMIUM, or install Debian's chromium: .ci/run does)"
    if CHROMIUM is None
    else "the playwright package is not installed (pip install -e '.[dev]')"
    if importlib.util.find_spec("playwright") is None
    else None
)
_skipped: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SKIP_REASON is None:
        return
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.skip(reason=f"browser test skipped: {SKIP_REASON}"))
            _skipped.append(item.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped:
        terminalreporter.write_sep(
            "!", f"{len(_skipped)} browser tests SKIPPED: {SKIP_REASON}", yellow=True, bold=True
        )


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    assert CHROMIUM is not None
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the screenshots go: kept after the run as the tests' artefact (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
async def browser_for(browser: Browser) -> AsyncIterator[Callable[[str], Awaitable[Page]]]:
    """Opens pages in fresh contexts of a browser locale, JavaScript off as a mail reader's
    link opens them; closes every context after the test."""
    contexts = []

    async def open_page(locale: str) -> Page:
        context = await browser.new_context(java_script_enabled=False, locale=locale)
        contexts.append(context)
        return await context.new_page()

    try:
        yield open_page
    finally:
        for context in contexts:
            await context.close()
