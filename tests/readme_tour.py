"""The README's curl tour as a script: found by its `# tour` first line, cut into its calls, and
run so that each call's output lands in files of its own (tests/e2e/test_readme_tour.py)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Final

README: Final = Path(__file__).resolve().parents[1] / "README.md"

#: a fenced `sh` block whose first line is the comment `# tour`
_BLOCK: Final = re.compile(r"^```sh\n(# tour\b[^\n]*\n.*?)^```$", re.MULTILINE | re.DOTALL)
_CURL: Final = re.compile(r"^(?!\s*#).*\bcurl\b", re.MULTILINE)

#: what each call of the tour must do, in this order: its name and the text that shows it
CALLS: Final = (
    ("grant", ("/consents",)),
    ("decision", ("/v1/decision", "min_token")),
    ("unsubscribe", ("/v1/unsubscribe-links", "List-Unsubscribe=One-Click")),
)


class TourError(AssertionError):
    """The README has no tour this test can run, or one of another shape."""


@dataclass(frozen=True)
class Step:
    """A paragraph of the block: a call (it runs curl) or set-up (variables, a helper)."""

    text: str
    call: str | None


def tour_steps(markdown: str) -> list[Step]:
    """The paragraphs of the one `# tour` block, each call named after the entry of CALLS it
    matches; raises TourError naming what is missing or extra."""
    blocks = _BLOCK.findall(markdown)
    if len(blocks) != 1:
        raise TourError(
            f"README.md has {len(blocks)} ```sh blocks whose first line is `# tour`; the curl "
            f"tour must be exactly one, with the calls {', '.join(n for n, _ in CALLS)}"
        )
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", blocks[0]) if p.strip()]
    calls = [p for p in paragraphs if _CURL.search(p)]
    if len(calls) != len(CALLS):
        raise TourError(
            f"the README's tour has {len(calls)} calls (paragraphs that run curl); it must have "
            f"{len(CALLS)}: {', '.join(n for n, _ in CALLS)}"
        )
    names = iter(CALLS)
    steps = []
    for paragraph in paragraphs:
        if paragraph not in calls:
            steps.append(Step(paragraph, None))
            continue
        name, marks = next(names)
        missing = [m for m in marks if m not in paragraph]
        if missing:
            raise TourError(f"the tour's {name} call does not mention {missing}:\n{paragraph}")
        steps.append(Step(paragraph, name))
    return steps


def tour_script(steps: list[Step], outputs: Path) -> str:
    """A bash script of the steps in order, stopping at the first failure, with each call's
    stdout and stderr written to `outputs/<call>.out` and `.err`; set-up runs as it is, so
    the variables it and the calls set reach the next call."""
    parts = ["set -euo pipefail"]
    for step in steps:
        if step.call is None:
            parts.append(step.text)
        else:
            out, err = (shlex.quote(str(outputs / f"{step.call}.{s}")) for s in ("out", "err"))
            parts.append(f"{{\n{step.text}\n}} >{out} 2>{err}")
    return "\n".join(parts) + "\n"
