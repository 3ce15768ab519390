"""Load from wrk, a real HTTP load generator: its request rate and its own latency percentiles.

Latency figures come from wrk (closed loop: each connection sends its next request when the
previous answer is in), never from the server. wrk's CPU time is read from the kernel's
accounting of the child, so the table can show how much of the machine the generator took.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

SCRIPT: Final = Path(__file__).with_name("wrk_report.lua")
MARKER: Final = "WRK_JSON "


class WrkMissing(RuntimeError):
    """wrk is not installed; the message says how to get it."""


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    duration_s: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    #: CPU seconds wrk itself used (user + system)
    cpu_s: float = 0.0
    #: CPU seconds the server process under load used meanwhile (None: not measured)
    server_cpu_s: float | None = None

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def server_cpu_us_per_request(self) -> float | None:
        """The server process's CPU time per answered request: unlike req/s, it hardly moves
        when other work on the machine takes CPU away, so it shows what a change saved."""
        if self.server_cpu_s is None or not self.requests:
            return None
        return self.server_cpu_s / self.requests * 1e6

    @property
    def cpu_share(self) -> float:
        """wrk's CPU use in cores (1.0 = one core busy for the whole run)."""
        return self.cpu_s / self.duration_s if self.duration_s else 0.0


def parse_report(stdout: str, cpu_s: float = 0.0) -> WrkResult:
    """The report line the Lua script's done() prints; errors count failed connections,
    reads, writes, timeouts and non-2xx/3xx answers alike."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            break
    else:
        raise ValueError(f"wrk printed no {MARKER.strip()} line; its output was:\n{stdout}")
    errors = sum(
        int(data[f"errors_{kind}"]) for kind in ("connect", "read", "write", "status", "timeout")
    )
    return WrkResult(
        requests=int(data["requests"]),
        duration_s=int(data["duration_us"]) / 1e6,
        errors=errors,
        p50_ms=int(data["p50_us"]) / 1000,
        p90_ms=int(data["p90_us"]) / 1000,
        p99_ms=int(data["p99_us"]) / 1000,
        max_ms=int(data["max_us"]) / 1000,
        cpu_s=cpu_s,
    )


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkMissing(
            "wrk is not installed: `make bench` installs it with apt-get when run as root on"
            " Debian/Ubuntu; otherwise install the `wrk` package (or build it from"
            " github.com/wg/wrk) and put it on PATH"
        )
    return found


@dataclass(frozen=True, slots=True)
class Load:
    """What to ask: `{n}` in the path and body becomes a random number below `count`."""

    method: str
    path: str
    count: int = 1
    body: str = ""


def run_wrk(
    base_url: str,
    load: Load,
    *,
    connections: int,
    duration_s: float,
    threads: int = 1,
    admin_key: str = "",
) -> WrkResult:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        [
            wrk_binary(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration_s:g}s",
            "--timeout",
            "10s",
            "-s",
            str(SCRIPT),
            base_url,
            "--",
            load.method,
            load.path,
            str(max(1, load.count)),
            load.body,
            admin_key,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=duration_s + 60,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return parse_report(completed.stdout, cpu)
