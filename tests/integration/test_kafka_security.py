"""The KAFKA_* security settings against real sockets: the ledger's clients, built by
services/ledger/kafka_clients.py, administer, produce and consume over SASL (SCRAM-SHA-256,
SCRAM-SHA-512, PLAIN), TLS with a client certificate, and SASL over TLS; wrong credentials,
an untrusted CA and a missing client certificate are refused; a consent reaches its decision
with the API and the projector each logged in as its own principal.

The embedded broker cannot log anybody in or speak TLS (tests/kafka_front.py says why), so the
TLS and the SASL exchange are those of a front that relays to it only after authentication;
the broker's own `--authentication` is shown refusing every client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError

from services.config import Settings
from services.ledger.publisher import make_producer
from services.ledger.topic import ensure_topic, highwaters, partition_count
from services.stack.embedded import EmbeddedKafka, free_port
from tests.conftest import make_settings, running_api, running_projector
from tests.integration.topic_records import all_records
from tests.kafka_front import KafkaFront
from tests.servers import Servers
from tests.throwaway_pki import Pki, make_pki

pytestmark = pytest.mark.integration

API, PROJECTOR, OPERATOR = "ledger-api", "ledger-projector", "ledger-operator"
USERS = {name: secrets.token_urlsafe(24) for name in (API, PROJECTOR, OPERATOR)}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@contextlib.asynccontextmanager
async def fronted_broker(
    tmp_path: Path, *, tls: ssl.SSLContext | None = None, users: Mapping[str, str] | None = None
) -> AsyncIterator[KafkaFront]:
    """A fresh embedded broker that advertises the port of a front (TLS and/or SASL)."""
    port = free_port()
    broker = EmbeddedKafka(log_file=tmp_path / "broker.log", advertised_port=port)
    await asyncio.to_thread(broker.start)
    relay = KafkaFront(broker.port, port, tls=tls, users=users)
    try:
        await relay.start()
        yield relay
    finally:
        await relay.stop()
        broker.stop()


def kafka_settings(front: KafkaFront, **kafka: str) -> Settings:
    """Settings that reach the fronted broker with `kafka` (KAFKA_* variables)."""
    return Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{front.port}",
            "LEDGER_TOPIC_PARTITIONS": "4",
            "LEDGER_KAFKA_IDEMPOTENCE": "false",
            **kafka,
        }
    )


def sasl(protocol: str, mechanism: str, user: str, password: str | None = None) -> dict[str, str]:
    return {
        "KAFKA_SECURITY_PROTOCOL": protocol,
        "KAFKA_SASL_MECHANISM": mechanism,
        "KAFKA_SASL_USERNAME": user,
        "KAFKA_SASL_PASSWORD": USERS[user] if password is None else password,
    }


async def round_trip(settings: Settings) -> None:
    """The ledger's own admin (ensure_topic), producer (make_producer) and consumers
    (highwaters, a backup-style reader) work over the connection `settings` describe."""
    assert await ensure_topic(settings) is True
    assert await partition_count(settings.kafka, settings.topic) == 4
    producer = make_producer(settings.kafka, idempotence=False, timeout_ms=5000)
    await producer.start()
    try:
        sent = await producer.send_and_wait(settings.topic, b"value", key=b"subject-1")
    finally:
        await producer.stop()
    assert (await highwaters(settings.kafka, settings.topic))[sent.partition] == sent.offset + 1
    (seen,) = await all_records(settings.kafka, settings.topic)
    assert (seen.partition, seen.key, seen.value) == (sent.partition, b"subject-1", b"value")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_scram_principals_administer_produce_and_consume(
    tmp_path: Path, mechanism: str
) -> None:
    async with fronted_broker(tmp_path, users=USERS) as front:
        await round_trip(kafka_settings(front, **sasl("SASL_PLAINTEXT", mechanism, API)))
    assert front.log.refused == []
    assert set(front.log.authenticated) == {(API, mechanism)}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
async def test_sasl_over_tls_verifies_the_broker_and_logs_in(
    tmp_path: Path, pki: Pki, mechanism: str
) -> None:
    async with fronted_broker(tmp_path, tls=pki.server_context(), users=USERS) as front:
        kafka = {**sasl("SASL_SSL", mechanism, OPERATOR), "KAFKA_SSL_CA_FILE": str(pki.ca_file)}
        await round_trip(kafka_settings(front, **kafka))
    assert front.log.refused == []
    assert set(front.log.authenticated) == {(OPERATOR, mechanism)}


async def test_mutual_tls_with_an_encrypted_client_key(tmp_path: Path, pki: Pki) -> None:
    tls = pki.server_context(require_client_cert=True)
    async with fronted_broker(tmp_path, tls=tls) as front:
        kafka = {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CA_FILE": str(pki.ca_file),
            "KAFKA_SSL_CERT_FILE": str(pki.client_cert),
            "KAFKA_SSL_KEY_FILE": str(pki.client_key),
            "KAFKA_SSL_KEY_PASSWORD": pki.client_key_password,
        }
        await round_trip(kafka_settings(front, **kafka))


async def test_the_password_may_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text(USERS[PROJECTOR] + "\n", encoding="utf-8")
    async with fronted_broker(tmp_path, users=USERS) as front:
        kafka = sasl("SASL_PLAINTEXT", "SCRAM-SHA-512", PROJECTOR)
        del kafka["KAFKA_SASL_PASSWORD"]
        await round_trip(kafka_settings(front, **kafka, KAFKA_SASL_PASSWORD_FILE=str(secret)))
    assert set(front.log.authenticated) == {(PROJECTOR, "SCRAM-SHA-512")}


@pytest.mark.parametrize(
    ("kafka", "refusal"),
    [
        (sasl("SASL_PLAINTEXT", "SCRAM-SHA-512", API, "not-the-password"), "wrong password"),
        (sasl("SASL_PLAINTEXT", "SCRAM-SHA-256", API, "not-the-password"), "wrong password"),
        (sasl("SASL_PLAINTEXT", "PLAIN", API, "not-the-password"), "wrong user name or password"),
        ({**sasl("SASL_PLAINTEXT", "SCRAM-SHA-512", API), "KAFKA_SASL_USERNAME": "eve"}, "unknown"),
        ({}, "api key 3 before authentication"),  # PLAINTEXT: a metadata request
    ],
    ids=["scram-512-password", "scram-256-password", "plain-password", "unknown-user", "none"],
)
async def test_a_client_without_the_right_credentials_never_reaches_the_broker(
    tmp_path: Path, kafka: dict[str, str], refusal: str
) -> None:
    async with fronted_broker(tmp_path, users=USERS) as front:
        with pytest.raises(KafkaError):
            await ensure_topic(kafka_settings(front, **kafka))
    assert front.log.authenticated == []
    assert front.log.refused and all(refusal in r for r in front.log.refused), front.log.refused


@pytest.mark.parametrize("case", ["untrusted-ca", "no-client-certificate", "plaintext"])
async def test_tls_refuses_an_untrusted_broker_and_a_client_without_certificate(
    tmp_path: Path, pki: Pki, case: str
) -> None:
    tls = pki.server_context(require_client_cert=True)
    client = {
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CA_FILE": str(pki.ca_file),
        "KAFKA_SSL_CERT_FILE": str(pki.client_cert),
        "KAFKA_SSL_KEY_FILE": str(pki.client_key),
        "KAFKA_SSL_KEY_PASSWORD": pki.client_key_password,
    }
    if case == "untrusted-ca":
        client["KAFKA_SSL_CA_FILE"] = str(pki.other_ca_file)
    elif case == "no-client-certificate":
        client = {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": str(pki.ca_file)}
    else:
        client = {}
    async with fronted_broker(tmp_path, tls=tls) as front:
        with pytest.raises(KafkaError):
            await ensure_topic(kafka_settings(front, **client))


async def test_the_embedded_broker_with_authentication_refuses_every_client(
    tmp_path: Path,
) -> None:
    """Tansu's own `--authentication` refuses a PLAINTEXT client, and a SCRAM client too: this
    build keeps no credentials (memory storage), so the user it asks for cannot exist. It says
    so in the SCRAM server-final message (`e=unknown-user`), which aiokafka 0.14 does not turn
    into a KafkaError but fails on with KeyError('v'); Kafka itself answers SaslAuthenticate
    with an error code instead, which the front does (the test above)."""
    broker = EmbeddedKafka(log_file=tmp_path / "broker.log", authentication=True)
    await asyncio.to_thread(broker.start)
    env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "LEDGER_TOPIC_PARTITIONS": "4"}
    try:
        with pytest.raises(KafkaError):
            await ensure_topic(Settings.from_env(env))
        scram = Settings.from_env(env | sasl("SASL_PLAINTEXT", "SCRAM-SHA-512", API))
        with pytest.raises(KeyError, match="v"):
            await ensure_topic(scram)
    finally:
        broker.stop()
    log = (tmp_path / "broker.log").read_text(encoding="utf-8", errors="replace")
    assert "NotAuthenticated" in log


async def test_a_consent_reaches_its_decision_with_each_process_its_own_principal(
    tmp_path: Path, pki: Pki, real_servers: Servers
) -> None:
    async with fronted_broker(tmp_path, tls=pki.server_context(), users=USERS) as front:
        secured = {
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{front.port}",
            **sasl("SASL_SSL", "SCRAM-SHA-512", OPERATOR),
            "KAFKA_SSL_CA_FILE": str(pki.ca_file),
        }
        operator = await make_settings(real_servers, **secured)  # init: topics, migrations
        api = replace(operator, kafka_sasl_username=API, kafka_sasl_password=USERS[API])
        projector = replace(
            operator, kafka_sasl_username=PROJECTOR, kafka_sasl_password=USERS[PROJECTOR]
        )
        async with running_projector(projector), running_api(api) as client:
            created = await client.post(
                "/v1/subjects/secure-1/consents", json={"purpose": "newsletter", "channel": "email"}
            )
            assert created.status_code == 201, created.text
            params = {
                "subject_id": "secure-1",
                "purpose": "newsletter",
                "channel": "email",
                "min_token": created.json()["token"],
            }
            answer = (await client.get("/v1/decision", params=params)).json()
        assert (answer["allowed"], answer["reason"]) == (True, "consent_given")
        # an operator job is a process of its own, configured by the environment only
        backup = tmp_path / "ledger.avro"
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.cli.main", "backup", str(backup), "--no-progress"],
            env={**os.environ, **operator.as_environment()},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert front.log.refused == []
    assert {user for user, _ in front.log.authenticated} == {API, PROJECTOR, OPERATOR}
    assert {mechanism for _, mechanism in front.log.authenticated} == {"SCRAM-SHA-512"}
