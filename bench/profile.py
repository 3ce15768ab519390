"""Sampling profiles of the API and the projector with py-spy, reduced to the top costs.

py-spy attaches to a running process without changing it (--nonblocking: it does not pause
the process to sample). Its raw output is one line per distinct stack, `frame;frame;... count`;
the summary counts each function's own samples (where the CPU was) and its inclusive samples
(where the time went, callees included).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Profile:
    samples: int
    own: Counter[str]
    inclusive: Counter[str]


def aggregate(raw: str) -> Profile:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return Profile(total, own, inclusive)


def top(profile: Profile, n: int = 15) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """The n largest own and inclusive costs as (share of samples in %, frame)."""

    def shares(counter: Counter[str]) -> list[tuple[float, str]]:
        if not profile.samples:
            return []
        return [(c / profile.samples * 100, frame) for frame, c in counter.most_common(n)]

    return shares(profile.own), shares(profile.inclusive)


def render(title: str, profile: Profile, n: int = 15) -> str:
    own, inclusive = top(profile, n)
    lines = [f"{title}: {profile.samples} samples (CPU-busy samples only)", "", "own time:"]
    lines += [f"  {share:5.1f}%  {frame}" for share, frame in own]
    lines += ["", "inclusive time (callees included):"]
    lines += [f"  {share:5.1f}%  {frame}" for share, frame in inclusive]
    return "\n".join(lines)


class Recorder:
    """py-spy recording one process until stopped."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.log = out.with_suffix(".log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--output",
                str(out),
                "--format",
                "raw",
                "--nolineno",
                "--rate",
                str(rate),
                "--nonblocking",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> Profile | None:
        """Stop sampling (py-spy writes its file on SIGINT) and read the profile."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        if not self.out.exists():
            return None
        return aggregate(self.out.read_text(errors="replace"))
