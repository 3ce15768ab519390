"""docker-compose.yml's profile `ha` against the code: three KRaft brokers that agree on their
quorum, production replication on every topic, SASL on every listener with ACLs that let each
ledger process do only its part, and a ledger that uses all three brokers as its own principals
and refuses a weaker topic. Docker is not needed: the files are checked, not run."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from services.config import ENVIRONMENT, Settings
from tests.unit.compose_files import (
    COMPOSE,
    DOCKERFILE,
    HA_BROKERS,
    HA_KAFKA_INIT,
    HA_LEDGER,
    HA_POSTGRES,
    HA_PROFILE,
    HA_SERVICES,
    ROOT,
    SCRIPT,
    as_argv,
    compose_services,
    depends_on,
    env,
    environment,
    healthcheck_text,
    listeners,
    published_ports,
    writer_keys_mount,
)


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return compose_services()


# --- the profile -----------------------------------------------------------------------------


def test_the_profile_is_exactly_its_services(services: dict[str, dict[str, Any]]) -> None:
    in_profile = {
        name for name, svc in services.items() if HA_PROFILE in (svc.get("profiles") or [])
    }
    assert in_profile == set(HA_SERVICES)
    # `docker compose up` without the profile starts none of them
    assert all(services[name]["profiles"] == [HA_PROFILE] for name in HA_SERVICES)


def test_the_profile_depends_only_on_itself(services: dict[str, dict[str, Any]]) -> None:
    for name in HA_SERVICES:
        outside = set(depends_on(services[name])) - set(HA_SERVICES)
        assert not outside, f"{name} depends on {outside}, outside profile {HA_PROFILE}"


def test_volumes_are_its_own(services: dict[str, dict[str, Any]]) -> None:
    single = {
        str(v).split(":")[0]
        for name, svc in services.items()
        if not svc.get("profiles")
        for v in svc.get("volumes") or []
    }
    mine = [
        str(v).split(":")[0] for name in HA_SERVICES for v in services[name].get("volumes") or []
    ]
    assert not set(mine) & single
    assert len({str(services[b]["volumes"][0]).split(":")[0] for b in HA_BROKERS}) == 3


# --- the brokers -----------------------------------------------------------------------------


def test_brokers_share_one_cluster_of_their_own(services: dict[str, dict[str, Any]]) -> None:
    ids = {env(services, b)["CLUSTER_ID"] for b in HA_BROKERS}
    assert len(ids) == 1
    assert ids != {env(services, "kafka")["CLUSTER_ID"]}


def test_every_broker_is_a_voter_of_the_quorum(services: dict[str, dict[str, Any]]) -> None:
    expected = set()
    for broker in HA_BROKERS:
        e = env(services, broker)
        assert set(e["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        controller = listeners(e["KAFKA_LISTENERS"])[e["KAFKA_CONTROLLER_LISTENER_NAMES"]]
        expected.add(f"{e['KAFKA_NODE_ID']}@{services[broker]['hostname']}:{controller[1]}")
    node_ids = [env(services, b)["KAFKA_NODE_ID"] for b in HA_BROKERS]
    assert len(set(node_ids)) == len(HA_BROKERS)
    for broker in HA_BROKERS:
        voters = set(env(services, broker)["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
        assert voters == expected, broker


@pytest.mark.parametrize("broker", HA_BROKERS)
def test_broker_advertises_its_own_host(services: dict[str, dict[str, Any]], broker: str) -> None:
    e = env(services, broker)
    advertised = listeners(e["KAFKA_ADVERTISED_LISTENERS"])
    host, port = advertised[e["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    assert host == services[broker]["hostname"]
    assert listeners(e["KAFKA_LISTENERS"])[e["KAFKA_INTER_BROKER_LISTENER_NAME"]][1] == port
    assert "kafka-broker-api-versions.sh" in healthcheck_text(services[broker])


@pytest.mark.parametrize("broker", HA_BROKERS)
def test_broker_defaults_are_the_production_ones(
    services: dict[str, dict[str, Any]], broker: str
) -> None:
    e = env(services, broker)
    replicas = len(HA_BROKERS)
    for name in (
        "KAFKA_DEFAULT_REPLICATION_FACTOR",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
    ):
        assert int(e[name]) == replicas, name
    for name in (
        "KAFKA_MIN_INSYNC_REPLICAS",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
    ):
        assert int(e[name]) == replicas - 1, name
    assert e["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
    assert e["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


# --- the ledger ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HA_SERVICES)
def test_environment_values_are_quoted(services: dict[str, dict[str, Any]], name: str) -> None:
    raw = services[name].get("environment") or {}
    assert {k: v for k, v in raw.items() if not isinstance(v, str)} == {}


@pytest.mark.parametrize("name", HA_LEDGER)
def test_ledger_service_is_the_image_running_its_subcommand(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    svc = services[name]
    assert (COMPOSE.parent / svc["build"]).resolve() == ROOT and DOCKERFILE.is_file()
    assert as_argv(svc["command"])[:2] == [SCRIPT, HA_LEDGER[name]]
    unknown = sorted(set(environment(svc)) - set(ENVIRONMENT))
    assert not unknown, f"{name} sets variables services.config does not read: {unknown}"
    Settings.from_env(environment(svc))  # the values are ones the ledger accepts


@pytest.mark.parametrize("name", HA_LEDGER)
def test_ledger_uses_every_broker(services: dict[str, dict[str, Any]], name: str) -> None:
    advertised = {
        listeners(env(services, broker)["KAFKA_ADVERTISED_LISTENERS"])["CLIENT"]
        for broker in HA_BROKERS
    }
    servers = env(services, name)["KAFKA_BOOTSTRAP_SERVERS"].split(",")
    found = {(host, int(port)) for host, _, port in (s.strip().rpartition(":") for s in servers)}
    assert found == advertised


@pytest.mark.parametrize("name", HA_LEDGER)
def test_ledger_uses_its_own_database(services: dict[str, dict[str, Any]], name: str) -> None:
    postgres = env(services, HA_POSTGRES)
    url = urlsplit(env(services, name)["DATABASE_URL"])
    assert url.hostname == HA_POSTGRES
    assert (url.username, url.password) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )
    assert url.path.lstrip("/") == postgres["POSTGRES_DB"]


def test_init_creates_topics_with_production_replication_and_refuses_weaker(
    services: dict[str, dict[str, Any]],
) -> None:
    settings = Settings.from_env(env(services, "init-ha"))
    assert settings.topic_replication == len(HA_BROKERS)
    # one broker may fail and acknowledged writes still land on two
    assert settings.topic_min_insync_replicas == len(HA_BROKERS) - 1
    assert settings.topic_check == "refuse"


def test_init_waits_for_every_broker_and_the_database(
    services: dict[str, dict[str, Any]],
) -> None:
    assert depends_on(services[HA_KAFKA_INIT]) == dict.fromkeys(HA_BROKERS, "service_healthy")
    assert depends_on(services["init-ha"]) == {
        HA_KAFKA_INIT: "service_completed_successfully",
        HA_POSTGRES: "service_healthy",
    }
    for name in ("api-ha", "projector-ha", "webhooks-ha", "operator-ha"):
        assert depends_on(services[name]) == {"init-ha": "service_completed_successfully"}


def test_api_produces_idempotently_on_its_own_port(services: dict[str, dict[str, Any]]) -> None:
    api = Settings.from_env(env(services, "api-ha"))
    assert api.kafka_idempotence is True
    published = [host for host, target in published_ports(services["api-ha"]) if target == api.port]
    single = [host for host, _ in published_ports(services["api"])]
    assert published and not set(published) & set(single)
    assert api.public_url == f"http://localhost:{published[0]}"
    assert f"127.0.0.1:{api.port}/readyz" in healthcheck_text(services["api-ha"])


def test_init_writes_the_secrets_the_api_reads(services: dict[str, dict[str, Any]]) -> None:
    path = env(services, "init-ha")["LEDGER_SECRETS_FILE"]
    assert env(services, "api-ha")["LEDGER_SECRETS_FILE"] == path
    written = [v for v in services["init-ha"]["volumes"] if v.endswith(":/run/ledger")]
    (read,) = services["api-ha"]["volumes"]
    assert [read] == [f"{v}:ro" for v in written]


def test_the_dispatcher_reads_the_secrets_init_writes_as_its_single_twin_does(
    services: dict[str, dict[str, Any]],
) -> None:
    path = env(services, "init-ha")["LEDGER_SECRETS_FILE"]
    assert env(services, "webhooks-ha")["LEDGER_SECRETS_FILE"] == path
    written = [v for v in services["init-ha"]["volumes"] if v.endswith(":/run/ledger")]
    assert services["webhooks-ha"]["volumes"] == [f"{v}:ro" for v in written]
    ha = Settings.from_env(env(services, "webhooks-ha"))
    single = Settings.from_env(env(services, "webhooks"))
    assert ha.webhook_group == single.webhook_group
    assert (ha.webhook_allow_loopback, ha.webhook_allow_private) == (False, False)
    shared = {k: v for k, v in env(services, "webhooks").items() if k not in env(services, "api")}
    assert {k: env(services, "webhooks-ha").get(k) for k in shared} == shared


def test_the_projector_gets_only_the_writer_keys(services: dict[str, dict[str, Any]]) -> None:
    volume, _ = writer_keys_mount(services["init-ha"], services["projector-ha"])
    secrets = str(services["init-ha"]["volumes"][0]).split(":")[0]
    assert volume not in (secrets, "ledger-writer-keys")
    assert not [v for v in services["projector-ha"]["volumes"] if v.startswith(f"{secrets}:")]
