"""From what a run collected to the lines of the table, with the issue's targets: pure, so
the targets and their wording are tested without servers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.audience_scenario import AudienceSamples, audience_rows
from bench.client_scenarios import EndToEnd, percentile
from bench.replay import ReplayResult
from bench.sizes import (
    ISSUE_BATCH,
    ISSUE_GROWTH,
    ISSUE_HISTORY_EVENTS,
    ISSUE_REPLAY_EVENTS,
    ISSUE_SUBJECTS,
    Sizes,
    size_note,
)
from bench.table import Measurement, Target, median_text
from bench.wrk import WrkResult

#: names of the wrk loads
B_HTTP, B_READ, B_WRITE = "B-http", "B-read", "B-write"
DECISION, GRANT, HISTORY = "decision", "grant", "history"


@dataclass(slots=True)
class Collected:
    """Every sample of one run, one entry per repetition."""

    wrk: dict[str, list[WrkResult]] = field(default_factory=dict)
    growth: dict[int, list[WrkResult]] = field(default_factory=dict)
    consume: list[float] = field(default_factory=list)
    copy: list[float] = field(default_factory=list)
    replay: list[ReplayResult] = field(default_factory=list)
    batch: list[float] = field(default_factory=list)
    bulk: list[float] = field(default_factory=list)
    e2e: list[EndToEnd] = field(default_factory=list)
    audience: AudienceSamples = field(default_factory=AudienceSamples)
    api_peak_mb: float = 0.0
    replay_events: int = 0
    connections: int = 32


def _rates(results: Sequence[WrkResult]) -> tuple[float, ...]:
    return tuple(r.requests_per_s for r in results)


def _p50(results: Sequence[WrkResult]) -> tuple[float, ...]:
    return tuple(r.p50_ms for r in results)


def _p99(results: Sequence[WrkResult]) -> tuple[float, ...]:
    return tuple(r.p99_ms for r in results)


def _cpu(results: Sequence[WrkResult]) -> tuple[float, ...]:
    """The server's CPU microseconds per request, run by run (runs without the figure left out)."""
    return tuple(
        r.server_cpu_us_per_request for r in results if r.server_cpu_us_per_request is not None
    )


def error_share(results: Sequence[WrkResult]) -> float:
    requests = sum(r.requests for r in results)
    return sum(r.errors for r in results) / requests if requests else 0.0


def _errors_note(results: Sequence[WrkResult]) -> str:
    errors = sum(r.errors for r in results)
    return (
        f"{errors:,} failed or non-2xx of {sum(r.requests for r in results):,} requests"
        if errors
        else ""
    )


def http_rows(c: Collected, sizes: Sizes) -> list[Measurement]:
    subjects, reduced = size_note(sizes.subjects, ISSUE_SUBJECTS, "subjects")
    get = c.wrk.get
    ours, read = get(DECISION, []), get(B_READ, [])
    conn = f"{c.connections} connections"
    decision = f"single decision, {conn}"
    rows = [
        Measurement(
            decision,
            "throughput",
            "req/s",
            _rates(ours),
            Target("ratio_min", 0.9),
            B_READ,
            _rates(read),
            subjects,
            reduced,
            _errors_note(ours),
            error_share(ours),
        ),
        Measurement(
            decision,
            "throughput",
            "req/s",
            _rates(ours),
            Target("ratio_min", 1.0, "stretch"),
            B_READ,
            _rates(read),
            subjects,
            reduced,
        ),
        Measurement(
            decision, "p50", "ms", _p50(ours), Target("info"), B_READ, _p50(read), subjects, reduced
        ),
        Measurement(
            decision,
            "p99",
            "ms",
            _p99(ours),
            Target("ratio_max", 1.5),
            B_READ,
            _p99(read),
            subjects,
            reduced,
            error_share=error_share(ours),
        ),
        Measurement(
            decision,
            "server CPU",
            "us/request",
            _cpu(ours),
            Target("info"),
            B_READ,
            _cpu(read),
            subjects,
            reduced,
        ),
    ]
    grants, write = get(GRANT, []), get(B_WRITE, [])
    grant = f"command (grant), {conn}"
    rows += [
        Measurement(
            grant,
            "throughput",
            "req/s",
            _rates(grants),
            Target("ratio_min", 0.8),
            B_WRITE,
            _rates(write),
            subjects,
            reduced,
            _errors_note(grants),
            error_share(grants),
        ),
        Measurement(
            grant,
            "p50",
            "ms",
            _p50(grants),
            Target("info"),
            B_WRITE,
            _p50(write),
            subjects,
            reduced,
        ),
        Measurement(
            grant,
            "p99",
            "ms",
            _p99(grants),
            Target("info"),
            B_WRITE,
            _p99(write),
            subjects,
            reduced,
        ),
        Measurement(
            grant,
            "server CPU",
            "us/request",
            _cpu(grants),
            Target("info"),
            B_WRITE,
            _cpu(write),
            subjects,
            reduced,
        ),
    ]
    history = get(HISTORY, [])
    size = f"{sizes.history_events:,} events"
    scenario = f"subject history ({sizes.history_events:,} events), 1 connection"
    rows += [
        Measurement(scenario, "p50", "ms", _p50(history), size=size),
        Measurement(
            scenario,
            "p99",
            "ms",
            _p99(history),
            Target("max", 20),
            size=size,
            reduced=sizes.history_events < ISSUE_HISTORY_EVENTS,
            note=_errors_note(history),
            error_share=error_share(history),
        ),
    ]
    http = get(B_HTTP, [])
    fastest = tuple(max(pair) for pair in zip(_rates(ours), _rates(grants), strict=False))
    cpu = [r.cpu_share for r in http]
    note = f"wrk used {max(cpu):.2f} cores at most against B-http" if cpu else ""
    rows.append(
        Measurement(
            "load generator: wrk against B-http",
            "ceiling",
            "req/s",
            _rates(http),
            Target("ratio_min", 2.0),
            "fastest ledger scenario",
            fastest,
            note=note,
            error_share=error_share(http),
        )
    )
    return rows


