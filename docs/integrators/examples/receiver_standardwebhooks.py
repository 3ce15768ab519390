"""A webhook receiver for the consent ledger with the Standard Webhooks library.

`pip install standardwebhooks`: its Webhook.verify checks the signature and that the
timestamp is within five minutes of this machine's clock. Each webhook-id is saved with
its change in one transaction (webhook_store.py) before the receiver answers 2xx.

    LEDGER_WEBHOOK_SECRETS="whsec_..." python receiver_standardwebhooks.py --port 8088

LEDGER_WEBHOOK_SECRETS holds one secret, or two separated by a space while you switch to a
rotated one.
"""

from __future__ import annotations

import argparse
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from webhook_store import connect, parse_event, record_delivery

DESCRIPTION = "Receive the consent ledger's webhooks into a SQLite file."
MAX_BODY = 1 << 20


def verify(webhooks: list[Webhook], body: bytes, headers: dict[str, str]) -> None:
    """Pass if any secret we hold signed the delivery; WebhookVerificationError if none did."""
    error = WebhookVerificationError("no secret configured")
    for webhook in webhooks:
        try:
            webhook.verify(body, headers, json_parse=False)
            return
        except WebhookVerificationError as exc:
            error = exc
    raise error


class Receiver(BaseHTTPRequestHandler):
    #: seconds a connection may sit idle mid-request: a client that sends half a body is
    #: dropped instead of holding one of the server's threads for good
    timeout = 10
    webhooks: list[Webhook] = []
    database = "hooks.sqlite3"

    def do_POST(self) -> None:
        length = self.headers.get("content-length", "")
        if not (length.isascii() and length.isdigit() and 0 < int(length) <= MAX_BODY):
            self.answer(413, "the body must be 1 byte to 1 MiB")
            return
        body = self.rfile.read(int(length))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            verify(self.webhooks, body, headers)
            event = parse_event(body)
        except WebhookVerificationError as exc:
            self.answer(401, str(exc))
            return
        except ValueError as exc:
            self.answer(400, f"not an event: {exc}")
            return
        connection = connect(self.database)
        try:
            applied = record_delivery(connection, headers["webhook-id"], event)
        except Exception:
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
    Receiver.webhooks = [Webhook(s) for s in os.environ["LEDGER_WEBHOOK_SECRETS"].split()]
    Receiver.database = args.db
    connect(args.db).close()
    server = ThreadingHTTPServer((args.host, args.port), Receiver)
    print(f"listening on http://{args.host}:{server.server_address[1]}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
