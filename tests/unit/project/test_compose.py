"""docker-compose.yml against the code, so names, ports, topics and secrets agree."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from services.config import ENVIRONMENT
from tests.unit.compose_files import (
    ALL_SERVICES,
    COMPOSE,
    DOCKERFILE,
    LEDGER,
    LEDGER_COMMANDS,
    PINNED_TAG,
    ROOT,
    SCRIPT,
    as_argv,
    compose_services,
    default,
    depends_on,
    environment,
    healthcheck_text,
    image_and_tag,
    instructions,
    listeners,
    published_ports,
    pyproject,
    writer_keys_mount,
)

#: the webhook dispatcher's subcommand
DISPATCHER = "webhooks-dispatcher"


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return compose_services()


# --- the services and their images ---------------------------------------------------------


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_service_exists(services: dict[str, dict[str, Any]], name: str) -> None:
    assert name in services


@pytest.mark.parametrize(
    ("name", "repository"), [("kafka", "apache/kafka"), ("postgres", "postgres")]
)
def test_image_is_pinned(services: dict[str, dict[str, Any]], name: str, repository: str) -> None:
    repo, tag = image_and_tag(services[name]["image"])
    assert repo == repository
    assert tag != "latest"
    assert PINNED_TAG.match(tag), f"{name}: tag {tag!r} is not a version like 4.1.1 or 18.1"


@pytest.mark.parametrize("name", LEDGER)
def test_ledger_services_build_from_the_dockerfile(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    build = services[name]["build"]
    spec = {"context": build} if isinstance(build, str) else build
    context = (COMPOSE.parent / spec["context"]).resolve()
    assert context == ROOT
    assert (context / spec.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert DOCKERFILE.is_file()


# --- environment against services.config ----------------------------------------------------


@pytest.mark.parametrize("name", LEDGER)
def test_every_variable_is_a_setting(services: dict[str, dict[str, Any]], name: str) -> None:
    unknown = sorted(set(environment(services[name])) - set(ENVIRONMENT))
    assert not unknown, f"{name} sets variables services.config does not read: {unknown}"


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_environment_values_are_quoted(services: dict[str, dict[str, Any]], name: str) -> None:
    """YAML reads bare true/1 as bool/int; quoting keeps the text the settings parse."""
    raw = services[name].get("environment") or {}
    pairs = raw.items() if isinstance(raw, dict) else []
    assert {key: value for key, value in pairs if not isinstance(value, str)} == {}


@pytest.mark.parametrize("name", LEDGER)
def test_bootstrap_servers_are_the_advertised_listener(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    kafka = environment(services["kafka"])
    advertised = listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
    bound = listeners(kafka["KAFKA_LISTENERS"])
    servers = environment(services[name])["KAFKA_BOOTSTRAP_SERVERS"].split(",")
    assert servers
    for server in servers:
        host, _, port = server.strip().rpartition(":")
        matching = [lst for lst, address in advertised.items() if address == (host, int(port))]
        assert matching, f"{name}: {server} is not among {kafka['KAFKA_ADVERTISED_LISTENERS']}"
        assert host in ("kafka", services["kafka"].get("hostname"))
        assert bound[matching[0]][1] == int(port), f"listener {matching[0]} binds another port"


@pytest.mark.parametrize("name", LEDGER)
def test_database_url_matches_postgres(services: dict[str, dict[str, Any]], name: str) -> None:
    postgres = environment(services["postgres"])
    url = urlsplit(environment(services[name])["DATABASE_URL"])
    assert url.scheme in ("postgresql", "postgres")
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert url.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert url.hostname == "postgres"
    assert url.port in (None, 5432)


# --- the api's address -----------------------------------------------------------------------


def test_api_listens_on_all_interfaces(services: dict[str, dict[str, Any]]) -> None:
    assert environment(services["api"])["LEDGER_HOST"] == "0.0.0.0"


def test_api_publishes_its_port(services: dict[str, dict[str, Any]]) -> None:
    port = int(environment(services["api"])["LEDGER_PORT"])
    published = [host for host, target in published_ports(services["api"]) if target == port]
    assert published and all(published), f"container port {port} is not published"
    exposed = {args for keyword, args in instructions() if keyword == "EXPOSE"}
    assert str(port) in " ".join(exposed).split()


def test_api_healthcheck_asks_readyz_on_its_port(services: dict[str, dict[str, Any]]) -> None:
    port = environment(services["api"])["LEDGER_PORT"]
    assert f"127.0.0.1:{port}/readyz" in healthcheck_text(services["api"])


# --- the topic -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LEDGER)
def test_topic_is_the_default(services: dict[str, dict[str, Any]], name: str) -> None:
    assert environment(services[name])["LEDGER_TOPIC"] == default("LEDGER_TOPIC")


def test_init_creates_the_default_partition_count(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["init"])
    assert env["LEDGER_TOPIC_PARTITIONS"] == default("LEDGER_TOPIC_PARTITIONS")


def test_topic_replication_fits_the_cluster(services: dict[str, dict[str, Any]]) -> None:
    brokers = sum(
        "broker" in environment(svc).get("KAFKA_PROCESS_ROLES", "").split(",")
        for svc in services.values()
        if not svc.get("profiles")  # the default stack; test_compose_ha.py checks profile `ha`
    )
    env = environment(services["init"])
    replication = int(env["LEDGER_TOPIC_REPLICATION"])
    assert 1 <= int(env["LEDGER_TOPIC_MIN_INSYNC_REPLICAS"]) <= replication <= brokers


def test_brokers_never_create_topics(services: dict[str, dict[str, Any]]) -> None:
    assert environment(services["kafka"])["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


# --- start order, health and restarts --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "dependency", "condition"),
    [
        ("init", "kafka", "service_healthy"),
        ("init", "postgres", "service_healthy"),
        ("api", "init", "service_completed_successfully"),
        ("projector", "init", "service_completed_successfully"),
        ("webhooks", "init", "service_completed_successfully"),
    ],
)
def test_start_order(
    services: dict[str, dict[str, Any]], name: str, dependency: str, condition: str
) -> None:
    assert depends_on(services[name]).get(dependency) == condition


def test_awaited_health_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    awaited = {
        dependency
        for svc in services.values()
        for dependency, condition in depends_on(svc).items()
        if condition == "service_healthy"
    }
    assert awaited
    assert [name for name in sorted(awaited) if not healthcheck_text(services[name])] == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("kafka", ["kafka-broker-api-versions.sh", "--bootstrap-server localhost:9092"]),
        ("postgres", ["pg_isready", "-U ledger", "-d ledger"]),
        ("api", ["urllib.request", "/readyz"]),
    ],
)
def test_healthcheck(services: dict[str, dict[str, Any]], name: str, expected: list[str]) -> None:
    text = healthcheck_text(services[name])
    assert [part for part in expected if part not in text] == [], text


@pytest.mark.parametrize(
    ("name", "policy"),
    [
        ("init", "no"),
        ("api", "unless-stopped"),
        ("projector", "unless-stopped"),
        ("webhooks", "unless-stopped"),
    ],
)
def test_restart_policy(services: dict[str, dict[str, Any]], name: str, policy: str) -> None:
    assert services[name].get("restart") == policy


# --- commands against the CLI ----------------------------------------------------------------


@pytest.mark.parametrize("name", LEDGER)
def test_command_runs_its_subcommand(services: dict[str, dict[str, Any]], name: str) -> None:
    assert as_argv(services[name]["command"])[:2] == [SCRIPT, LEDGER_COMMANDS[name]]


def test_init_writes_the_secrets_the_api_reads(services: dict[str, dict[str, Any]]) -> None:
    init, api = services["init"], services["api"]
    assert "--generate-secrets" in as_argv(init["command"])
    path = init["environment"]["LEDGER_SECRETS_FILE"]
    assert api["environment"]["LEDGER_SECRETS_FILE"] == path
    mount = str(Path(path).parent)
    assert f"ledger-secrets:{mount}" in init["volumes"]
    assert f"ledger-secrets:{mount}:ro" in api["volumes"]
    # the projector never sees the master, blind-index, link or receipt keys
    assert not [v for v in services["projector"]["volumes"] if v.startswith("ledger-secrets:")]
    assert f"mkdir -p {mount} && chown 10001:10001 {mount}" in DOCKERFILE.read_text()


def test_the_projector_gets_only_the_writer_keys(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """It checks every event's MAC and MACs what it writes: init copies the writer keys, and
    nothing else, into a volume of their own that the projector mounts read-only."""
    volume, path = writer_keys_mount(services["init"], services["projector"])
    assert volume != "ledger-secrets"
    assert not [v for v in services["api"]["volumes"] if v.startswith(f"{volume}:")]
    assert f"mkdir -p {Path(path).parent} && chown 10001:10001" in DOCKERFILE.read_text()
    # the file init writes there is enough for the projector, and holds nothing more
    from services.config import Settings
    from services.identity.secrets import (
        SecretsError,
        ensure_secrets_file,
        load_secrets,
        write_writer_keys_file,
    )

    everything = tmp_path / "secrets.toml"
    ensure_secrets_file(everything)
    written = tmp_path / Path(path).name
    write_writer_keys_file(written, load_secrets({"LEDGER_SECRETS_FILE": str(everything)}).writers)
    projector = Settings.from_env(
        {**environment(services["projector"]), "LEDGER_SECRETS_FILE": str(written)}
    )
    assert projector.writer_key_ring().current_id == "w1"
    with pytest.raises(SecretsError):
        projector.secrets()


def test_the_dispatcher_reads_the_secrets_init_writes(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """It unseals signing secrets and captured addresses with the master keys and checks every
    event's MAC with the writer keys: the whole secrets file, read-only; its own group; loopback
    receivers refused (only `make up` allows them)."""
    init, webhooks = services["init"], services["webhooks"]
    path = init["environment"]["LEDGER_SECRETS_FILE"]
    assert webhooks["environment"]["LEDGER_SECRETS_FILE"] == path
    assert webhooks["volumes"] == [f"ledger-secrets:{Path(path).parent}:ro"]
    from services.config import Settings
    from services.identity.secrets import ensure_secrets_file

    written = tmp_path / Path(path).name
    ensure_secrets_file(written)
    dispatcher = Settings.from_env({**environment(webhooks), "LEDGER_SECRETS_FILE": str(written)})
    assert dispatcher.secrets().master.current_id
    assert dispatcher.writer_key_ring().current_id == "w1"
    assert dispatcher.webhook_group == default("LEDGER_WEBHOOK_GROUP")
    assert dispatcher.webhook_group != environment(services["projector"])["LEDGER_PROJECTOR_GROUP"]
    assert dispatcher.webhook_allow_loopback is False
    assert dispatcher.webhook_allow_private is False


def test_script_is_the_cli() -> None:
    assert pyproject()["project"]["scripts"][SCRIPT] == "services.cli.main:main"


@pytest.mark.parametrize("name", LEDGER)
def test_subcommand_exists_in_the_cli(name: str) -> None:
    cli = pytest.importorskip("services.cli.main")
    assert LEDGER_COMMANDS[name] in cli.COMMANDS


# --- the webhook dispatcher's stop -----------------------------------------------------------


def _seconds(value: str) -> float:
    """A compose duration of whole units (`30s`, `1m`, `1m30s`) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", value)
    assert parts is not None and value, f"unexpected duration {value!r}"
    return int(parts[1] or 0) * 60 + int(parts[2] or 0)


def test_a_stopped_dispatcher_may_finish_its_attempts(
    services: dict[str, dict[str, Any]],
) -> None:
    """SIGTERM lets the attempts in flight finish, each bounded by LEDGER_WEBHOOK_TIMEOUT_S:
    the grace before SIGKILL must exceed it with room for recording them."""
    dispatchers = [
        s for s in services.values() if as_argv(s.get("command") or [])[1:2] == [DISPATCHER]
    ]
    assert dispatchers
    for service in dispatchers:
        timeout = float(
            environment(service).get(
                "LEDGER_WEBHOOK_TIMEOUT_S", default("LEDGER_WEBHOOK_TIMEOUT_S")
            )
        )
        assert _seconds(str(service.get("stop_grace_period", "10s"))) >= 2 * timeout + 5
