"""A small S3-compatible object store for the broker of the broker-kill test, run as its own
process (`python object_store.py PORT`) so it outlives every broker it serves.

It keeps objects in memory and speaks the part of S3 that Tansu's object-store engine uses:
path-style buckets, PUT with `If-None-Match: *` and `If-Match` (its compare-and-swap), GET and
HEAD with `If-None-Match`, `If-Match` and `Range`, DELETE, and ListObjectsV2. Each request is
applied under one lock, so a conditional PUT is atomic. Only the standard library: it starts
in a fraction of a second and answers in about a millisecond.
"""

from __future__ import annotations

import hashlib
import re
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape


@dataclass(frozen=True, slots=True)
class StoredObject:
    body: bytes
    etag: str
    modified: datetime


BUCKETS: dict[str, dict[str, StoredObject]] = {}
LOCK = threading.Lock()


def _error(code: str, message: str) -> bytes:
    return f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>".encode()


def list_objects(objects: dict[str, StoredObject], prefix: str, delimiter: str) -> bytes:
    """A ListObjectsV2 answer: every key under `prefix` in one page, in key order."""
    contents, prefixes = [], set()
    for key in sorted(k for k in objects if k.startswith(prefix)):
        rest = key[len(prefix) :]
        if delimiter and delimiter in rest:
            prefixes.add(prefix + rest.split(delimiter, 1)[0] + delimiter)
            continue
        found = objects[key]
        contents.append(
            f"<Contents><Key>{escape(key)}</Key>"
            f"<LastModified>{found.modified.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z</LastModified>"
            f"<ETag>{escape(found.etag)}</ETag><Size>{len(found.body)}</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>"
        )
    common = "".join(
        f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in sorted(prefixes)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
        f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(contents) + len(prefixes)}</KeyCount>"
        f"<IsTruncated>false</IsTruncated>{''.join(contents)}{common}</ListBucketResult>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: headers and body go out in two writes: without this, each answer waits for an ACK
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a request log would cost more than the request."""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _target(self) -> tuple[str, str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
        return bucket, key, parse_qs(parts.query)

    def _headers_of(self, found: StoredObject) -> dict[str, str]:
        return {
            "ETag": found.etag,
            "Last-Modified": format_datetime(found.modified, usegmt=True),
            "Content-Type": "application/octet-stream",
        }

    def do_PUT(self) -> None:
        bucket, key, _ = self._target()
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with LOCK:
            if not key:
                BUCKETS.setdefault(bucket, {})
                return self._send(200)
            objects = BUCKETS.get(bucket)
            if objects is None:
                return self._send(404, _error("NoSuchBucket", bucket))
            current = objects.get(key)
            if self.headers.get("If-None-Match") == "*" and current is not None:
                return self._send(412, _error("PreconditionFailed", "exists"))
            match = self.headers.get("If-Match")
            if match is not None and (current is None or current.etag != match):
                return self._send(412, _error("PreconditionFailed", "etag differs"))
            stored = StoredObject(body, f'"{hashlib.md5(body).hexdigest()}"', datetime.now(UTC))
            objects[key] = stored
        self._send(200, headers={"ETag": stored.etag})

    def do_GET(self) -> None:
        bucket, key, query = self._target()
        with LOCK:
            objects = BUCKETS.get(bucket)
            if objects is None:
                return self._send(404, _error("NoSuchBucket", bucket))
            if not key:
                prefix = query.get("prefix", [""])[0]
                listing = list_objects(objects, prefix, query.get("delimiter", [""])[0])
                return self._send(200, listing, {"Content-Type": "application/xml"})
            found = objects.get(key)
        if found is None:
            return self._send(404, _error("NoSuchKey", key))
        headers = self._headers_of(found)
        if self.headers.get("If-None-Match") == found.etag:
            return self._send(304, headers={**headers, "Content-Length": "0"})
        match = self.headers.get("If-Match")
        if match is not None and match != found.etag:
            return self._send(412, _error("PreconditionFailed", "etag differs"))
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if ranged is None:
            return self._send(200, found.body, headers)
        start = int(ranged[1])
        end = int(ranged[2]) if ranged[2] else len(found.body) - 1
        part = found.body[start : end + 1]
        content_range = f"bytes {start}-{start + len(part) - 1}/{len(found.body)}"
        self._send(206, part, {**headers, "Content-Range": content_range})

    do_HEAD = do_GET

    def do_DELETE(self) -> None:
        bucket, key, _ = self._target()
        with LOCK:
            BUCKETS.get(bucket, {}).pop(key, None)
        self._send(204)

    def do_POST(self) -> None:
        self._send(501, _error("NotImplemented", f"POST {self.path}"))


def main(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
