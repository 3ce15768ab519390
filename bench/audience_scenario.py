"""The audience line: `GET /v1/audiences?purpose=newsletter&channel=email` streamed over HTTP
from the running API (JSON lines and CSV), against B-copy-audience, PostgreSQL's own
`COPY (<the audience's query>) TO STDOUT` of the same rows, from Python, in the same run.

Both figures are subjects per second: every subject the audience considers, allowed or not.
The baseline copies one row per subject (its id and fact pattern, the rows the stream reads);
the stream decides each of them with the ledger's rules, writes the allowed ones and counts the
rest in its `reasons=true` summary, which must count as many subjects as the COPY copied.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from bench.sizes import ISSUE_SUBJECTS, size_note
from bench.table import Measurement, Target
from projections import audiences, notices
from services.rules.batch import reconsent_purpose, relevance
from services.rules.catalogue import load_catalogue
from services.rules.suppression import CHANNEL_IDENTIFIERS

PURPOSE, CHANNEL = "newsletter", "email"
#: the formats pulled, as the table names them
FORMATS = {"jsonl": "JSON lines", "csv": "CSV"}
#: the records ending a CSV with reasons=true (services/api/audience_rows.py end_lines)
CSV_ALLOWED, CSV_LEFT_OUT, CSV_END = "allowed", "left_out", "end"


@dataclass(frozen=True, slots=True)
class Streamed:
    """One pull of the audience: subjects considered, rows written, seconds to the last byte."""

    considered: int
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.considered / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class AudienceSamples:
    """What a run measured of the audience: subjects per second, run by run."""

    streamed: dict[str, list[float]] = field(default_factory=dict)
    copied: list[float] = field(default_factory=list)
    #: subjects the last pull considered and the rows it wrote
    subjects: int = 0
    rows: int = 0

    def add(self, fmt: str, pulled: Streamed) -> None:
        self.streamed.setdefault(fmt, []).append(pulled.rate)
        self.subjects, self.rows = pulled.considered, pulled.rows


def considered_of(fmt: str, summary: list[str]) -> tuple[int, int]:
    """(subjects considered, rows allowed) from the summary at the end of a reasons=true
    answer: the last JSON line, or the CSV records after the rows."""
    if fmt == "jsonl":
        found = json.loads(summary[-1])["summary"]
        return int(found["considered"]), int(found["allowed"])
    allowed = left_out = 0
    for line in summary:
        cells = line.rstrip("\r").split(",")
        if cells[0] == CSV_ALLOWED:
            allowed = int(cells[-1])
        elif cells[0] == CSV_LEFT_OUT:
            left_out += int(cells[-1])
    return allowed + left_out, allowed


def audience_path(fmt: str) -> str:
    return f"/v1/audiences?purpose={PURPOSE}&channel={CHANNEL}&format={fmt}&reasons=true"


async def stream_audience(base_url: str, admin_key: str, fmt: str) -> Streamed:
    """Pull the whole audience as a client would (chunked HTTP/1.1, read as it arrives), and
    check that the rows written are the allowed count the summary gives."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reader, writer = await asyncio.open_connection(host, port, limit=16 * 1024 * 1024)
    request = (
        f"GET {audience_path(fmt)} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {admin_key}\r\nConnection: close\r\n\r\n"
    )
    try:
        start = time.perf_counter()
        writer.write(request.encode("latin-1"))
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        if not head.startswith("HTTP/1.1 200"):
            raise RuntimeError(f"audience answered {head.splitlines()[0]}: {await reader.read()!r}")
        if "transfer-encoding: chunked" not in head.lower():
            raise RuntimeError("the audience was not streamed (no chunked transfer encoding)")
        lines, tail = 0, b""
        while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
            data = await reader.readexactly(size + 2)
            lines += data.count(b"\n", 0, size)
            tail = (tail + data[:size])[-4096:]
        seconds = time.perf_counter() - start
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    summary = _summary_lines(fmt, tail.decode("utf-8", "replace").splitlines())
    considered, allowed = considered_of(fmt, summary)
    rows = lines - len(summary) - (1 if fmt == "csv" else 0)  # the CSV header
    if rows != allowed:
        raise RuntimeError(f"the audience wrote {rows:,} rows, its summary says {allowed:,}")
    return Streamed(considered, rows, seconds)


def _summary_lines(fmt: str, tail: list[str]) -> list[str]:
    if fmt == "jsonl":
        return tail[-1:]
    return [line for line in tail if line.split(",")[0] in (CSV_ALLOWED, CSV_LEFT_OUT, CSV_END)]


async def copy_audience(database_url: str, catalogue_file: Path) -> Streamed:
    """B-copy-audience: `COPY (EVERYONE) TO STDOUT` with the arguments the route gives it, the
    bytes received and dropped (connection opened and the question read before the clock)."""
    purpose = load_catalogue(catalogue_file).get(PURPOSE)
    if purpose is None:
        raise RuntimeError(f"the catalogue has no purpose {PURPOSE!r}")
    conn = await asyncpg.connect(database_url)
    try:
        now = datetime.now(UTC)
        published = await notices.load(conn)
        cutoff = published.cutoff(p, now) if (p := reconsent_purpose(purpose)) else None
        args = audiences.everyone_args(
            identifier_type=CHANNEL_IDENTIFIERS.get(CHANNEL, ""),
            relevance=relevance(purpose, CHANNEL),
            now=now,
            cutoff=cutoff,
        )
        received = 0

        async def sink(data: bytes) -> None:
            nonlocal received
            received += len(data)

        start = time.perf_counter()
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute(audiences.WORK_MEM)  # as the route runs it
            status = await conn.copy_from_query(audiences.EVERYONE, *args, output=sink)
        seconds = time.perf_counter() - start
    finally:
        await conn.close()
    copied = int(status.split()[-1])
    return Streamed(copied, copied, seconds)


def audience_rows(samples: AudienceSamples) -> list[Measurement]:
    """The table's lines, one per format: subjects per second of the stream against the same
    run's COPY of the same rows (the issue asks for at least half its rate)."""
    subjects, rows = samples.subjects, samples.rows
    size, reduced = size_note(subjects, ISSUE_SUBJECTS, "subjects") if subjects else ("", False)
    note = f"{rows:,} of {subjects:,} subjects allowed and written" if subjects else ""
    return [
        Measurement(
            f"audience streamed over HTTP, {label}",
            "throughput",
            "subjects/s",
            tuple(samples.streamed.get(fmt, ())),
            Target("ratio_min", 0.5),
            "B-copy-audience",
            tuple(samples.copied),
            size,
            reduced,
            note,
        )
        for fmt, label in FORMATS.items()
    ]
