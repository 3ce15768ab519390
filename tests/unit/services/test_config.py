"""Settings: defaults, conversions, and refusals that name the variable."""

from __future__ import annotations

import pytest

from services.config import ENVIRONMENT, Settings, SettingsError


def test_defaults_come_from_the_environment_table() -> None:
    settings = Settings.from_env({})
    for var, (attr, default, _) in ENVIRONMENT.items():
        value = getattr(settings, attr)
        expected = default
        if isinstance(value, bool):
            expected = default.lower()
            value = str(value).lower()
        assert str(value) == expected, var


def test_round_trip_through_child_process_environment() -> None:
    settings = Settings.from_env({"LEDGER_PORT": "9001", "LEDGER_KAFKA_IDEMPOTENCE": "off"})
    assert settings.port == 9001 and settings.kafka_idempotence is False
    assert Settings.from_env(settings.as_environment()) == settings


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"LEDGER_PORT": "http"}, "LEDGER_PORT"),
        ({"LEDGER_PORT": "0"}, "LEDGER_PORT"),
        ({"LEDGER_PORT": "70000"}, "LEDGER_PORT"),
        ({"LEDGER_TOPIC_PARTITIONS": "0"}, "LEDGER_TOPIC_PARTITIONS"),
        ({"LEDGER_TOPIC_REPLICATION": "-1"}, "LEDGER_TOPIC_REPLICATION"),
        ({"LEDGER_TOPIC_MIN_INSYNC_REPLICAS": "2"}, "LEDGER_TOPIC_MIN_INSYNC_REPLICAS"),
        ({"LEDGER_KAFKA_IDEMPOTENCE": "maybe"}, "LEDGER_KAFKA_IDEMPOTENCE"),
        ({"LEDGER_LOG_LEVEL": "loud"}, "LEDGER_LOG_LEVEL"),
        ({"LEDGER_LOG_FORMAT": "xml"}, "LEDGER_LOG_FORMAT"),
        ({"LEDGER_PROJECTOR_BATCH": "0"}, "LEDGER_PROJECTOR_BATCH"),
        ({"LEDGER_TOPIC": " "}, "LEDGER_TOPIC"),
        ({"LEDGER_PUBLIC_URL": "ftp://example.com"}, "LEDGER_PUBLIC_URL"),
        ({"LEDGER_PUBLIC_URL": "https://example.com/?x=1"}, "LEDGER_PUBLIC_URL"),
        ({"LEDGER_PUBLIC_URL": "example.com"}, "LEDGER_PUBLIC_URL"),
        ({"LEDGER_PUBLIC_URL": "http://consent.example.com"}, "LEDGER_PUBLIC_URL"),
        ({"LEDGER_PUBLIC_URL": "http://10.0.0.5:8000"}, "LEDGER_PUBLIC_URL"),
        ({"LEDGER_PUBLIC_URL": "http://0.0.0.0:8000"}, "LEDGER_PUBLIC_URL"),
        ({"LEDGER_PUBLIC_URL": "http://localhost.example.com"}, "LEDGER_PUBLIC_URL"),
        ({"LEDGER_PUBLIC_URL": "https://"}, "LEDGER_PUBLIC_URL"),
        ({"LEDGER_PUBLIC_URL": "https://[::1"}, "LEDGER_PUBLIC_URL"),
        ({"LEDGER_PUBLIC_URL": "https://consent.example.com:99999"}, "LEDGER_PUBLIC_URL"),
        ({"LEDGER_CONTROLLER_NAME": " "}, "LEDGER_CONTROLLER_NAME"),
        ({"LEDGER_LINK_TTL_DAYS": "0"}, "LEDGER_LINK_TTL_DAYS"),
        ({"LEDGER_ADMIN_KEY": "admin"}, "LEDGER_ADMIN_KEY"),
        ({"LEDGER_ADMIN_KEY": "an admin key with spaces in it, long"}, "LEDGER_ADMIN_KEY"),
        ({"LEDGER_ADMIN_KEY": "a" * 32}, "LEDGER_ADMIN_KEY"),  # long enough before, not random
        ({"LEDGER_ADMIN_KEY": "cl_ops_" + "0123456789abcdef" * 4}, "LEDGER_ADMIN_KEY"),
        ({"LEDGER_PUBLIC_PORT": "8000"}, "LEDGER_PUBLIC_PORT"),  # the API's own port
        ({"LEDGER_PUBLIC_PORT": "65536"}, "LEDGER_PUBLIC_PORT"),
        ({"LEDGER_FAILED_KEY_RATE_PER_MIN": "-1"}, "LEDGER_FAILED_KEY_RATE_PER_MIN"),
        ({"LEDGER_API_KEY_REFRESH_S": "0"}, "LEDGER_API_KEY_REFRESH_S"),
        ({"LEDGER_PUBLIC_RATE_PER_MIN": "-1"}, "LEDGER_PUBLIC_RATE_PER_MIN"),
        ({"LEDGER_METRICS_PUBLIC": "maybe"}, "LEDGER_METRICS_PUBLIC"),
        ({"LEDGER_API_CONCURRENCY_LIMIT": "0"}, "LEDGER_API_CONCURRENCY_LIMIT"),
        ({"LEDGER_DB_ACQUIRE_TIMEOUT_MS": "0"}, "LEDGER_DB_ACQUIRE_TIMEOUT_MS"),
        ({"LEDGER_DB_STATEMENT_TIMEOUT_MS": "-1"}, "LEDGER_DB_STATEMENT_TIMEOUT_MS"),
    ],
    ids=lambda v: str(v),
)
def test_unusable_values_are_refused_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


