"""A webhook receiver for the consent ledger with Python's standard library only.

It checks the Standard Webhooks signature (HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.
{body}") against every secret it holds, refuses a timestamp more than five minutes from its own
clock, and saves each webhook-id with its change in one transaction (webhook_store.py) before
it answers 2xx.

    LEDGER_WEBHOOK_SECRETS="whsec_..." python receiver_stdlib.py --port 8088 --db hooks.sqlite3

LEDGER_WEBHOOK_SECRETS holds one secret, or two separated by a space while you switch to a
rotated one. Serve it behind a TLS-terminating proxy: the ledger delivers to https URLs only.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from webhook_store import connect, parse_event, record_delivery

#: how far webhook-timestamp may be from this machine's clock (the spec's five minutes)
TOLERANCE_S = 5 * 60
DESCRIPTION = "Receive the consent ledger's webhooks into a SQLite file."
#: a delivery is one event; anything larger is not from the ledger
MAX_BODY = 1 << 20
MAX_HEADER = 4096


class Refused(Exception):
    """A request this receiver will not apply: the message says why."""


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret: the base64 after the prefix."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is whsec_ and base64") from exc


def signature(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The v1 signature of one delivery under one key."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(keys: list[bytes], headers: dict[str, str], body: bytes, now: float) -> str:
    """The webhook-id of a genuine, fresh delivery; Refused otherwise."""
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (webhook_id and timestamp and signatures):
        raise Refused("webhook-id, webhook-timestamp and webhook-signature are required")
    if max(len(webhook_id), len(timestamp), len(signatures)) > MAX_HEADER:
        raise Refused("a webhook header is too long")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Refused("webhook-timestamp must be whole seconds since 1970")
    if abs(now - int(timestamp)) > TOLERANCE_S:
        raise Refused("webhook-timestamp is more than five minutes from this clock")
    expected = [signature(key, webhook_id, timestamp, body) for key in keys]
    # several space-separated signatures while the ledger's secret rotates: one match will do
    for sent in signatures.split(" "):
        if any(hmac.compare_digest(sent.encode(), mine.encode()) for mine in expected):
            return webhook_id
    raise Refused("no signature matches a secret this receiver holds")


class Receiver(BaseHTTPRequestHandler):
    #: seconds a connection may sit idle mid-request: a client that sends half a body is
    #: dropped instead of holding one of the server's threads for good
    timeout = 10
    keys: list[bytes] = []
    database = "hooks.sqlite3"

    def do_POST(self) -> None:
        length = self.headers.get("content-length", "")
        if not (length.isascii() and length.isdigit() and 0 < int(length) <= MAX_BODY):
            self.answer(413, "the body must be 1 byte to 1 MiB")
            return
        body = self.rfile.read(int(length))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            webhook_id = verify(self.keys, headers, body, time.time())
            event = parse_event(body)
        except Refused as exc:
            self.answer(401, str(exc))
            return
        except ValueError as exc:
            self.answer(400, f"not an event: {exc}")
            return
        connection = connect(self.database)
        try:
            applied = record_delivery(connection, webhook_id, event)
        except Exception:
            # not saved: a 5xx makes the ledger retry, and later events of this subject wait
            self.answer(503, "not saved, try again")
            raise
        finally:
            connection.close()
        self.answer(200, "applied" if applied else "already applied")

    def answer(self, status: int, text: str) -> None:
        payload = text.encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088, help="0 picks a free port")
    parser.add_argument("--db", default="hooks.sqlite3", help="the SQLite file")
    args = parser.parse_args()
    Receiver.keys = [decode_secret(s) for s in os.environ["LEDGER_WEBHOOK_SECRETS"].split()]
    Receiver.database = args.db
    connect(args.db).close()
    server = ThreadingHTTPServer((args.host, args.port), Receiver)
    print(f"listening on http://{args.host}:{server.server_address[1]}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
