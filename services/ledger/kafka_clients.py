"""The one place Kafka clients are built: producers, consumers and admin clients, each with
the brokers, TLS and SASL credentials of a `KafkaAccess` (the KAFKA_* settings).

No other module constructs an aiokafka client (tests/unit/services/ledger/test_kafka_clients.py
parses every source file to hold that), so no client can be made that skips the credentials.
Callers pass only what their use needs (acks, group, timeouts); the connection options are
refused from them.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from services.kafka_access import KafkaAccess

#: options only `connection_options` sets: a caller passing one is a mistake, not an override
CONNECTION_OPTIONS: Final = frozenset(
    {
        "bootstrap_servers",
        "security_protocol",
        "ssl_context",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "sasl_kerberos_service_name",
        "sasl_kerberos_domain_name",
        "sasl_oauth_token_provider",
    }
)


class KafkaAccessError(ValueError):
    """A file named by a KAFKA_* setting cannot be used; the message names the variable."""


def connection_options(kafka: KafkaAccess) -> dict[str, Any]:
    """The aiokafka keyword arguments that reach the brokers as `kafka` says."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.uses_sasl:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = sasl_password(kafka)
    if kafka.uses_tls:
        options["ssl_context"] = tls_context(kafka)
    return options


def sasl_password(kafka: KafkaAccess) -> str:
    """KAFKA_SASL_PASSWORD, or the content of KAFKA_SASL_PASSWORD_FILE without its final line
    break; read at every client, so a rotated secret file is used by the next one."""
    if not kafka.sasl_password_file:
        return kafka.sasl_password
    try:
        text = Path(kafka.sasl_password_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KafkaAccessError(
            f"KAFKA_SASL_PASSWORD_FILE={kafka.sasl_password_file!r} unreadable: {exc}"
        ) from None
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise KafkaAccessError(f"KAFKA_SASL_PASSWORD_FILE={kafka.sasl_password_file!r} is empty")
    return password


def tls_context(kafka: KafkaAccess) -> ssl.SSLContext:
    """A client context that verifies the brokers' certificates and host names against
    KAFKA_SSL_CA_FILE (or the system's CAs) and presents KAFKA_SSL_CERT_FILE when set."""
    for name, path in (
        ("KAFKA_SSL_CA_FILE", kafka.ssl_ca_file),
        ("KAFKA_SSL_CERT_FILE", kafka.ssl_cert_file),
        ("KAFKA_SSL_KEY_FILE", kafka.ssl_key_file),
    ):
        if path and not Path(path).is_file():
            raise KafkaAccessError(f"{name}={path!r} is not a readable file")
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=kafka.ssl_ca_file or None,
            certfile=kafka.ssl_cert_file or None,
            keyfile=kafka.ssl_key_file or None,
            password=kafka.ssl_key_password or None,
        )
    except ssl.SSLError as exc:
        raise KafkaAccessError(
            "KAFKA_SSL_CA_FILE, KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE or KAFKA_SSL_KEY_PASSWORD"
            f" cannot be used: {exc}"
        ) from None
    return context


def _checked(options: dict[str, Any]) -> dict[str, Any]:
    refused = sorted(CONNECTION_OPTIONS & set(options))
    if refused:
        raise TypeError(f"connection options come from KafkaAccess, not the caller: {refused}")
    return options


def new_producer(kafka: KafkaAccess, **options: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(**connection_options(kafka), **_checked(options))


def new_consumer(kafka: KafkaAccess, *topics: str, **options: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, **connection_options(kafka), **_checked(options))


def new_admin(kafka: KafkaAccess, **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection_options(kafka), **_checked(options))
