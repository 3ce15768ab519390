"""Settings: every knob the ledger reads from the environment, with its default, in one place.

`ENVIRONMENT` lists the variables by name so the README and the docker-compose check can be
tested against the code instead of drifting from it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, get_type_hints
from urllib.parse import urlsplit

from services.secrets import SECRET_VARIABLES, Secrets, load_secrets

SECRETS_FILE: Final = "LEDGER_SECRETS_FILE"

#: variable name -> (Settings attribute, default as text, what it does)
ENVIRONMENT: Final[dict[str, tuple[str, str, str]]] = {
    "LEDGER_HOST": ("host", "127.0.0.1", "address the HTTP API binds to"),
    "LEDGER_PORT": ("port", "8000", "port of the HTTP API"),
    "KAFKA_BOOTSTRAP_SERVERS": (
        "kafka_bootstrap_servers",
        "",
        "Kafka brokers; empty makes `up` start the embedded broker",
    ),
    "DATABASE_URL": (
        "database_url",
        "",
        "PostgreSQL DSN; empty makes `up` start the embedded PostgreSQL",
    ),
    "LEDGER_TOPIC": ("topic", "consent.events", "the event topic"),
    "LEDGER_STATE_TOPIC": (
        "state_topic",
        "consent.state",
        "compacted topic the projector publishes each subject's marketing state to",
    ),
    "LEDGER_CHECKS_TOPIC": (
        "checks_topic",
        "consent.checks",
        "topic of the contact-check evidence records (ContactCheckPerformed), 3 partitions",
    ),
    "LEDGER_CHECKPOINTS_TOPIC": (
        "checkpoints_topic",
        "consent.checkpoints",
        "topic the projector publishes each partition's checkpoint digests to, 1 partition",
    ),
    "LEDGER_CHECKPOINT_INTERVAL_S": (
        "checkpoint_interval_s",
        "60",
        "seconds between a partition's checkpoints while it receives records",
    ),
    "LEDGER_TOPIC_PARTITIONS": ("topic_partitions", "12", "partitions of the event topic"),
    "LEDGER_TOPIC_REPLICATION": (
        "topic_replication",
        "1",
        "replication factor used when the ledger creates the topic (3 in production)",
    ),
    "LEDGER_TOPIC_MIN_INSYNC_REPLICAS": (
        "topic_min_insync_replicas",
        "1",
        "min.insync.replicas set on the topic when created (2 in production)",
    ),
    "LEDGER_TOPIC_CHECK": (
        "topic_check",
        "warn",
        "what `init` and `up` do when a topic is weaker than required (finite retention,"
        " compaction, fewer replicas or in-sync replicas, unclean leader election): `warn`"
        " logs it, `refuse` also stops",
    ),
    "LEDGER_KAFKA_IDEMPOTENCE": (
        "kafka_idempotence",
        "true",
        "idempotent producer; `up` turns it off for the embedded broker, which lacks it",
    ),
    "LEDGER_PRODUCE_TIMEOUT_MS": (
        "produce_timeout_ms",
        "5000",
        "how long a command waits for the broker's acknowledgement before answering 503",
    ),
    "LEDGER_READ_WAIT_MS": (
        "read_wait_ms",
        "3000",
        "how long a query with min_token waits for the projection before answering 503",
    ),
    "LEDGER_PROJECTOR_GROUP": (
        "projector_group",
        "consent-ledger-projector",
        "consumer group of the projector",
    ),
    "LEDGER_KAFKA_SESSION_TIMEOUT_MS": (
        "kafka_session_timeout_ms",
        "10000",
        "consumer-group session timeout of the projector",
    ),
    "LEDGER_PROJECTOR_BATCH": ("projector_batch", "2000", "most records applied per transaction"),
    "LEDGER_PROJECTOR_FETCH_WAIT_MS": (
        "projector_fetch_wait_ms",
        "50",
        "longest a projector fetch waits for new records (bounds write-to-read latency)",
    ),
    "LEDGER_CATALOGUE": (
        "catalogue_path",
        "",
        "purpose catalogue (TOML); empty uses the bundled services/purposes.toml",
    ),
    "LEDGER_PUBLIC_URL": (
        "public_url",
        "",
        "base URL people reach the unsubscribe and preference pages at; https unless its host"
        " is loopback (RFC 8058); empty means `http://LEDGER_HOST:LEDGER_PORT`",
    ),
    "LEDGER_LINK_TTL_DAYS": (
        "link_ttl_days",
        "730",
        "how long an unsubscribe or preference link stays valid",
    ),
    "LEDGER_CONTROLLER_NAME": (
        "controller_name",
        "Example Controller",
        "the controller's name shown on the unsubscribe and preference pages",
    ),
    "LEDGER_DATA_DIR": (
        "data_dir",
        ".ledger",
        "where `up` keeps the embedded PostgreSQL data and its generated secrets file",
    ),
    "LEDGER_SECRETS_FILE": (
        "secrets_file",
        "",
        "TOML file with master_keys, blind_index_key, link_keys and receipt_keys"
        " (the variables below win)",
    ),
    "LEDGER_MASTER_KEYS": (
        "master_keys",
        "",
        "key ring `kid:base64url,...` wrapping the per-subject data keys; first is current",
    ),
    "LEDGER_BLIND_INDEX_KEY": (
        "blind_index_key",
        "",
        "base64url HMAC key of the e-mail/phone blind index (cannot rotate without re-linking)",
    ),
    "LEDGER_LINK_KEYS": (
        "link_keys",
        "",
        "key ring `kid:base64url,...` sealing unsubscribe and preference links",
    ),
    "LEDGER_RECEIPT_KEYS": (
        "receipt_keys",
        "",
        "key ring `kid:base64url,...` of Ed25519 private seeds signing consent receipts",
    ),
    "LEDGER_JURISDICTION": (
        "jurisdiction",
        "FI",
        "country whose law governs the processing (ISO 3166-1 alpha-2), named in receipts",
    ),
    "LEDGER_CONTROLLER_CONTACT": (
        "controller_contact",
        "",
        "the controller's privacy contact (e-mail address or URL) named in consent receipts",
    ),
    "LEDGER_LOG_LEVEL": ("log_level", "info", "log level of every process"),
}

#: the smallest and largest value a whole-number setting may take
_RANGES: Final[dict[str, tuple[int, int]]] = {
    "LEDGER_PORT": (1, 65535),
    "LEDGER_TOPIC_PARTITIONS": (1, 10000),
    "LEDGER_TOPIC_REPLICATION": (1, 32),
    "LEDGER_TOPIC_MIN_INSYNC_REPLICAS": (1, 32),
    "LEDGER_PRODUCE_TIMEOUT_MS": (100, 600_000),
    "LEDGER_READ_WAIT_MS": (0, 600_000),
    "LEDGER_KAFKA_SESSION_TIMEOUT_MS": (1000, 600_000),
    "LEDGER_PROJECTOR_BATCH": (1, 100_000),
    "LEDGER_PROJECTOR_FETCH_WAIT_MS": (1, 10_000),
    "LEDGER_CHECKPOINT_INTERVAL_S": (1, 86_400),
    "LEDGER_LINK_TTL_DAYS": (1, 3650),
}
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
    kafka_bootstrap_servers: str
    database_url: str
    topic: str
    state_topic: str
    checks_topic: str
    checkpoints_topic: str
    checkpoint_interval_s: int
    topic_partitions: int
    topic_replication: int
    topic_min_insync_replicas: int
    topic_check: str
    kafka_idempotence: bool
    produce_timeout_ms: int
    read_wait_ms: int
    projector_group: str
    kafka_session_timeout_ms: int
    projector_batch: int
    projector_fetch_wait_ms: int
    catalogue_path: str
    public_url: str
    link_ttl_days: int
    controller_name: str
    jurisdiction: str
    controller_contact: str
    data_dir: str
    log_level: str
    secrets_file: str
    master_keys: str = field(repr=False)
    blind_index_key: str = field(repr=False)
    link_keys: str = field(repr=False)
    receipt_keys: str = field(repr=False)

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
        if self.public_url:
            _check_public_url(self.public_url)
        if not self.controller_name.strip():
            raise SettingsError("LEDGER_CONTROLLER_NAME must not be empty")
        if not re.fullmatch(r"[A-Z]{2}", self.jurisdiction):
            raise SettingsError(
                f"LEDGER_JURISDICTION={self.jurisdiction!r}; an ISO 3166-1 alpha-2 code such as FI"
            )
        if len(self.controller_contact) > 200:
            raise SettingsError("LEDGER_CONTROLLER_CONTACT must be at most 200 characters")

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

    @property
    def public_base_url(self) -> str:
        """Where people reach /u/ and /p/, without a trailing slash: LEDGER_PUBLIC_URL, or
        when that is empty the API's own address (for local use)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def catalogue_file(self) -> Path:
        if self.catalogue_path:
            return Path(self.catalogue_path)
        return Path(__file__).with_name("purposes.toml")

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
        low, high = _RANGES.get(var, (0, 2**31))
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
