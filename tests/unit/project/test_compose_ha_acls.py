"""docker-compose.yml's profile `ha`: SASL on every listener, and ACLs that let each ledger
process do only its part (the table in docs/security/kafka-transport.md). Docker is not needed:
the files are checked, and the secrets script run, not the stack."""

from __future__ import annotations

import re
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.config import Settings
from tests.unit.compose_files import (
    COMPOSE,
    HA_BROKERS,
    HA_KAFKA_INIT,
    ROOT,
    as_argv,
    compose_services,
    env,
    healthcheck_text,
    image_and_tag,
    listeners,
)


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return compose_services()


# --- SASL and ACLs ---------------------------------------------------------------------------

INIT_SCRIPT = ROOT / "deploy" / "kafka-ha-init.sh"
SECRETS_SCRIPT = ROOT / "deploy" / "kafka-ha-secrets.sh"
SECRETS_DIR = ".ha-secrets"
SUPER_USERS = {"User:broker", "User:admin"}
PRINCIPALS = {
    "init-ha": "ledger-init",
    "api-ha": "ledger-api",
    "projector-ha": "ledger-projector",
    "webhooks-ha": "ledger-webhooks",
    "operator-ha": "ledger-operator",
}
Grant = tuple[str, str, str, str]  # principal, operation, resource type, resource name


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def script_commands(text: str) -> list[list[str]]:
    """The script's commands, continuation lines joined, comments dropped, each split."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


def granted(text: str) -> set[Grant]:
    """Every ACL the init script adds (its `acl` lines); anything but an allow of named
    operations on literal topics and groups fails the test rather than being skipped."""
    grants: set[Grant] = set()
    for argv in script_commands(text):
        if not argv or argv[0] != "acl":
            continue
        options = list(zip(argv[1::2], argv[2::2], strict=True))
        assert {flag for flag, _ in options} <= {
            "--allow-principal",
            "--operation",
            "--topic",
            "--group",
        }, argv
        (principal,) = [value for flag, value in options if flag == "--allow-principal"]
        operations = [value for flag, value in options if flag == "--operation"]
        resources = [(flag[2:], value) for flag, value in options if flag in ("--topic", "--group")]
        assert operations and resources and "*" not in {name for _, name in resources}, argv
        grants |= {(principal, op, kind, name) for op in operations for kind, name in resources}
    return grants


def scram_users(text: str) -> list[str]:
    (loop,) = [argv for argv in script_commands(text) if argv[:3] == ["for", "user", "in"]]
    return [word.rstrip(";") for word in loop[3:] if word.rstrip(";") not in ("", "do")]


@pytest.fixture(scope="module")
def ledger_topics(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    settings = Settings.from_env(env(services, "api-ha"))
    return {
        "events": settings.topic,
        "state": settings.state_topic,
        "checks": settings.checks_topic,
        "checkpoints": settings.checkpoints_topic,
        "deadletter": settings.dead_letter_topic,
    }


def expected_grants(topics: dict[str, str], group: str, webhook_group: str) -> set[Grant]:
    """Each process's part, and nothing else: the table in docs/security/kafka-transport.md."""
    every = topics.values()
    init, webhooks = "User:ledger-init", "User:ledger-webhooks"
    api, projector, operator = "User:ledger-api", "User:ledger-projector", "User:ledger-operator"
    return {
        *{
            (init, op, "topic", t)
            for op in ("Create", "Describe", "DescribeConfigs")
            for t in every
        },
        (api, "Write", "topic", topics["events"]),
        (api, "Write", "topic", topics["checks"]),
        (projector, "Read", "topic", topics["events"]),
        (projector, "Read", "group", group),
        (projector, "Read", "topic", topics["state"]),
        (projector, "Write", "topic", topics["state"]),
        (projector, "Write", "topic", topics["checkpoints"]),
        (projector, "Write", "topic", topics["deadletter"]),
        # the dispatcher reads the events in its group; its positions are in PostgreSQL
        (webhooks, "Read", "topic", topics["events"]),
        (webhooks, "Read", "group", webhook_group),
        *{(operator, op, "topic", t) for op in ("Read", "DescribeConfigs") for t in every},
    }


def test_the_acls_grant_each_process_exactly_its_part(
    services: dict[str, dict[str, Any]], ledger_topics: dict[str, str]
) -> None:
    group = Settings.from_env(env(services, "projector-ha")).projector_group
    webhook_group = Settings.from_env(env(services, "webhooks-ha")).webhook_group
    assert webhook_group != group  # a group of its own: the two consume at their own pace
    text = INIT_SCRIPT.read_text(encoding="utf-8")
    assert granted(text) == expected_grants(ledger_topics, group, webhook_group)
    # every ACL goes through `acl` (read above); the only other call of the tool lists them
    calls = [argv for argv in script_commands(text) if any("kafka-acls.sh" in w for w in argv)]
    assert calls == [
        ["acl()", "{", "$bin/kafka-acls.sh", "${admin[@]}", "--add", "$@;", "}"],
        ["$bin/kafka-acls.sh", "${admin[@]}", "--list"],
    ]


@pytest.mark.parametrize(
    ("topic", "writer"),
    [
        ("events", "User:ledger-api"),
        ("checks", "User:ledger-api"),
        ("state", "User:ledger-projector"),
        ("checkpoints", "User:ledger-projector"),
        ("deadletter", "User:ledger-projector"),
    ],
)
def test_each_topic_has_one_writer(ledger_topics: dict[str, str], topic: str, writer: str) -> None:
    grants = granted(INIT_SCRIPT.read_text(encoding="utf-8"))
    writers = {p for p, op, kind, name in grants if op == "Write" and name == ledger_topics[topic]}
    assert writers == {writer}
    # nothing that implies Write either
    assert not {op for _, op, _, _ in grants} & {"All", "Alter", "ClusterAction"}


