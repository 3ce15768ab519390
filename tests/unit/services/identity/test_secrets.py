"""Secrets: key rings parse strictly, come from a file or the environment, never print."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.config import Settings
from services.identity import keystore
from services.identity.secrets import (
    SecretsError,
    complete_secrets_file,
    ensure_secrets_file,
    generate_secrets_file,
    load_secrets,
    load_writer_keys,
    new_key,
    parse_key_ring,
    write_writer_keys_file,
)

K1, K2, K3 = new_key(), new_key(), new_key()
ENV = {
    "LEDGER_MASTER_KEYS": f"m2:{K1},m1:{K2}",
    "LEDGER_BLIND_INDEX_KEY": K3,
    "LEDGER_LINK_KEYS": f"l1:{K2}",
    "LEDGER_RECEIPT_KEYS": f"r2:{K3},r1:{K1}",
    "LEDGER_WRITER_KEYS": f"w1:{K2}",
    "LEDGER_API_KEY_HASH_KEY": K1,
}


def test_the_first_key_of_a_ring_is_current() -> None:
    ring = parse_key_ring("X", f"m2:{K1}, m1:{K2}")
    assert ring.current_id == "m2"
    assert list(ring.keys) == ["m2", "m1"]
    assert len(ring.current) == 32


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty"),
        (K1, "kid:base64url"),
        (f"M1:{K1}", "kid:base64url"),
        (f"m1:{K1},m1:{K2}", "twice"),
        ("m1:c2hvcnQ", "32 bytes"),
        ("m1:!!!!", "base64url"),
    ],
)
def test_bad_key_rings_are_refused_by_name(text: str, complaint: str) -> None:
    with pytest.raises(SecretsError) as caught:
        parse_key_ring("LEDGER_MASTER_KEYS", text)
    assert "LEDGER_MASTER_KEYS" in str(caught.value)
    assert complaint in str(caught.value)
    assert K1 not in str(caught.value)


def test_missing_secrets_are_named() -> None:
    with pytest.raises(SecretsError) as caught:
        load_secrets({"LEDGER_MASTER_KEYS": ENV["LEDGER_MASTER_KEYS"]})
    assert "LEDGER_BLIND_INDEX_KEY" in str(caught.value)
    assert "LEDGER_LINK_KEYS" in str(caught.value)
    assert "LEDGER_RECEIPT_KEYS" in str(caught.value)
    assert "LEDGER_WRITER_KEYS" in str(caught.value)
    assert "LEDGER_API_KEY_HASH_KEY" in str(caught.value)


def test_a_generated_file_loads_and_the_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    assert ensure_secrets_file(path)
    assert not ensure_secrets_file(path)  # never overwritten
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    from_file = load_secrets({"LEDGER_SECRETS_FILE": str(path)})
    assert from_file.master.current_id == "m1"
    assert from_file.receipts.current_id == "r1"
    assert from_file.writers.current_id == "w1"
    assert len(from_file.api_key_hash_key) == 32
    mixed = load_secrets({"LEDGER_SECRETS_FILE": str(path), "LEDGER_BLIND_INDEX_KEY": K3})
    assert mixed.blind_index_key != from_file.blind_index_key
    assert mixed.master == from_file.master


def test_generated_files_differ() -> None:
    assert generate_secrets_file() != generate_secrets_file()


def test_secrets_never_appear_in_reprs() -> None:
    settings = Settings.from_env(ENV)
    shown = repr(settings) + repr(settings.secrets())
    for key in (K1, K2, K3):
        assert key not in shown
    assert settings.secrets().master.current_id == "m2"
    assert settings.secrets().receipts.current_id == "r2"


def test_data_keys_unwrap_only_with_their_master_key_and_subject() -> None:
    ring = parse_key_ring("LEDGER_MASTER_KEYS", f"m1:{K1}")
    other = parse_key_ring("LEDGER_MASTER_KEYS", f"m1:{K2}")
    kid, wrapped = keystore.wrap(ring, "cust-1", b"k" * 32)
    assert keystore.unwrap(ring, "cust-1", kid, wrapped) == b"k" * 32
    with pytest.raises(SecretsError):
        keystore.unwrap(other, "cust-1", kid, wrapped)
    with pytest.raises(SecretsError):
        keystore.unwrap(ring, "cust-2", kid, wrapped)
    with pytest.raises(SecretsError, match="lacks"):
        keystore.unwrap(ring, "cust-1", "m9", wrapped)


def test_the_cli_writes_a_secrets_file_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli.main import main

    path = tmp_path / "s.toml"
    assert main(["secrets", "generate", "--file", str(path)]) == 0
    assert main(["secrets", "generate", "--file", str(path)]) == 1
    assert load_secrets({"LEDGER_SECRETS_FILE": str(path)}).links.current_id == "l1"
    assert main(["secrets", "generate"]) == 0
    printed = capsys.readouterr().out
    assert "master_keys" in printed and str(path) in printed


def test_a_file_from_before_receipt_keys_gets_one_added_once(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    old = "\n".join(
        line for line in generate_secrets_file().splitlines() if "receipt_keys" not in line
    )
    path.write_text(old)  # no final line break either
    with pytest.raises(SecretsError, match="LEDGER_RECEIPT_KEYS"):
        load_secrets({"LEDGER_SECRETS_FILE": str(path)})
    assert complete_secrets_file(path) == ["receipt_keys"]
    assert complete_secrets_file(path) == []
    loaded = load_secrets({"LEDGER_SECRETS_FILE": str(path)})
    assert loaded.receipts.current_id == "r1"
    assert path.read_text().startswith(old)


@pytest.mark.parametrize(
    ("key", "variable"),
    [("writer_keys", "LEDGER_WRITER_KEYS"), ("api_key_hash_key", "LEDGER_API_KEY_HASH_KEY")],
)
def test_a_file_from_before_later_keys_gets_them_added_once(
    tmp_path: Path, key: str, variable: str
) -> None:
    path = tmp_path / "secrets.toml"
    old = "\n".join(
        line for line in generate_secrets_file().splitlines() if not line.startswith(key)
    )
    path.write_text(old + "\n")
    with pytest.raises(SecretsError, match=variable):
        load_secrets({"LEDGER_SECRETS_FILE": str(path)})
    assert complete_secrets_file(path) == [key]
    assert complete_secrets_file(path) == []
    loaded = load_secrets({"LEDGER_SECRETS_FILE": str(path)})
    assert loaded.writers.current_id == "w1"
    assert len(loaded.api_key_hash_key) == 32


def test_a_secrets_file_others_can_read_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "secrets.toml"
    assert ensure_secrets_file(path)
    with caplog.at_level("WARNING", logger="services.identity.secrets"):
        load_secrets({"LEDGER_SECRETS_FILE": str(path)})
    assert not caplog.records
    path.chmod(0o644)
    with caplog.at_level("WARNING", logger="services.identity.secrets"):
        load_secrets({"LEDGER_SECRETS_FILE": str(path)})
    assert "readable by other users" in caplog.text
    assert "644" in caplog.text


# --- the writer keys alone (the projector's secrets) -------------------------------------------


def test_the_writer_keys_load_alone_from_the_environment() -> None:
    ring = load_writer_keys({"LEDGER_WRITER_KEYS": f"w2:{K1},w1:{K2}"})
    assert (ring.current_id, list(ring.keys)) == ("w2", ["w2", "w1"])


def test_a_file_holding_only_the_writer_keys_is_enough(tmp_path: Path) -> None:
    ring = parse_key_ring("LEDGER_WRITER_KEYS", f"w2:{K1},w1:{K2}")
    path = tmp_path / "writer" / "keys.toml"
    write_writer_keys_file(path, ring)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_writer_keys({"LEDGER_SECRETS_FILE": str(path)}) == ring
    assert "master_keys" not in path.read_text()
    # the whole set is refused from that file: nothing else is in it
    with pytest.raises(SecretsError, match="LEDGER_MASTER_KEYS"):
        load_secrets({"LEDGER_SECRETS_FILE": str(path)})
    # refreshed in place (rotation): the new ring replaces the old, nothing is left beside it
    rotated = parse_key_ring("LEDGER_WRITER_KEYS", f"w3:{K3},w2:{K1}")
    write_writer_keys_file(path, rotated)
    assert load_writer_keys({"LEDGER_SECRETS_FILE": str(path)}) == rotated
    assert [p.name for p in path.parent.iterdir()] == ["keys.toml"]


def test_the_writer_keys_come_from_a_full_secrets_file_too(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    ensure_secrets_file(path)
    assert load_writer_keys({"LEDGER_SECRETS_FILE": str(path)}).current_id == "w1"
    assert (
        Settings.from_env({"LEDGER_SECRETS_FILE": str(path)}).writer_key_ring().current_id == "w1"
    )


def test_missing_writer_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="LEDGER_WRITER_KEYS"):
        load_writer_keys({})
    other = tmp_path / "other.toml"
    other.write_text(f'blind_index_key = "{K1}"\n')
    other.chmod(0o600)
    with pytest.raises(SecretsError, match="LEDGER_WRITER_KEYS"):
        load_writer_keys({"LEDGER_SECRETS_FILE": str(other)})
