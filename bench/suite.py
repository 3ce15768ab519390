"""One benchmark run, in order: data into a fresh topic, the log and database baselines, the
replay (which builds the state the HTTP scenarios read), the HTTP scenarios with their
baselines interleaved run by run, the batch and end-to-end scenarios, then growth.

Baselines and scenarios alternate within each repetition, so a change in the machine's load
during the run touches both sides of a ratio alike.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench import audience_scenario, client_scenarios, dataset, growth, processes, replay
from bench.processes import Child, LedgerNames, Servers
from bench.profile import Profile, Recorder
from bench.report import B_HTTP, B_READ, B_WRITE, DECISION, GRANT, HISTORY, Collected
from bench.sizes import Sizes
from bench.wrk import Load, WrkResult, run_wrk
from projections import offsets
from services.config import Settings
from services.ledger.record_producer import writer_macs
from services.ledger.topic import ensure_topic, highwaters

#: the HTTP scenarios `--profile` samples (the server process, during their last run); the
#: baselines too, so a profile of ours can be read against what the baseline spends
PROFILED = (B_READ, DECISION, B_WRITE, GRANT)
GRANT_BODY = '{"purpose":"newsletter","channel":"email"}'
#: B-copy and B-consume never need more rows than the issue's replay
COPY_ROWS_MAX = 1_000_000


@dataclass(frozen=True, slots=True)
class Options:
    scale: float
    runs: int
    replay_runs: int
    duration_s: float
    warmup_s: float
    connections: int
    threads: int
    e2e_seconds: float
    partitions: int
    seed: int
    profile: bool
    growth: bool
    #: the HTTP, batch and end-to-end scenarios (off with `--only replay` or `--only growth`)
    http: bool
    #: producing the dataset, B-consume, B-copy and the replays (off with `--only growth`)
    replays: bool
    #: the audience streamed against B-copy-audience (on the last replay's state)
    audience: bool
    data_dir: Path
    results_dir: Path
    #: bench/RESULTS.md, rewritten after a complete run
    results_file: Path
    e2e_rate: int


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


@dataclass(slots=True)
class Stage:
    """What the run has started, so that everything is stopped whatever fails."""

    found: Servers
    names: LedgerNames
    admin_key: str
    env: dict[str, str]
    log_dir: Path
    api: Child | None = None
    projector: Child | None = None
    baselines: Child | None = None

    def stop(self) -> None:
        for child in (self.baselines, self.api, self.projector):
            if child is not None:
                child.stop()


async def run_suite(
    opts: Options,
    sizes: Sizes,
    found: Servers,
    profiles: dict[str, Profile],
    collected: Collected,
) -> None:
    """Run every scenario the options ask for, adding each figure to `collected` as soon as it
    is measured (so a failure late in a run keeps what came before)."""
    data = dataset.ensure_dataset(
        opts.data_dir / "data", sizes.subjects, sizes.history_events, opts.partitions, opts.seed
    )
    say(f"dataset: {data.events:,} events of {data.subjects:,} subjects ({data.path.name})")
    run_id = time.strftime("%Y%m%d%H%M%S")
    names = LedgerNames(run_id)
    admin_key = processes.new_admin_key()
    env = processes.ledger_environment(found, found.database_url, names, admin_key)
    env["LEDGER_TOPIC_PARTITIONS"] = str(opts.partitions)
    stage = Stage(found, names, admin_key, env, opts.data_dir / "logs" / run_id)
    collected.replay_events = data.events
    try:
        await ensure_topic(Settings.from_env(env))
        await processes.create_topics(found.kafka, [names.baseline_topic], opts.partitions)
        if opts.replays:
            say(f"producing the dataset into {env['LEDGER_TOPIC']}")
            await dataset.produce(
                data,
                found.kafka,
                env["LEDGER_TOPIC"],
                writer_macs(Settings.from_env(env).writer_key_ring()),
                idempotence=found.idempotence,
            )
            await _log_baselines(opts, stage, data, collected)
            await _replays(opts, stage, data, collected, profiles)
        if opts.http:
            await _http(opts, sizes, stage, collected, profiles)
            await _client(opts, sizes, stage, collected)
        if opts.audience:
            await _audience(opts, stage, collected, profiles)
        if stage.api is not None:
            memory = stage.api.memory()
            collected.api_peak_mb = memory.peak_mb if memory else 0.0
        stage.stop()
        if opts.growth:
            await _growth(opts, sizes, stage, collected)
    finally:
        stage.stop()
        for n in range(opts.replay_runs):
            await processes.drop_database(found.database_url, f"bench_replay_{n}")
        await processes.drop_database(found.database_url, "bench_scratch")
        if found.kind == "external":
            await processes.delete_topics(found.kafka, names.all_topics())


async def _log_baselines(
    opts: Options, stage: Stage, data: dataset.Dataset, collected: Collected
) -> None:
    scratch = await processes.fresh_database(stage.found.database_url, "bench_scratch")
    rows = dataset.copy_rows(data, min(data.events, COPY_ROWS_MAX))
    for run in range(opts.runs):
        say(f"B-consume and B-copy, run {run + 1}/{opts.runs}")
        collected.consume.append(
            await replay.drain_rate(stage.found.kafka, stage.env["LEDGER_TOPIC"], len(rows))
        )
        collected.copy.append(await replay.copy_rate(scratch, rows))


async def _replays(
    opts: Options,
    stage: Stage,
    data: dataset.Dataset,
    collected: Collected,
    profiles: dict[str, Profile],
) -> None:
    """Each replay into a fresh database; the last one's API and projector stay up and its
    state is what the HTTP scenarios read."""
    for n in range(opts.replay_runs):
        last = n == opts.replay_runs - 1
        url = await processes.fresh_database(stage.found.database_url, f"bench_replay_{n}")
        stage.env["DATABASE_URL"] = url
        stage.api = processes.start_api(stage.env, stage.log_dir)
        started = time.monotonic()
        stage.projector = processes.start_projector(
            stage.env, stage.log_dir, f"bench-projector-{stage.names.run}-{n}"
        )
        recorder = None
        if opts.profile and last:
            recorder = Recorder(stage.projector.pid, opts.results_dir / "profile-replay.raw")
        say(f"replay {n + 1}/{opts.replay_runs}: {data.events:,} events into empty projections")
        result = await replay.watch_replay(
            url, stage.env["LEDGER_TOPIC"], data.events, stage.projector, stage.api, started
        )
        if recorder is not None and (profile := recorder.stop()) is not None:
            profiles["replay"] = profile
        say(f"replay {n + 1}: {result.rate:,.0f} events/s over {result.seconds:.1f}s")
        collected.replay.append(result)
        if not last:
            stage.stop()
            stage.api = stage.projector = None
            await processes.drop_database(stage.found.database_url, f"bench_replay_{n}")


#: the state feed has subjects left to publish
QUEUED_FOR_THE_FEED = "SELECT EXISTS (SELECT 1 FROM state_feed_outbox)"


def _loads(sizes: Sizes, stage: Stage) -> list[tuple[str, Child, Load, int | None]]:
    """(name, server, load, connections if not the default) in the order they run."""
    assert stage.api is not None and stage.baselines is not None
    n = sizes.subjects
    decision = "/v1/decision?subject_id=s{n}&purpose=newsletter&channel=email"
    history = f"/v1/subjects/{dataset.HISTORY_SUBJECT}/events"
    return [
        (B_HTTP, stage.baselines, Load("GET", "/b/http"), None),
        (B_READ, stage.baselines, Load("GET", "/b/read?id=s{n}", n), None),
        (DECISION, stage.api, Load("GET", decision, n), None),
        (HISTORY, stage.api, Load("GET", history), 1),
        (B_WRITE, stage.baselines, Load("POST", "/b/write/s{n}", n, GRANT_BODY), None),
        (GRANT, stage.api, Load("POST", "/v1/subjects/s{n}/consents", n, GRANT_BODY), None),
    ]


async def _wrk(
    opts: Options, stage: Stage, server: Child, load: Load, conns: int | None, seconds: float
) -> WrkResult:
    before = processes.cpu_seconds(server.pid)
    result = await asyncio.to_thread(
        run_wrk,
        server.url,
        load,
        connections=conns or opts.connections,
        duration_s=seconds,
        threads=opts.threads,
        admin_key=stage.admin_key,
    )
    after = processes.cpu_seconds(server.pid)
    if before is None or after is None:
        return result
    return dataclasses.replace(result, server_cpu_s=after - before)


async def _http(
    opts: Options, sizes: Sizes, stage: Stage, collected: Collected, profiles: dict[str, Profile]
) -> None:
    stage.baselines = processes.start_baselines(
        {**stage.env, "LEDGER_TOPIC": stage.names.baseline_topic}, stage.log_dir
    )
    loads = _loads(sizes, stage)
    say(f"warming up every HTTP load for {opts.warmup_s:g}s")
    for _, server, load, conns in loads:
        await _wrk(opts, stage, server, load, conns, opts.warmup_s)
    await _caught_up(stage)
    for run in range(opts.runs):
        for name, server, load, conns in loads:
            recorder = None
            if opts.profile and name in PROFILED and run == opts.runs - 1:
                recorder = Recorder(server.pid, opts.results_dir / f"profile-{name}.raw")
            result = await _wrk(opts, stage, server, load, conns, opts.duration_s)
            if recorder is not None and (profile := recorder.stop()) is not None:
                profiles[name] = profile
            collected.wrk.setdefault(name, []).append(result)
            per_request = result.server_cpu_us_per_request
            cpu = f", server CPU {per_request:,.0f} us/request" if per_request else ""
            say(
                f"run {run + 1}/{opts.runs} {name}: {result.requests_per_s:,.0f} req/s,"
                f" p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms,"
                f" errors {result.errors}{cpu}"
            )
        await _caught_up(stage)  # the grants are projected before the next reads


async def _caught_up(stage: Stage, timeout_s: float = 1800) -> None:
    """Wait, bounded, until the projector process is quiet: it has applied everything in the
    event topic and its state feed has published every subject it queued. Measurements then
    start on an idle machine; the feed's backlog after a replay (a state record per subject)
    would otherwise be drained during the HTTP scenarios, on the same cores."""
    topic = stage.env["LEDGER_TOPIC"]
    marks = await highwaters(stage.found.kafka, topic)
    conn = await asyncpg.connect(stage.env["DATABASE_URL"])
    try:
        started = time.monotonic()
        while True:
            stored = await offsets.load(conn, topic)
            applied = all(stored.get(p, 0) >= end for p, end in marks.items())
            if applied and not await conn.fetchval(QUEUED_FOR_THE_FEED):
                break
            if time.monotonic() - started > timeout_s:
                what = "the state feed did not drain" if applied else "the projector lagged"
                raise TimeoutError(f"{what}: {topic} not quiet after {timeout_s:g}s")
            await asyncio.sleep(0.2)
        if (waited := time.monotonic() - started) > 5:
            say(f"waited {waited:.0f}s for the projector and its state feed to be quiet")
    finally:
        await conn.close()


async def _client(opts: Options, sizes: Sizes, stage: Stage, collected: Collected) -> None:
    assert stage.api is not None
    numbers = random.Random(opts.seed).sample(range(sizes.subjects), sizes.batch)
    chosen = [f"{dataset.SUBJECT_PREFIX}{n}" for n in numbers]
    for run in range(opts.runs):
        collected.bulk.append(await client_scenarios.bulk_rate(stage.env["DATABASE_URL"], chosen))
        collected.batch.append(
            await client_scenarios.batch_rate(stage.api.url, stage.admin_key, chosen)
        )
        say(
            f"run {run + 1}/{opts.runs} batch: {collected.batch[-1]:,.0f} recipients/s,"
            f" B-bulk {collected.bulk[-1]:,.0f} keys/s"
        )
    for run in range(opts.runs):
        pids = {"client": os.getpid(), "API": stage.api.pid}
        if stage.projector is not None:
            pids["projector"] = stage.projector.pid
        before = {name: processes.cpu_seconds(pid) for name, pid in pids.items()}
        started = time.monotonic()
        result = await client_scenarios.end_to_end(
            stage.api.url,
            stage.admin_key,
            sizes.e2e_rate,
            opts.e2e_seconds,
            f"{stage.names.run}-{run}",
        )
        result.cores = _cores(pids, before, time.monotonic() - started)
        collected.e2e.append(result)
        p99 = client_scenarios.percentile(result.latencies_ms, 99)
        used = ", ".join(f"{name} {cores:.2f}" for name, cores in result.cores.items())
        say(
            f"run {run + 1}/{opts.runs} end to end: {result.achieved_rate:,.0f} commands/s,"
            f" p99 {p99 or 0:.1f} ms, errors {result.errors}, not reflected {result.wrong};"
            f" cores used: {used}"
        )
        await _caught_up(stage)


async def _audience(
    opts: Options, stage: Stage, collected: Collected, profiles: dict[str, Profile]
) -> None:
    """The whole audience pulled in each format, alternating with B-copy-audience; with
    --profile, the API is sampled during the last JSON lines pull."""
    assert stage.api is not None
    await _caught_up(stage)
    catalogue = Settings.from_env(stage.env).catalogue_file
    samples = collected.audience
    for run in range(opts.runs):
        copied = await audience_scenario.copy_audience(stage.env["DATABASE_URL"], catalogue)
        samples.copied.append(copied.rate)
        rates = [f"B-copy-audience {copied.rate:,.0f}"]
        for fmt in audience_scenario.FORMATS:
            recorder = None
            if opts.profile and fmt == "jsonl" and run == opts.runs - 1:
                recorder = Recorder(stage.api.pid, opts.results_dir / "profile-audience.raw")
            pulled = await audience_scenario.stream_audience(stage.api.url, stage.admin_key, fmt)
            if recorder is not None and (profile := recorder.stop()) is not None:
                profiles["audience"] = profile
            if pulled.considered != copied.considered:
                raise RuntimeError(
                    f"the audience considered {pulled.considered:,} subjects,"
                    f" the COPY copied {copied.considered:,}"
                )
            samples.add(fmt, pulled)
            rates.append(f"{fmt} {pulled.rate:,.0f}")
        say(f"run {run + 1}/{opts.runs} audience, subjects/s: {', '.join(rates)}")


def _cores(
    pids: dict[str, int], before: dict[str, float | None], seconds: float
) -> dict[str, float]:
    """The cores each process used since `before` (CPU seconds per wall-clock second)."""
    out = {}
    for name, pid in pids.items():
        now, then = processes.cpu_seconds(pid), before[name]
        if now is not None and then is not None and seconds > 0:
            out[name] = (now - then) / seconds
    return out


async def _growth(opts: Options, sizes: Sizes, stage: Stage, collected: Collected) -> None:
    """Every state gets its own API, all up at once, measured round by round like the other
    scenarios, so that the ratio to the smallest state is taken under the same load."""
    apis: dict[int, Child] = {}
    try:
        for step in sizes.growth:
            say(f"growth: state of {step:,} subjects (built once, then reused)")
            url, built = await growth.ensure_growth_state(
                stage.found.database_url, step, opts.partitions, opts.seed
            )
            if built:
                say(f"growth: built the state of {step:,} subjects")
            await growth.warm(url)
            # a growth state is folded, not projected: no projector ever reports on it, so the
            # staleness guard (which would refuse every decision) is off for its API
            env = {**stage.env, "DATABASE_URL": url, "LEDGER_MAX_STALENESS_MS": "0"}
            apis[step] = processes.start_api(env, stage.log_dir, f"api-growth-{step}")
        path = "/v1/decision?subject_id=" + growth.SUBJECT_PREFIX + "{n}"
        loads = {
            step: Load("GET", path + "&purpose=newsletter&channel=email", step) for step in apis
        }
        for step, api in apis.items():
            await _wrk(opts, stage, api, loads[step], None, opts.warmup_s)
        for run in range(opts.runs):
            for step, api in apis.items():
                result = await _wrk(opts, stage, api, loads[step], None, opts.duration_s)
                collected.growth.setdefault(step, []).append(result)
                say(f"run {run + 1}/{opts.runs} growth {step:,}: p99 {result.p99_ms:.1f} ms")
    finally:
        for api in apis.values():
            api.stop()
