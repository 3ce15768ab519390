"""Settings: every knob the ledger reads from the environment, with its default, in one place.

`ENVIRONMENT` lists the variables by name so the settings page (docs/operators/settings.md)
and the docker-compose check can be tested against the code instead of drifting from it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Final, get_type_hints
from urllib.parse import urlsplit

from services.environment import ENVIRONMENT as ENVIRONMENT
from services.environment import WHOLE_NUMBER_RANGES
from services.identity import links
from services.identity.api_keys import admin_key_problem
from services.identity.secrets import (
    SECRET_VARIABLES,
    WRITER_KEYS,
    KeyRing,
    Secrets,
    load_secrets,
    load_writer_keys,
)
from services.kafka_access import KafkaAccess
from services.rules.languages import language_problem
from services.telemetry.logs import FORMATS as LOG_FORMATS

SECRETS_FILE: Final = "LEDGER_SECRETS_FILE"

LOG_LEVELS: Final = ("critical", "error", "warning", "info", "debug")
TOPIC_CHECKS: Final = ("warn", "refuse")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A setting has a value the ledger cannot use; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str
    port: int
    public_port: int
    public_host: str
    kafka_bootstrap_servers: str
    kafka_security_protocol: str
    kafka_sasl_mechanism: str
    kafka_sasl_username: str
    kafka_sasl_password: str = field(repr=False)
    kafka_sasl_password_file: str
    kafka_ssl_ca_file: str
    kafka_ssl_cert_file: str
    kafka_ssl_key_file: str
    kafka_ssl_key_password: str = field(repr=False)
    database_url: str
    topic: str
    state_topic: str
    checks_topic: str
    checkpoints_topic: str
    dead_letter_topic: str
    dead_letter_retention_days: int
    checkpoint_interval_s: int
    topic_partitions: int
    topic_replication: int
    topic_min_insync_replicas: int
    topic_check: str
    kafka_idempotence: bool
    produce_timeout_ms: int
    read_wait_ms: int
    api_concurrency_limit: int
    db_acquire_timeout_ms: int
    db_statement_timeout_ms: int
    audience_max_streams: int
    audience_deadline_s: int
    audience_idle_s: int
    projector_group: str
    kafka_session_timeout_ms: int
    projector_batch: int
    projector_fetch_wait_ms: int
    max_staleness_ms: int
    webhook_group: str
    webhook_timeout_s: int
    webhook_retry_hours: int
    webhook_concurrency: int
    webhook_delivery_retention_days: int
    webhook_parked_retention_days: int
    catalogue_path: str
    public_url: str
    link_ttl_days: int
    preference_link_ttl_days: int
    signup_confirmation_days: int
    controller_name: str
    default_language: str
    jurisdiction: str
    controller_contact: str
    dpo_contact: str
    data_subjects: str
    joint_controllers: str
    eu_representative: str
    data_dir: str
    log_level: str
    log_format: str
    secrets_file: str
    api_key_refresh_s: int
    metrics_public: bool
    public_rate_per_min: int
    failed_key_rate_per_min: int
    collect_rate_per_site_per_min: int
    collect_rate_per_address_per_min: int
    collect_repeat_window_s: int
    preference_saves_per_min: int
    staff_session_idle_min: int
    staff_session_max_h: int
    staff_sign_in_rate_per_min: int
    staff_session_retention_days: int
    forwarded_allow_ips: str
    webhook_allow_loopback: bool
    webhook_allow_private: bool
    master_keys: str = field(repr=False)
    blind_index_key: str = field(repr=False)
    link_keys: str = field(repr=False)
    receipt_keys: str = field(repr=False)
    writer_keys: str = field(repr=False)
    api_key_hash_key: str = field(repr=False)
    admin_key: str = field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        types = get_type_hints(cls)
        values: dict[str, object] = {}
        for var, (attr, default, _) in ENVIRONMENT.items():
            raw = source.get(var, default).strip()
            values[attr] = _convert(var, raw, types[attr])
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse combinations no broker or server would accept, naming the variables."""
        kafka_problem = self.kafka.problem(remote=self.kafka_is_remote)
        if kafka_problem:
            raise SettingsError(kafka_problem)
        if self.topic_min_insync_replicas > self.topic_replication:
            raise SettingsError(
                "LEDGER_TOPIC_MIN_INSYNC_REPLICAS must not exceed LEDGER_TOPIC_REPLICATION"
            )
        if self.topic_check not in TOPIC_CHECKS:
            raise SettingsError(
                f"LEDGER_TOPIC_CHECK={self.topic_check!r}; accepted: {', '.join(TOPIC_CHECKS)}"
            )
        if self.log_level.lower() not in LOG_LEVELS:
            raise SettingsError(
                f"LEDGER_LOG_LEVEL={self.log_level!r}; accepted: {', '.join(LOG_LEVELS)}"
            )
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(
                f"LEDGER_LOG_FORMAT={self.log_format!r}; accepted: {', '.join(LOG_FORMATS)}"
            )
        if not self.topic:
            raise SettingsError("LEDGER_TOPIC must not be empty")
        if not self.state_topic or self.state_topic == self.topic:
            raise SettingsError("LEDGER_STATE_TOPIC must be set and differ from LEDGER_TOPIC")
        if not self.checks_topic or self.checks_topic in (self.topic, self.state_topic):
            raise SettingsError(
                "LEDGER_CHECKS_TOPIC must be set and differ from the event and state topics"
            )
        if not self.checkpoints_topic or self.checkpoints_topic in (
            self.topic,
            self.state_topic,
            self.checks_topic,
        ):
            raise SettingsError(
                "LEDGER_CHECKPOINTS_TOPIC must be set and differ from the event, state and"
                " checks topics"
            )
        side = (self.topic, self.state_topic, self.checks_topic, self.checkpoints_topic)
        if not self.dead_letter_topic or self.dead_letter_topic in side:
            raise SettingsError(
                "LEDGER_DEAD_LETTER_TOPIC must be set and differ from the event, state, checks and"
                " checkpoint topics"
            )
        if self.public_url:
            _check_public_url(self.public_url)
        if not self.controller_name.strip():
            raise SettingsError("LEDGER_CONTROLLER_NAME must not be empty")
        if language_problem(self.default_language):
            raise SettingsError(
                f"LEDGER_DEFAULT_LANGUAGE={self.default_language!r};"
                f" {language_problem(self.default_language)}"
            )
        if not re.fullmatch(r"[A-Z]{2}", self.jurisdiction):
            raise SettingsError(
                f"LEDGER_JURISDICTION={self.jurisdiction!r}; an ISO 3166-1 alpha-2 code such as FI"
            )
        if len(self.controller_contact) > 200:
            raise SettingsError("LEDGER_CONTROLLER_CONTACT must be at most 200 characters")
        if len(self.dpo_contact) > 200:
            raise SettingsError("LEDGER_DPO_CONTACT must be at most 200 characters")
        if not self.data_subjects.strip() or len(self.data_subjects) > 500:
            raise SettingsError("LEDGER_DATA_SUBJECTS must be text of 1-500 characters")
        if len(self.joint_controllers) > 1000:
            raise SettingsError("LEDGER_JOINT_CONTROLLERS must be at most 1000 characters")
        if len(self.eu_representative) > 500:
            raise SettingsError("LEDGER_EU_REPRESENTATIVE must be at most 500 characters")
        if self.public_port == self.port:
            raise SettingsError("LEDGER_PUBLIC_PORT must differ from LEDGER_PORT (or be 0)")
        if self.admin_key:
            problem = admin_key_problem(self.admin_key)
            if problem:
                raise SettingsError(f"LEDGER_ADMIN_KEY {problem}")

    def with_servers(self, kafka: str, database: str, *, idempotence: bool) -> Settings:
        return replace(
            self,
            kafka_bootstrap_servers=kafka,
            database_url=database,
            kafka_idempotence=idempotence,
        )

    def secrets(self) -> Secrets:
        """The key rings and keys, parsed; raises SecretsError naming what is missing."""
        return load_secrets(
            {var: getattr(self, ENVIRONMENT[var][0]) for var in (*SECRET_VARIABLES, SECRETS_FILE)}
        )

    def writer_key_ring(self) -> KeyRing:
        """Only the writer keys (record MACs); raises SecretsError when they are missing."""
        return load_writer_keys(
            {var: getattr(self, ENVIRONMENT[var][0]) for var in (WRITER_KEYS, SECRETS_FILE)}
        )

    def link_lifetimes(self) -> dict[links.LinkKind, timedelta]:
        """How long each kind of link stays valid: a preference link, which can grant, far
        less."""
        return {
            links.UNSUBSCRIBE: timedelta(days=self.link_ttl_days),
            links.PREFERENCES: timedelta(days=self.preference_link_ttl_days),
        }

    @property
    def pages_address(self) -> tuple[str, int]:
        """Where this process serves /u/ and /p/: the public-pages listener when there is one
        (LEDGER_PUBLIC_HOST:LEDGER_PUBLIC_PORT), else the API's own address."""
        if self.public_port:
            return self.public_host, self.public_port
        return self.host, self.port

    @property
    def public_base_url(self) -> str:
        """Where people reach /u/ and /p/, without a trailing slash: LEDGER_PUBLIC_URL, or
        when that is empty the address the pages are served on (for local use)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host, port = self.pages_address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    @property
    def kafka(self) -> KafkaAccess:
        """How this process reaches and authenticates to the brokers: what every Kafka client
        is built from (services/ledger/kafka_clients.py)."""
        return KafkaAccess(
            **{f.name: getattr(self, f"kafka_{f.name}") for f in fields(KafkaAccess)}
        )

    @property
    def kafka_is_remote(self) -> bool:
        """True when a bootstrap server is not a loopback address."""
        return not all(is_loopback(host) for host in self.kafka.hosts)

    @property
    def public_url_problem(self) -> str | None:
        """Why links cannot be issued (None: they can): LEDGER_PUBLIC_URL is empty and the pages
        are served on an address people cannot reach as a link, such as the image's 0.0.0.0 or
        the public-pages listener's own bind address."""
        host, _ = self.pages_address
        if self.public_url or is_loopback(host):
            return None
        return (
            f"LEDGER_PUBLIC_URL is not set and the pages are served on {host}, so links would"
            f" point at {self.public_base_url}, which no recipient can reach (and one-click"
            " unsubscribe needs https, RFC 8058): set LEDGER_PUBLIC_URL to the https base URL"
            " of the public pages"
        )

    @property
    def catalogue_file(self) -> Path:
        if self.catalogue_path:
            return Path(self.catalogue_path)
        return Path(__file__).parent / "rules" / "purposes.toml"

    def as_environment(self) -> dict[str, str]:
        """The settings as environment variables, for starting child processes."""
        out = {}
        for var, (attr, _, _) in ENVIRONMENT.items():
            value = getattr(self, attr)
            out[var] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return out


