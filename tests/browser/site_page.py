"""A website's page on an origin of its own, for the banner script's browser tests: a tiny HTTP
server on another port than the ledger's, answering every path with one HTML page that imports
consent.js from the ledger, under a strict Content-Security-Policy (no inline styles)."""

from __future__ import annotations

import contextlib
import html
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

NONCE: Final = "site-page-nonce"
PURPOSES: Final = ["cookies_analytics", "cookies_marketing"]


@dataclass(slots=True)
class SiteConfig:
    """What the page passes to init(); `lang` (the page's <html lang>) is ?lang= of its URL."""

    ledger: str
    key: str = "pk_unset"
    script: str = "/sdk/consent.js"
    options: dict[str, Any] = field(default_factory=dict)


def page_html(config: SiteConfig, lang: str) -> str:
    options = {"ledger": config.ledger, "key": config.key, "purposes": PURPOSES, **config.options}
    return f"""<!doctype html>
<html lang="{html.escape(lang)}">
<head><meta charset="utf-8"><title>Example shop</title></head>
<body>
<main><h1>Example shop</h1><p><a href="#cookies" id="settings">Cookie settings</a></p></main>
<script type="module" nonce="{NONCE}">
import * as consent from {json.dumps(config.ledger + config.script)};
window.consent = consent;
window.changes = [];
consent.onChange((choices) => window.changes.push(choices));
document.getElementById("settings").addEventListener("click", () => consent.showBanner());
window.started = consent.init({json.dumps(options)}).then(() => true, (e) => String(e));
</script>
</body>
</html>
"""


def csp(ledger: str) -> str:
    """No inline script but the nonced one, no styles at all but constructed stylesheets, and
    requests only to the ledger."""
    return (
        f"default-src 'none'; script-src 'nonce-{NONCE}' {ledger}; connect-src {ledger};"
        " style-src 'none'; base-uri 'none'"
    )


class _Handler(BaseHTTPRequestHandler):
    server: _SiteServer

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/favicon.ico":
            self.send_error(404)
            return
        lang = parse_qs(urlsplit(self.path).query).get("lang", ["en"])[0]
        body = page_html(self.server.config, lang).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Security-Policy", csp(self.server.config.ledger))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _SiteServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, config: SiteConfig) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.config = config


@contextlib.contextmanager
def site_page(config: SiteConfig) -> Iterator[tuple[str, SiteConfig]]:
    """Serve the page; yields its origin (http://127.0.0.1:<port>) and the config, which a test
    may change between page loads."""
    server = _SiteServer(config)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", config
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
