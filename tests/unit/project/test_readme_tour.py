"""How the README's curl tour is found and cut into calls (tests/readme_tour.py): a README
without the tour, or with a tour of another shape, fails with a message that says so."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.readme_tour import Step, TourError, tour_script, tour_steps

SETUP = 'URL=${URL:-http://127.0.0.1:8000}\nfield() { echo "$1"; }'
GRANT = '# 1. grant\ngrant=$(curl -fsS -X POST "$URL/v1/subjects/s/consents")'
DECISION = 'curl -fsS "$URL/v1/decision?min_token=$(echo "$grant" | field token)"'
UNSUBSCRIBE = (
    'link=$(curl -fsS -X POST "$URL/v1/unsubscribe-links" | field url)\n'
    'curl -fsS -X POST "$link" -d List-Unsubscribe=One-Click'
)


def block(*paragraphs: str, first: str = "# tour") -> str:
    return "```sh\n" + first + "\n" + "\n\n".join(paragraphs) + "\n```\n"


def test_a_tour_is_cut_into_set_up_and_its_three_calls_in_order() -> None:
    readme = "# Title\n\n```sh\nmake up\n```\n\n" + block(SETUP, GRANT, DECISION, UNSUBSCRIBE)
    assert tour_steps(readme) == [
        Step(f"# tour\n{SETUP}", None),
        Step(GRANT, "grant"),
        Step(DECISION, "decision"),
        Step(UNSUBSCRIBE, "unsubscribe"),
    ]


@pytest.mark.parametrize(
    ("readme", "message"),
    [
        pytest.param("# Title\n", "has 0 ```sh blocks whose first line is `# tour`", id="none"),
        pytest.param(
            block(GRANT, DECISION, UNSUBSCRIBE, first="# a tour"),
            "has 0 ```sh blocks",
            id="another-first-line",
        ),
        pytest.param(
            block(GRANT, DECISION, UNSUBSCRIBE) + block(GRANT, DECISION, UNSUBSCRIBE),
            "has 2 ```sh blocks",
            id="two",
        ),
        pytest.param(
            block(SETUP, GRANT, DECISION),
            "has 2 calls (paragraphs that run curl); it must have 3",
            id="a-call-missing",
        ),
        pytest.param(
            block(GRANT, DECISION, UNSUBSCRIBE, DECISION),
            "has 4 calls",
            id="a-call-more",
        ),
        pytest.param(
            block(DECISION, GRANT, UNSUBSCRIBE),
            "the tour's grant call does not mention ['/consents']",
            id="out-of-order",
        ),
        pytest.param(
            block(GRANT, DECISION.replace("min_token", "token"), UNSUBSCRIBE),
            "the tour's decision call does not mention ['min_token']",
            id="decision-without-min-token",
        ),
    ],
)
def test_a_readme_without_the_three_call_tour_is_refused(readme: str, message: str) -> None:
    with pytest.raises(TourError) as refused:
        tour_steps(readme)
    assert message in str(refused.value)


def test_a_comment_that_mentions_curl_is_no_call() -> None:
    steps = tour_steps(block(GRANT, "# curl is only mentioned here", DECISION, UNSUBSCRIBE))
    assert [s.call for s in steps] == ["grant", None, "decision", "unsubscribe"]


def test_the_script_keeps_variables_across_calls_and_each_calls_output_apart(
    tmp_path: Path,
) -> None:
    steps = [
        Step("name=ledger", None),
        Step("echo granted $name\necho to-stderr >&2", "grant"),
        Step("echo decided $name", "decision"),
    ]
    subprocess.run(["bash", "-c", tour_script(steps, tmp_path)], check=True, timeout=30)
    assert (tmp_path / "grant.out").read_text() == "granted ledger\n"
    assert (tmp_path / "grant.err").read_text() == "to-stderr\n"
    assert (tmp_path / "decision.out").read_text() == "decided ledger\n"


def test_the_script_stops_at_the_first_failing_call(tmp_path: Path) -> None:
    steps = [Step("false | cat", "grant"), Step("echo never", "decision")]
    done = subprocess.run(["bash", "-c", tour_script(steps, tmp_path)], timeout=30)
    assert done.returncode != 0
    assert not (tmp_path / "decision.out").exists()
