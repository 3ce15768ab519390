"""`make bench`: run every scenario and baseline several times and print the table; write it
as JSON and Markdown under bench/results/ (and the py-spy summaries with --profile), and as
the latest run of bench/RESULTS.md, the record kept in the repository.

    .venv/bin/python -m bench.run [--scale 0.1] [--runs 3] [--duration 10] [--profile]

Servers: KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL when both are set, else the embedded ones
(PostgreSQL data and the generated dataset are kept under --data-dir between runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.processes import servers
from bench.profile import Profile, render
from bench.report import Collected, measurements
from bench.results_file import Run, write_results_file
from bench.sizes import sizes_for
from bench.suite import Options, run_suite, say
from bench.table import evaluate, misses, render_markdown, render_text, to_json
from bench.wrk import WrkMissing, wrk_binary

ROOT = Path(__file__).resolve().parents[1]
PROFILE_TITLES = {
    "decision": "single decision, the API process (last run)",
    "grant": "command (grant), the API process (last run)",
    "B-read": "B-read, the baseline process (last run)",
    "B-write": "B-write, the baseline process (last run)",
    "replay": "replay, the projector process (last replay)",
    "audience": "audience, the API process (last JSON lines pull)",
}


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=0.1,
        help="fraction of the issue's data sizes (1 = 1,000,000 subjects, growth up to 10M)",
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions of every measurement")
    parser.add_argument(
        "--replay-runs", type=int, default=1, help="replays of the whole log (each is long)"
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of wrk warm-up per load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--e2e-rate", type=int, default=1000, help="commands per second of the end-to-end run"
    )
    parser.add_argument("--e2e-seconds", type=float, default=10)
    parser.add_argument("--partitions", type=int, default=12, help="of the event topic")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="py-spy the decision, grant, replay")
    parser.add_argument("--no-growth", action="store_true", help="skip the growth scenario")
    parser.add_argument(
        "--only",
        choices=("all", "replay", "growth", "audience"),
        default="all",
        help="replay: only the dataset, B-consume, B-copy and the replays (no HTTP, no growth);"
        " growth: only the growth scenario; audience: the replays, then the audience line",
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".ledger" / "bench")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--results-file",
        type=Path,
        default=ROOT / "bench" / "RESULTS.md",
        help="the record of runs kept in the repository, rewritten after a complete run",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.replay_runs < 1:
        parser.error("--runs and --replay-runs must be at least 1")
    return Options(
        scale=args.scale,
        runs=args.runs,
        replay_runs=args.replay_runs,
        duration_s=args.duration,
        warmup_s=args.warmup,
        connections=args.connections,
        threads=args.threads,
        e2e_seconds=args.e2e_seconds,
        partitions=args.partitions,
        seed=args.seed,
        profile=args.profile,
        growth=not args.no_growth and args.only in ("all", "growth"),
        http=args.only == "all",
        replays=args.only in ("all", "replay", "audience"),
        audience=args.only in ("all", "audience"),
        data_dir=args.data_dir.resolve(),
        results_dir=args.results_dir.resolve(),
        results_file=args.results_file.resolve(),
        e2e_rate=args.e2e_rate,
    )


def machine(opts: Options, server_kind: str) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run(
        [wrk_binary(), "-v"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "servers": server_kind,
        "wrk": wrk_version[0] if wrk_version else "unknown",
        "scale": opts.scale,
        "runs": opts.runs,
        "replay_runs": opts.replay_runs,
        "wrk_seconds": opts.duration_s,
        "connections": opts.connections,
        "wrk_threads": opts.threads,
    }


def code_version() -> str:
    """The commit measured, and whether the checkout differs from it (RESULTS.md aside)."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        except OSError:  # no git: the code is not named
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/RESULTS.md")
    return f"{commit} (modified)" if changed else commit


def header(info: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.1f}" for x in info["load_average_at_start"])
    return (
        f"{info['cores']} cores ({info['cpu']}), load average at start {load}; servers"
        f" {info['servers']}; {info['wrk']}; scale {info['scale']:g}, {info['runs']} runs of"
        f" {info['wrk_seconds']:g}s, {info['replay_runs']} replay run(s)"
    )


def write_results(
    directory: Path, info: dict[str, Any], rows: list[dict[str, Any]], md: str, stamp: str
) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    document = {"machine": info, "results": rows}
    markdown = f"# Benchmark {stamp}\n\n{header(info)}\n\n{md}\n"
    written = []
    for name in (f"bench-{stamp}", "latest"):
        json_path, md_path = directory / f"{name}.json", directory / f"{name}.md"
        json_path.write_text(json.dumps(document, indent=2) + "\n")
        md_path.write_text(markdown)
        written += [json_path, md_path]
    return written


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv)
    started = datetime.now(UTC)
    command = shlex.join(["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)])
    try:
        wrk_binary()
    except WrkMissing as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    sizes = sizes_for(opts.scale, opts.e2e_rate)
    profiles: dict[str, Profile] = {}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    collected = Collected(connections=opts.connections)
    failure: BaseException | None = None
    with servers(opts.data_dir) as found:
        info = machine(opts, found.kind)
        say(header(info))
        try:
            asyncio.run(run_suite(opts, sizes, found, profiles, collected))
        except Exception as exc:  # what was measured before the failure is still written
            failure = exc
    outcomes = [evaluate(m) for m in measurements(collected, sizes)]
    print()
    print(header(info))
    print(render_text(outcomes))
    for o in misses(outcomes):
        m = o.measurement
        print(f"missed: {m.scenario}, {m.figure}: {o.verdict}")
    for name, profile in profiles.items():
        summary = render(PROFILE_TITLES.get(name, name), profile)
        print()
        print(summary)
        (opts.results_dir / f"profile-{name}-{stamp}.txt").write_text(summary + "\n")
    for path in write_results(
        opts.results_dir, info, to_json(outcomes), render_markdown(outcomes), stamp
    ):
        say(f"wrote {path}")
    if failure is not None:
        say(f"the run stopped early; the table has what was measured before: {failure!r}")
        say(f"{opts.results_file} keeps the last complete run")
        raise failure
    run = Run(started, command, code_version(), header(info))
    write_results_file(opts.results_file, run, outcomes)
    say(f"wrote {opts.results_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