@pytest.mark.parametrize(
    "url",
    [
        "https://consent.example.com",
        "https://consent.example.com/mail/",
        "https://consent.example.com:8443",
        "http://127.0.0.1:8000",
        "http://127.0.0.2:8000",
        "http://localhost:8000",
        "http://LOCALHOST",
        "http://[::1]:8000",
    ],
)
def test_public_urls_that_are_https_or_loopback_are_accepted(url: str) -> None:
    assert Settings.from_env({"LEDGER_PUBLIC_URL": url}).public_base_url == url.rstrip("/")


@pytest.mark.parametrize(
    ("env", "base"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"LEDGER_PORT": "8123"}, "http://127.0.0.1:8123"),
        ({"LEDGER_HOST": "::1", "LEDGER_PORT": "8123"}, "http://[::1]:8123"),
        ({"LEDGER_PORT": "8123", "LEDGER_PUBLIC_URL": "https://c.example"}, "https://c.example"),
        ({"LEDGER_PUBLIC_PORT": "8090"}, "http://127.0.0.1:8090"),
        (
            {"LEDGER_PUBLIC_PORT": "8090", "LEDGER_PUBLIC_HOST": "::1", "LEDGER_PORT": "8123"},
            "http://[::1]:8090",
        ),
    ],
    ids=["default", "port", "ipv6-host", "explicit", "public-listener", "public-listener-ipv6"],
)
def test_an_empty_public_url_is_the_api_address(env: dict[str, str], base: str) -> None:
    assert Settings.from_env(env).public_base_url == base


@pytest.mark.parametrize(
    ("env", "refused"),
    [
        ({}, False),
        ({"LEDGER_HOST": "0.0.0.0"}, True),
        ({"LEDGER_HOST": "0.0.0.0", "LEDGER_PUBLIC_URL": "https://c.example"}, False),
        # the pages face the internet on the public listener: links must name its public URL
        ({"LEDGER_PUBLIC_PORT": "8090", "LEDGER_PUBLIC_HOST": "0.0.0.0"}, True),
        ({"LEDGER_PUBLIC_PORT": "8090", "LEDGER_PUBLIC_HOST": "::"}, True),
        (
            {
                "LEDGER_PUBLIC_PORT": "8090",
                "LEDGER_PUBLIC_HOST": "0.0.0.0",
                "LEDGER_PUBLIC_URL": "https://c.example",
            },
            False,
        ),
        ({"LEDGER_HOST": "0.0.0.0", "LEDGER_PUBLIC_PORT": "8090"}, False),  # pages on loopback
    ],
    ids=["local", "all-interfaces", "explicit", "listener", "listener-ipv6", "listener-explicit",
         "listener-on-loopback"],
)  # fmt: skip
def test_links_need_a_public_url_where_the_pages_face_others(
    env: dict[str, str], refused: bool
) -> None:
    problem = Settings.from_env(env).public_url_problem
    assert (problem is not None) is refused
    if problem:
        assert "LEDGER_PUBLIC_URL" in problem


def test_up_port_moves_the_links_too() -> None:
    """`up --port` rebuilds the settings with LEDGER_PORT (services/cli/main.py) and the links
    follow."""
    settings = Settings.from_env({})
    moved = Settings.from_env({**settings.as_environment(), "LEDGER_PORT": "8123"})
    assert moved.public_base_url == "http://127.0.0.1:8123"


def test_the_admin_key_is_never_in_the_settings_repr() -> None:
    key = "cl_ops_" + "3f9c2a7be41d0865c7f1a93e2b5d6048f0a1c3e5b7d9f2a4c6e8b0d2f4a6c8e0"
    settings = Settings.from_env({"LEDGER_ADMIN_KEY": key})
    assert settings.admin_key == key and key not in repr(settings)
