"""The KAFKA_* security settings: which combinations are refused (naming the variables), which
are warned about, and that the passwords stay out of every repr."""

from __future__ import annotations

from dataclasses import fields

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.config import ENVIRONMENT, Settings, SettingsError
from services.kafka_access import KAFKA_SECURITY_VARIABLES, KafkaAccess, variable

REMOTE = {"KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092,kafka-2:9092"}
LOCAL = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}
SCRAM = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "ledger-api",
    "KAFKA_SASL_PASSWORD": "pw-api-1",
}


def without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in names}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({**REMOTE, "KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL='TLS'"),
        ({**REMOTE, "KAFKA_SECURITY_PROTOCOL": "sasl_ssl"}, "KAFKA_SECURITY_PROTOCOL='sasl_ssl'"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL"}, "needs KAFKA_BOOTSTRAP_SERVERS"),
        ({**REMOTE, **without(SCRAM, "KAFKA_SASL_MECHANISM")}, "needs KAFKA_SASL_MECHANISM"),
        ({**REMOTE, **SCRAM, "KAFKA_SASL_MECHANISM": "GSSAPI"}, "not 'GSSAPI'"),
        ({**REMOTE, **without(SCRAM, "KAFKA_SASL_USERNAME")}, "needs KAFKA_SASL_USERNAME"),
        ({**REMOTE, **without(SCRAM, "KAFKA_SASL_PASSWORD")}, "exactly one of KAFKA_SASL_PASSWORD"),
        (
            {**REMOTE, **SCRAM, "KAFKA_SASL_PASSWORD_FILE": "/run/secrets/kafka"},
            "exactly one of KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE",
        ),
        (
            {**REMOTE, **SCRAM, "KAFKA_SECURITY_PROTOCOL": "SSL"},
            "KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD set, but"
            " KAFKA_SECURITY_PROTOCOL=SSL",
        ),
        (
            {**REMOTE, "KAFKA_SASL_USERNAME": "ledger-api"},
            "KAFKA_SASL_USERNAME set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ),
        (
            {**REMOTE, "KAFKA_SSL_CA_FILE": "/etc/kafka/ca.pem"},
            "KAFKA_SSL_CA_FILE set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ),
        (
            {
                **REMOTE,
                **SCRAM,
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SSL_CA_FILE": "c",
            },
            "KAFKA_SSL_CA_FILE set, but KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
        ),
        (
            {**REMOTE, "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEY_FILE": "k.pem"},
            "KAFKA_SSL_KEY_FILE and KAFKA_SSL_KEY_PASSWORD need KAFKA_SSL_CERT_FILE",
        ),
        (
            {**REMOTE, "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEY_PASSWORD": "pw"},
            "need KAFKA_SSL_CERT_FILE",
        ),
        (
            {**REMOTE, **SCRAM, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}
            | {"KAFKA_SASL_MECHANISM": "PLAIN"},
            "sends the password in clear to a broker off this host",
        ),
    ],
)
def test_combinations_no_broker_would_accept_are_refused_naming_the_variables(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert named in str(refused.value)


@pytest.mark.parametrize(
    "env",
    [
        {},
        REMOTE,
        {**REMOTE, **SCRAM},
        {**REMOTE, **SCRAM, "KAFKA_SASL_MECHANISM": "PLAIN"},  # PLAIN inside TLS
        {**REMOTE, **SCRAM, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},  # SCRAM: no password
        {**REMOTE, **without(SCRAM, "KAFKA_SASL_PASSWORD"), "KAFKA_SASL_PASSWORD_FILE": "/s"},
        {**REMOTE, **SCRAM, "KAFKA_SSL_CA_FILE": "/etc/kafka/ca.pem"},
        {**REMOTE, "KAFKA_SECURITY_PROTOCOL": "SSL"},  # the system's CAs
        {**REMOTE, "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERT_FILE": "both.pem"},
        {
            **REMOTE,
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CERT_FILE": "c.pem",
            "KAFKA_SSL_KEY_FILE": "k.pem",
            "KAFKA_SSL_KEY_PASSWORD": "pw",
        },
    ],
)
def test_usable_combinations_are_accepted(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    assert Settings.from_env(settings.as_environment()) == settings


@pytest.mark.parametrize(
    ("servers", "remote"),
    [
        ("127.0.0.1:9092", False),
        ("localhost:9092,127.0.0.2:9093", False),
        ("[::1]:9092", False),
        ("127.0.0.1:9092,kafka:9092", True),
        ("10.0.0.5:9092", True),
        ("[2001:db8::1]:9092", True),
    ],
)
def test_plain_over_sasl_plaintext_is_allowed_only_on_this_host(servers: str, remote: bool) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": servers,
        **SCRAM,
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "PLAIN",
    }
    if remote:
        with pytest.raises(SettingsError, match="KAFKA_SASL_MECHANISM=PLAIN"):
            Settings.from_env(env)
    else:
        assert Settings.from_env(env).kafka_is_remote is False


@pytest.mark.parametrize(
    ("env", "warned"),
    [
        (LOCAL, None),
        (REMOTE, "without credentials"),
        ({**REMOTE, "KAFKA_SECURITY_PROTOCOL": "SSL"}, "without credentials"),
        ({**REMOTE, "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERT_FILE": "c.pem"}, None),
        ({**REMOTE, **SCRAM, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "not encrypted"),
        ({**REMOTE, **SCRAM}, None),
        ({**LOCAL, **SCRAM, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, None),
    ],
)
def test_weak_but_allowed_connections_are_warned_about(
    env: dict[str, str], warned: str | None
) -> None:
    settings = Settings.from_env(env)
    found = settings.kafka.warnings(remote=settings.kafka_is_remote)
    if warned is None:
        assert found == []
    else:
        (warning,) = found
        assert warned in warning and "KAFKA_SECURITY_PROTOCOL=" in warning


def test_passwords_are_never_in_a_repr() -> None:
    settings = Settings.from_env(
        {
            **REMOTE,
            **SCRAM,
            "KAFKA_SSL_CERT_FILE": "c.pem",
            "KAFKA_SSL_KEY_PASSWORD": "pw-key-2",
        }
    )
    assert settings.kafka.sasl_password == "pw-api-1"
    for shown in (repr(settings), repr(settings.kafka), str(settings.kafka)):
        assert "pw-api-1" not in shown and "pw-key-2" not in shown
        assert "ledger-api" in shown  # the principal is not a secret


def test_every_field_is_one_kafka_variable_of_the_settings() -> None:
    for f in fields(KafkaAccess):
        name = variable(f.name)
        assert ENVIRONMENT[name][0] == f"kafka_{f.name}", name
    assert set(KAFKA_SECURITY_VARIABLES) == {variable(f.name) for f in fields(KafkaAccess)} - {
        "KAFKA_BOOTSTRAP_SERVERS"
    }


def test_the_environment_of_an_access_gives_a_child_the_same_access() -> None:
    settings = Settings.from_env({**REMOTE, **SCRAM, "KAFKA_SSL_CA_FILE": "/ca.pem"})
    assert Settings.from_env(settings.kafka.environment()).kafka == settings.kafka
    assert Settings.from_env(KafkaAccess("k:9092").environment()).kafka == KafkaAccess("k:9092")


hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z0-9-]{1,10}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)


@given(st.lists(st.tuples(hosts, st.integers(1, 65535)), min_size=1, max_size=5))
def test_hosts_are_the_bootstrap_servers_without_ports(servers: list[tuple[str, int]]) -> None:
    joined = " , ".join(f"{host}:{port}" for host, port in servers)
    assert KafkaAccess(joined).hosts == [host.strip("[]") for host, _ in servers]