def replay_rows(c: Collected, sizes: Sizes) -> list[Measurement]:
    events, reduced = size_note(c.replay_events, ISSUE_REPLAY_EVENTS, "events")
    floor = tuple(min(a, b) for a, b in zip(c.consume, c.copy, strict=False))
    note = (
        f"B-consume {median_text(c.consume)} records/s, B-copy {median_text(c.copy)} rows/s"
        if c.consume and c.copy
        else ""
    )
    rows = [
        Measurement(
            "projector replay into empty projections",
            "throughput",
            "events/s",
            tuple(r.rate for r in c.replay),
            Target("ratio_min", 0.5),
            "min(B-consume, B-copy)",
            floor,
            events,
            reduced,
            note,
        ),
        Measurement(
            "baseline B-consume: bare consumer",
            "throughput",
            "records/s",
            tuple(c.consume),
            size=events,
            reduced=reduced,
        ),
        Measurement(
            "baseline B-copy: copy_records_to_table",
            "throughput",
            "rows/s",
            tuple(c.copy),
            size=events,
            reduced=reduced,
        ),
    ]
    first = tuple(r.rss_first_half_mb for r in c.replay)
    second = tuple(r.rss_second_half_mb for r in c.replay)
    rows += [
        Measurement(
            "memory: API during the replay",
            "peak RSS",
            "MB",
            tuple(r.api_peak_mb for r in c.replay),
            Target("max", 200),
            size=events,
            reduced=reduced,
        ),
        Measurement(
            "memory: projector during the replay",
            "peak RSS",
            "MB",
            tuple(r.projector_peak_mb for r in c.replay),
            size=events,
            reduced=reduced,
        ),
        Measurement(
            "memory: projector, 2nd half of the replay",
            "peak RSS",
            "MB",
            second,
            Target("ratio_max", 1.2, "bounded"),
            "1st half peak",
            first,
            events,
            reduced,
        ),
    ]
    if c.api_peak_mb:
        rows.append(
            Measurement("memory: API over the whole run", "peak RSS", "MB", (c.api_peak_mb,))
        )
    return rows


def _cores_note(runs: Sequence[EndToEnd]) -> str:
    """The most cores each process used in any run: where the machine's CPU went."""
    most: dict[str, float] = {}
    for run in runs:
        for name, cores in run.cores.items():
            most[name] = max(most.get(name, 0.0), cores)
    if not most:
        return ""
    used = ", ".join(f"{name} {cores:.2f}" for name, cores in most.items())
    return f"cores used at most during a run: {used}"


def client_rows(c: Collected, sizes: Sizes) -> list[Measurement]:
    subjects, reduced = size_note(sizes.subjects, ISSUE_SUBJECTS, "subjects")
    batch_size, batch_reduced = size_note(sizes.batch, ISSUE_BATCH, "recipients")
    scenario = f"end to end at {sizes.e2e_rate:,} commands/s: ack to decision"
    p50 = tuple(v for r in c.e2e if (v := percentile(r.latencies_ms, 50)) is not None)
    p99 = tuple(v for r in c.e2e if (v := percentile(r.latencies_ms, 99)) is not None)
    failed = sum(r.errors + r.wrong for r in c.e2e)
    done = sum(len(r.latencies_ms) for r in c.e2e)
    note = f"{failed:,} commands failed or were not reflected" if failed else ""
    share = failed / (failed + done) if failed + done else 0.0
    cores = _cores_note(c.e2e)
    return [
        Measurement(scenario, "p50", "ms", p50, size=subjects, reduced=reduced),
        Measurement(
            scenario,
            "p99",
            "ms",
            p99,
            Target("max", 100),
            size=subjects,
            reduced=reduced,
            note=note,
            error_share=share,
        ),
        Measurement(
            scenario,
            "achieved rate",
            "commands/s",
            tuple(r.achieved_rate for r in c.e2e),
            Target("min", 0.95 * sizes.e2e_rate),
            note=cores,
        ),
        Measurement(
            f"batch decision, {sizes.batch:,} recipients",
            "throughput",
            "recipients/s",
            tuple(c.batch),
            Target("ratio_min", 0.8),
            "B-bulk",
            tuple(c.bulk),
            batch_size,
            batch_reduced,
        ),
    ]


def growth_rows(c: Collected, sizes: Sizes) -> list[Measurement]:
    if not c.growth:
        return []
    steps = sorted(c.growth)
    smallest = _p99(c.growth[steps[0]])
    rows = []
    for n, step in enumerate(steps):
        issue = ISSUE_GROWTH[n] if len(steps) == len(ISSUE_GROWTH) else step
        size, reduced = size_note(step, issue, "subjects")
        results = c.growth[step]
        target = Target("info") if step == steps[0] else Target("ratio_max", 1.3, "flat")
        base = f"p99 at {steps[0]:,} subjects" if step != steps[0] else ""
        rows.append(
            Measurement(
                f"growth: single decision, {step:,} subjects",
                "p99",
                "ms",
                _p99(results),
                target,
                base,
                smallest if base else (),
                size,
                reduced,
                _errors_note(results),
                error_share(results),
            )
        )
    return rows


def measurements(c: Collected, sizes: Sizes) -> list[Measurement]:
    return [
        *http_rows(c, sizes),
        *client_rows(c, sizes),
        *audience_rows(c.audience),
        *replay_rows(c, sizes),
        *growth_rows(c, sizes),
    ]
