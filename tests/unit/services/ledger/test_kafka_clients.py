"""One factory builds every Kafka client (services/ledger/kafka_clients.py): the source is parsed to
hold that no other module constructs an aiokafka client, and the options it adds are checked
for each security protocol."""

from __future__ import annotations

import ast
import ssl
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509

from services.kafka_access import KafkaAccess
from services.ledger.kafka_clients import (
    KafkaAccessError,
    connection_options,
    new_admin,
    new_consumer,
    new_producer,
)
from tests.throwaway_pki import Pki, make_pki

ROOT = Path(__file__).resolve().parents[4]
FACTORY = ROOT / "services" / "ledger" / "kafka_clients.py"
SCANNED = ("services", "projections", "bench", "tests")
CLIENT_CLASSES = frozenset(
    {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "AIOKafkaClient"}
)


def _named(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def client_constructions(source: str) -> list[str]:
    """`line: what` for every way `source` could build an aiokafka client itself: a call of a
    client class, the class handed to another call (functools.partial), a subclass, or an
    import under another name. Type annotations are not constructions."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            callee = _named(node.func)
            if callee in CLIENT_CLASSES:
                found.append(f"{node.lineno}: {callee}(...)")
            found += [
                f"{node.lineno}: {name} passed to {callee}"
                for arg in [*node.args, *(k.value for k in node.keywords)]
                if (name := _named(arg)) in CLIENT_CLASSES
            ]
        elif isinstance(node, ast.ClassDef):
            found += [
                f"{node.lineno}: class {node.name}({name})"
                for base in node.bases
                if (name := _named(base)) in CLIENT_CLASSES
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aiokafka"):
            found += [
                f"{node.lineno}: import {alias.name} as {alias.asname}"
                for alias in node.names
                if alias.name in CLIENT_CLASSES and alias.asname not in (None, alias.name)
            ]
    return found


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("AIOKafkaProducer(bootstrap_servers='x')", ["1: AIOKafkaProducer(...)"]),
        ("aiokafka.AIOKafkaConsumer('t')", ["1: AIOKafkaConsumer(...)"]),
        ("admin.AIOKafkaAdminClient()", ["1: AIOKafkaAdminClient(...)"]),
        ("AIOKafkaClient(bootstrap_servers='x')", ["1: AIOKafkaClient(...)"]),
        ("f = partial(AIOKafkaConsumer, 'x')", ["1: AIOKafkaConsumer passed to partial"]),
        ("make(cls=AIOKafkaProducer)", ["1: AIOKafkaProducer passed to make"]),
        ("class Mine(AIOKafkaProducer): pass", ["1: class Mine(AIOKafkaProducer)"]),
        ("from aiokafka import AIOKafkaProducer as P", ["1: import AIOKafkaProducer as P"]),
        ("def f(c: AIOKafkaConsumer) -> AIOKafkaProducer: ...", []),
        ("x: AIOKafkaAdminClient | None = None", []),
        ("from aiokafka import AIOKafkaConsumer, TopicPartition", []),
        ("new_consumer(settings.kafka, enable_auto_commit=False)", []),
    ],
)
def test_the_scan_finds_every_way_of_building_a_client(source: str, found: list[str]) -> None:
    assert client_constructions(source) == found


def test_only_the_factory_builds_kafka_clients() -> None:
    elsewhere = {
        str(path.relative_to(ROOT)): found
        for top in SCANNED
        for path in sorted((ROOT / top).rglob("*.py"))
        if path != FACTORY and (found := client_constructions(path.read_text(encoding="utf-8")))
    }
    assert elsewhere == {}, "build Kafka clients with services.ledger.kafka_clients, not by hand"
    built = {line.split(": ")[1] for line in client_constructions(FACTORY.read_text("utf-8"))}
    assert built == {"AIOKafkaProducer(...)", "AIOKafkaConsumer(...)", "AIOKafkaAdminClient(...)"}


# --- what the factory passes -----------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def scram(protocol: str, **more: str) -> KafkaAccess:
    return KafkaAccess(
        "kafka:9093",
        security_protocol=protocol,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="ledger-api",
        sasl_password="pw-api-1",
        **more,
    )


def test_plaintext_adds_nothing_but_the_brokers() -> None:
    assert connection_options(KafkaAccess("kafka:9092")) == {
        "bootstrap_servers": "kafka:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_sasl_plaintext_passes_the_principal_and_no_tls() -> None:
    assert connection_options(scram("SASL_PLAINTEXT")) == {
        "bootstrap_servers": "kafka:9093",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "ledger-api",
        "sasl_plain_password": "pw-api-1",
    }


def test_tls_verifies_the_broker_against_the_ca_file(pki: Pki) -> None:
    options = connection_options(scram("SASL_SSL", ssl_ca_file=str(pki.ca_file)))
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    trusted = [x509.load_der_x509_certificate(der) for der in context.get_ca_certs(True)]
    assert [ca.subject.rfc4514_string() for ca in trusted] == ["CN=ledger test CA"]
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_plain_username"]


def test_a_client_certificate_with_an_encrypted_key_loads_with_its_password(pki: Pki) -> None:
    access = KafkaAccess(
        "kafka:9093",
        security_protocol="SSL",
        ssl_ca_file=str(pki.ca_file),
        ssl_cert_file=str(pki.client_cert),
        ssl_key_file=str(pki.client_key),
        ssl_key_password=pki.client_key_password,
    )
    assert isinstance(connection_options(access)["ssl_context"], ssl.SSLContext)
    wrong = replace(access, ssl_key_password="not-it")
    with pytest.raises(KafkaAccessError, match="KAFKA_SSL_KEY_PASSWORD") as refused:
        connection_options(wrong)
    assert "not-it" not in str(refused.value) and pki.client_key_password not in str(refused.value)


@pytest.mark.parametrize(
    ("field", "variable"),
    [
        ("ssl_ca_file", "KAFKA_SSL_CA_FILE"),
        ("ssl_cert_file", "KAFKA_SSL_CERT_FILE"),
    ],
)
def test_a_missing_file_is_named_by_its_variable(tmp_path: Path, field: str, variable: str) -> None:
    access = KafkaAccess("kafka:9093", security_protocol="SSL", **{field: str(tmp_path / "gone")})
    with pytest.raises(KafkaAccessError, match=f"{variable}=.*gone.* is not a readable file"):
        connection_options(access)


@pytest.mark.parametrize(
    ("content", "password"),
    [("pw-file-1\n", "pw-file-1"), ("pw-file-1", "pw-file-1"), ("pw file\r\n", "pw file")],
)
def test_the_password_file_is_read_without_its_line_break(
    tmp_path: Path, content: str, password: str
) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text(content, encoding="utf-8")
    access = KafkaAccess(
        "kafka:9093",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="ledger-projector",
        sasl_password_file=str(secret),
    )
    assert connection_options(access)["sasl_plain_password"] == password


@pytest.mark.parametrize("content", [None, "", "\n"])
def test_a_missing_or_empty_password_file_is_refused(tmp_path: Path, content: str | None) -> None:
    secret = tmp_path / "kafka-password"
    if content is not None:
        secret.write_text(content, encoding="utf-8")
    access = KafkaAccess(
        "kafka:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="ledger-api",
        sasl_password_file=str(secret),
    )
    with pytest.raises(KafkaAccessError, match="KAFKA_SASL_PASSWORD_FILE="):
        connection_options(access)


@pytest.mark.parametrize("build", [new_producer, new_consumer, new_admin])
@pytest.mark.parametrize(
    "override",
    [
        {"bootstrap_servers": "elsewhere:9092"},
        {"security_protocol": "PLAINTEXT"},
        {"sasl_plain_password": "x"},
        {"ssl_context": None},
    ],
)
async def test_callers_cannot_replace_the_connection_options(
    build: Callable[..., object], override: dict[str, object]
) -> None:
    with pytest.raises(TypeError, match="connection options come from KafkaAccess"):
        build(scram("SASL_SSL"), **override)
