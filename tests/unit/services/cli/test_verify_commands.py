"""`consent-ledger verify` and `checkpoint-verify` without servers: what each needs, how they
find a running `up`, and what they print."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from projections.chain_verify import HASH_MISMATCH, Break, SubjectVerifier
from schemas.codec import default_codec
from services.cli import main as cli
from services.cli import operator_commands as operator_cli
from services.proof.checkpoint_verify import (
    CheckpointInputError,
    Options,
    read_file,
    required_servers,
)
from services.proof.verify_chains import LISTED, Summary, report


@pytest.mark.parametrize(
    ("options", "needs"),
    [
        (Options(), ("KAFKA_BOOTSTRAP_SERVERS",)),
        (Options("journal"), ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")),
        (Options("journal", Path("kept.jsonl")), ("DATABASE_URL",)),
        (Options("topic", Path("kept.jsonl")), ("KAFKA_BOOTSTRAP_SERVERS",)),
    ],
)
def test_checkpoint_verify_needs_only_the_servers_it_reads(
    options: Options, needs: tuple[str, ...]
) -> None:
    assert required_servers(options) == needs


def test_both_commands_use_a_running_up() -> None:
    assert (
        {"verify", "checkpoint-verify"} <= set(operator_cli.SESSION_COMMANDS) <= set(cli.COMMANDS)
    )


@pytest.mark.parametrize(
    ("argv", "missing"),
    [
        (["verify"], "set DATABASE_URL\n"),
        (["checkpoint-verify"], "set KAFKA_BOOTSTRAP_SERVERS\n"),
        (["checkpoint-verify", "--source", "journal"], "KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL"),
    ],
)
def test_without_servers_they_say_which_to_set(
    argv: list[str],
    missing: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEDGER_DATA_DIR", str(tmp_path))  # no session file of a running `up`
    assert cli.main(argv) == 2
    assert missing in capsys.readouterr().err


def _broken(subject: str) -> tuple[str, Break]:
    return subject, Break(uuid.UUID(int=1), 2, 17, HASH_MISMATCH, "the stored hash differs")


def test_the_report_names_the_first_broken_link_and_counts_the_rest() -> None:
    assert report(Summary(3, 10, purposes=11, notices=1)) == (
        "verify: 10 events in 15 chains (3 subjects, 11 purposes, 1 privacy notices):"
        " every chain is intact"
    )
    broken = [_broken("purpose/newsletter"), *(_broken(f"s-{i}") for i in range(LISTED - 1))]
    summary = Summary(1200, 9000, LISTED + 5, broken, purposes=11)
    lines = report(summary).splitlines()
    assert lines[0] == (
        f"verify: BROKEN: {LISTED + 5} of 1,211 chains (1,200 subjects, 11 purposes, 0 privacy"
        " notices) have a broken link (9,000 events checked)"
    )
    assert lines[1] == (
        "  first broken link: purpose newsletter, event 00000000-0000-0000-0000-000000000001"
        " (partition 2, offset 17): hash_mismatch: the stored hash differs"
    )
    assert lines[2].strip().startswith("subject s-0, event")
    assert len(lines) == 1 + LISTED + 1 and lines[-1] == "  ... and 5 more chains"


def test_the_summary_keeps_only_the_first_broken_subjects() -> None:
    summary = Summary()
    for i in range(LISTED + 3):
        verifier = SubjectVerifier(f"s-{i}", default_codec())
        verifier.events = 2
        verifier.first_broken = _broken(f"s-{i}")[1]
        summary.add(verifier)
    summary.add(SubjectVerifier("fine", default_codec()))
    summary.add(SubjectVerifier("purpose/newsletter", default_codec()))
    summary.add(SubjectVerifier("notice/2026-01", default_codec()))
    assert (summary.subjects, summary.events, summary.broken_chains) == (
        LISTED + 4,
        2 * (LISTED + 3),
        LISTED + 3,
    )
    assert (summary.purposes, summary.notices, summary.chains) == (1, 1, LISTED + 6)
    assert len(summary.broken) == LISTED and not summary.valid


def test_a_kept_file_names_the_line_that_does_not_parse(tmp_path: Path) -> None:
    kept = tmp_path / "kept.jsonl"
    kept.write_text('\n{"topic": "t"}\n')
    with pytest.raises(CheckpointInputError, match=r"kept\.jsonl:2: checkpoint field"):
        read_file(kept)
    with pytest.raises(CheckpointInputError, match="cannot read"):
        read_file(tmp_path / "missing.jsonl")