def test_the_scram_users_are_the_ledgers_principals(services: dict[str, dict[str, Any]]) -> None:
    text = INIT_SCRIPT.read_text(encoding="utf-8")
    assert scram_users(text) == list(PRINCIPALS.values())
    assert "SCRAM-SHA-512=[" in text and "--entity-type users" in text
    acl_principals = {principal for principal, _, _, _ in granted(text)}
    assert acl_principals == {f"User:{name}" for name in PRINCIPALS.values()}
    assert not acl_principals & SUPER_USERS


@pytest.mark.parametrize("name", PRINCIPALS)
def test_every_ledger_service_logs_in_as_its_own_principal(
    compose: dict[str, Any], services: dict[str, dict[str, Any]], name: str
) -> None:
    e = env(services, name)
    settings = Settings.from_env(e)
    assert (settings.kafka_security_protocol, settings.kafka_sasl_mechanism) == (
        "SASL_PLAINTEXT",
        "SCRAM-SHA-512",
    )
    user = PRINCIPALS[name]
    assert settings.kafka_sasl_username == user
    assert "KAFKA_SASL_PASSWORD" not in e  # never a value in the file: a secret holds it
    secret = f"kafka-{user}.password"
    assert settings.kafka_sasl_password_file == f"/run/secrets/{secret}"
    assert services[name]["secrets"] == [secret]
    assert compose["secrets"][secret] == {"file": f"./{SECRETS_DIR}/{secret}"}


@pytest.mark.parametrize("broker", HA_BROKERS)
def test_brokers_authenticate_every_listener_and_deny_by_default(
    services: dict[str, dict[str, Any]], broker: str
) -> None:
    e = env(services, broker)
    protocols = dict(
        pair.split(":") for pair in e["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners(e["KAFKA_LISTENERS"])) == set(protocols)
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    assert e["KAFKA_LISTENER_NAME_CLIENT_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert e["KAFKA_AUTHORIZER_CLASS_NAME"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert e["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert set(e["KAFKA_SUPER_USERS"].split(";")) == SUPER_USERS
    assert (
        e["KAFKA_OPTS"] == "-Djava.security.auth.login.config=/run/secrets/kafka_server_jaas.conf"
    )
    assert set(services[broker]["secrets"]) == {"kafka_server_jaas.conf", "kafka-broker.properties"}
    # the healthcheck logs in too: the brokers refuse anonymous clients
    assert "--command-config /run/secrets/kafka-broker.properties" in healthcheck_text(
        services[broker]
    )


def test_the_kafka_init_job_runs_the_checked_script_as_the_admin(
    services: dict[str, dict[str, Any]],
) -> None:
    job = services[HA_KAFKA_INIT]
    (mount,) = job["volumes"]
    source, target, mode = mount.split(":")
    assert (COMPOSE.parent / source).resolve() == INIT_SCRIPT and mode == "ro"
    assert as_argv(job["command"]) == ["bash", target]
    assert set(job["secrets"]) == {
        "kafka-admin.properties",
        *(f"kafka-{user}.password" for user in PRINCIPALS.values()),
    }
    assert image_and_tag(job["image"]) == image_and_tag(services[HA_BROKERS[0]]["image"])
    assert job["restart"] == "no"


def test_the_secret_files_are_generated_and_never_committed(compose: dict[str, Any]) -> None:
    files = {spec["file"] for spec in compose["secrets"].values()}
    assert all(f.startswith(f"./{SECRETS_DIR}/") for f in files)
    for ignore in (ROOT / ".gitignore", ROOT / ".dockerignore"):
        ignored = [line.rstrip("/") for line in ignore.read_text(encoding="utf-8").split()]
        assert SECRETS_DIR in ignored, ignore
    assert "password=" not in COMPOSE.read_text(encoding="utf-8")


def test_the_secrets_script_writes_every_secret_file_and_keeps_existing_ones(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    for target in (first, second):
        subprocess.run(["sh", str(SECRETS_SCRIPT), str(target)], check=True, capture_output=True)
    names = {Path(spec["file"]).name for spec in compose["secrets"].values()}
    assert names <= {p.name for p in first.iterdir()}
    assert stat.S_IMODE(first.stat().st_mode) == 0o700
    passwords = sorted(first.glob("*.password"))
    values = [p.read_text(encoding="ascii") for p in passwords]
    assert all(re.fullmatch(r"[A-Za-z0-9]{40}", v) for v in values)
    assert len(set(values)) == len(values)  # each principal its own
    assert not {v for v in values} & {p.read_text() for p in second.glob("*.password")}
    # a rerun keeps the passwords (a running cluster keeps working) and rewrites the JAAS file
    subprocess.run(["sh", str(SECRETS_SCRIPT), str(first)], check=True, capture_output=True)
    assert [p.read_text(encoding="ascii") for p in passwords] == values
    jaas = (first / "kafka_server_jaas.conf").read_text(encoding="utf-8")
    broker = (first / "kafka-broker.password").read_text(encoding="ascii")
    admin = (first / "kafka-admin.password").read_text(encoding="ascii")
    assert set(re.findall(r"user_(\w+)=", jaas)) == {u.split(":")[1] for u in SUPER_USERS}
    assert f'user_broker="{broker}"' in jaas and f'user_admin="{admin}"' in jaas
    assert f'password="{admin}"' in (first / "kafka-admin.properties").read_text()