#: hosts a plain-http public URL may have: nobody else can reach them, so no one-click
#: unsubscribe URL that a mailbox provider would call is ever plain http (RFC 8058 section 3.1)
LOOPBACK_NAMES: Final = ("localhost",)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_public_url(value: str) -> None:
    try:
        url = urlsplit(value)
        host = url.hostname or ""
        _ = url.port  # raises ValueError for a port that is not one
    except ValueError:
        url, host = urlsplit(""), ""
    if url.scheme not in ("http", "https") or not host or url.query or url.fragment:
        raise SettingsError(
            f"LEDGER_PUBLIC_URL={value!r}; an https base URL such as https://consent.example.com"
        )
    if url.scheme != "https" and not is_loopback(host):
        raise SettingsError(
            f"LEDGER_PUBLIC_URL={value!r} must be https: one-click unsubscribe needs an https"
            " URL (RFC 8058); plain http is only for a loopback host (localhost, 127.0.0.1, ::1)"
        )


def _convert(var: str, raw: str, kind: object) -> object:
    if kind is int:
        try:
            number = int(raw)
        except ValueError:
            raise SettingsError(f"{var}={raw!r} is not a whole number") from None
        low, high = WHOLE_NUMBER_RANGES.get(var, (0, 2**31))
        if not low <= number <= high:
            raise SettingsError(f"{var}={raw!r} must be from {low} to {high}")
        return number
    if kind is bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise SettingsError(f"{var}={raw!r} is not a boolean (true/false)")
    return raw
