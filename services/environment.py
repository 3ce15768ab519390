"""Every environment variable the ledger reads: its Settings attribute, its default and what it
does, and the range of each whole-number one. services/config.py turns them into Settings; the
settings table of docs/operators/settings.md and the docker-compose check are tested against
this table.
"""

from __future__ import annotations

from typing import Final

#: variable name -> (Settings attribute, default as text, what it does)
ENVIRONMENT: Final[dict[str, tuple[str, str, str]]] = {
    "LEDGER_HOST": ("host", "127.0.0.1", "address the HTTP API binds to"),
    "LEDGER_PORT": ("port", "8000", "port of the HTTP API"),
    "LEDGER_PUBLIC_PORT": (
        "public_port",
        "0",
        "port of a second listener of the same API that serves only the unsubscribe and"
        " preference pages (`/u/`, `/p/`) and `/healthz`, for the internet; 0 is none",
    ),
    "LEDGER_PUBLIC_HOST": (
        "public_host",
        "127.0.0.1",
        "address the public-pages listener (LEDGER_PUBLIC_PORT) binds to",
    ),
    "KAFKA_BOOTSTRAP_SERVERS": (
        "kafka_bootstrap_servers",
        "",
        "Kafka brokers; empty makes `up` start the embedded broker",
    ),
    "KAFKA_SECURITY_PROTOCOL": (
        "kafka_security_protocol",
        "PLAINTEXT",
        "how every Kafka client connects: `PLAINTEXT`, `SSL` (TLS), `SASL_PLAINTEXT` or"
        " `SASL_SSL` (SASL over TLS, for production)",
    ),
    "KAFKA_SASL_MECHANISM": (
        "kafka_sasl_mechanism",
        "",
        "with a SASL protocol: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`",
    ),
    "KAFKA_SASL_USERNAME": (
        "kafka_sasl_username",
        "",
        "with a SASL protocol: this process's Kafka principal (each process its own, for ACLs)",
    ),
    "KAFKA_SASL_PASSWORD": (
        "kafka_sasl_password",
        "",
        "with a SASL protocol: the principal's password (or use KAFKA_SASL_PASSWORD_FILE)",
    ),
    "KAFKA_SASL_PASSWORD_FILE": (
        "kafka_sasl_password_file",
        "",
        "file holding the principal's password (a Docker or Kubernetes secret), read when a"
        " client is made; instead of KAFKA_SASL_PASSWORD",
    ),
    "KAFKA_SSL_CA_FILE": (
        "kafka_ssl_ca_file",
        "",
        "with SSL or SASL_SSL: PEM file of the CA that signed the brokers' certificates; empty"
        " trusts the system's CAs",
    ),
    "KAFKA_SSL_CERT_FILE": (
        "kafka_ssl_cert_file",
        "",
        "with SSL or SASL_SSL: PEM client certificate, for brokers that require mutual TLS",
    ),
    "KAFKA_SSL_KEY_FILE": (
        "kafka_ssl_key_file",
        "",
        "PEM private key of KAFKA_SSL_CERT_FILE; empty when the certificate file holds it",
    ),
    "KAFKA_SSL_KEY_PASSWORD": (
        "kafka_ssl_key_password",
        "",
        "password of an encrypted KAFKA_SSL_KEY_FILE",
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
    "LEDGER_DEAD_LETTER_TOPIC": (
        "dead_letter_topic",
        "consent.deadletter",
        "topic the projector publishes undecodable event records to, with their source position"
        " and error in headers, 1 partition",
    ),
    "LEDGER_DEAD_LETTER_RETENTION_DAYS": (
        "dead_letter_retention_days",
        "30",
        "days an undecodable record is kept as a dead letter: `retention` purges older ones from"
        " PostgreSQL, and the dead-letter topic is created with this retention.ms",
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
    "LEDGER_API_CONCURRENCY_LIMIT": (
        "api_concurrency_limit",
        "1000",
        "most connections and requests one API process takes at once (uvicorn's"
        " limit-concurrency); past it, new requests get a plain-text 503",
    ),
    "LEDGER_DB_ACQUIRE_TIMEOUT_MS": (
        "db_acquire_timeout_ms",
        "5000",
        "how long an API request waits for a free PostgreSQL connection before answering 503",
    ),
    "LEDGER_DB_STATEMENT_TIMEOUT_MS": (
        "db_statement_timeout_ms",
        "30000",
        "PostgreSQL's statement_timeout on the API's connections: a longer statement is"
        " cancelled and answered 503; 0 is no limit",
    ),
    "LEDGER_AUDIENCE_MAX_STREAMS": (
        "audience_max_streams",
        "2",
        "audience streams (GET /v1/audiences) one API process serves at once, each holding one"
        " PostgreSQL connection of the API's 10 for its snapshot; past it, 503 with Retry-After",
    ),
    "LEDGER_AUDIENCE_DEADLINE_S": (
        "audience_deadline_s",
        "900",
        "seconds an audience stream may take in all, from its snapshot to its last row; also"
        " the statement_timeout of its cursor's reads. Past it the stream is cut (no end line)",
    ),
    "LEDGER_AUDIENCE_IDLE_S": (
        "audience_idle_s",
        "30",
        "seconds an audience stream waits for a client that stopped reading to take the next"
        " chunk; past it the stream is cut (no end line) and its connection freed",
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
    "LEDGER_MAX_STALENESS_MS": (
        "max_staleness_ms",
        "30000",
        "how far the projection may be behind the log before decisions answer 503 and /readyz"
        " fails; 0 turns the time limit off (a loss-detection stop still fails decisions)",
    ),
    "LEDGER_WEBHOOK_GROUP": (
        "webhook_group",
        "consent-ledger-webhooks",
        "consumer group of the webhook dispatcher (its positions are kept in PostgreSQL; the"
        " group only shares the partitions among dispatchers)",
    ),
    "LEDGER_WEBHOOK_TIMEOUT_S": (
        "webhook_timeout_s",
        "10",
        "seconds a webhook delivery may take, from connecting to the receiver's answer; longer"
        " is a failed attempt (retried)",
    ),
    "LEDGER_WEBHOOK_RETRY_HOURS": (
        "webhook_retry_hours",
        "24",
        "hours a failing webhook delivery is retried (1 s, 5 s, 30 s, then growing to hourly,"
        " with jitter) before it is parked and its subscription marked failing",
    ),
    "LEDGER_WEBHOOK_CONCURRENCY": (
        "webhook_concurrency",
        "4",
        "deliveries the dispatcher sends at once to one subscription (each to another subject)",
    ),
    "LEDGER_WEBHOOK_DELIVERY_RETENTION_DAYS": (
        "webhook_delivery_retention_days",
        "30",
        "days a succeeded webhook delivery and its attempts are kept for"
        " GET /v1/webhooks/{id}/deliveries (parked ones: LEDGER_WEBHOOK_PARKED_RETENTION_DAYS)",
    ),
    "LEDGER_WEBHOOK_PARKED_RETENTION_DAYS": (
        "webhook_parked_retention_days",
        "30",
        "days a parked webhook delivery (its event's fields, the subject id) is kept after its"
        " last attempt for an operator to redeliver; then it is deleted",
    ),
    "LEDGER_CATALOGUE": (
        "catalogue_path",
        "",
        "purpose catalogue (TOML); empty uses the bundled services/rules/purposes.toml",
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
        "how long an unsubscribe link stays valid",
    ),
    "LEDGER_PREFERENCE_LINK_TTL_DAYS": (
        "preference_link_ttl_days",
        "90",
        "how long a preference link stays valid (it can grant consent); also caps links"
        " issued before, by their issue time",
    ),
    "LEDGER_SIGNUP_CONFIRMATION_DAYS": (
        "signup_confirmation_days",
        "7",
        "how long a sign-up's confirmation link works and the sign-up counts as pending"
        " (double opt-in); after it the decision is what it was before",
    ),
    "LEDGER_CONTROLLER_NAME": (
        "controller_name",
        "Example Controller",
        "the controller's name shown on the unsubscribe and preference pages",
    ),
    "LEDGER_DEFAULT_LANGUAGE": (
        "default_language",
        "en",
        "the language of the public pages (fi, sv or en) when neither the link nor the browser's"
        " Accept-Language names one of them",
    ),
    "LEDGER_DATA_DIR": (
        "data_dir",
        ".ledger",
        "where `up` keeps the embedded PostgreSQL data and its generated secrets file",
    ),
    "LEDGER_SECRETS_FILE": (
        "secrets_file",
        "",
        "TOML file with master_keys, blind_index_key, link_keys, receipt_keys, writer_keys and"
        " api_key_hash_key (the variables below win)",
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
    "LEDGER_WRITER_KEYS": (
        "writer_keys",
        "",
        "key ring `kid:base64url,...` of HMAC-SHA-256 keys MACing every record the ledger"
        " writes to Kafka",
    ),
    "LEDGER_API_KEY_HASH_KEY": (
        "api_key_hash_key",
        "",
        "base64url HMAC-SHA-256 key that API key hashes are computed under",
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
    "LEDGER_DPO_CONTACT": (
        "dpo_contact",
        "",
        "the data protection officer's contact (e-mail address or URL) named in the record of"
        " processing activities; empty when none is designated",
    ),
    "LEDGER_DATA_SUBJECTS": (
        "data_subjects",
        "customers, prospects and their representatives (business contacts)",
        "the categories of data subjects named in the record of processing activities",
    ),
    "LEDGER_JOINT_CONTROLLERS": (
        "joint_controllers",
        "",
        "the joint controllers' names and contacts, `;` between them, named in the record of"
        " processing activities (Art. 26); empty when there are none",
    ),
    "LEDGER_EU_REPRESENTATIVE": (
        "eu_representative",
        "",
        "the name and contact of the controller's representative in the EU (Art. 27, for a"
        " controller established outside it), named in the record of processing activities",
    ),
    "LEDGER_ADMIN_KEY": (
        "admin_key",
        "",
        "API key registered with the admin scope when the API starts (at least 256 random"
        " bits, e.g. `cl_ops_` and 64 hex digits); `up` makes one in LEDGER_DATA_DIR/admin.key"
        " when this is empty",
    ),
    "LEDGER_API_KEY_REFRESH_S": (
        "api_key_refresh_s",
        "10",
        "most seconds a revoked API key keeps working (keys are reloaded at least twice as often)",
    ),
    "LEDGER_METRICS_PUBLIC": (
        "metrics_public",
        "false",
        "serve /metrics without an API key (else it needs the admin scope)",
    ),
    "LEDGER_PUBLIC_RATE_PER_MIN": (
        "public_rate_per_min",
        "300",
        "requests per minute one client address (an IPv6 /64) may make to the /u/ and /p/"
        " pages, one-click unsubscribes excepted; 0 is no limit",
    ),
    "LEDGER_PREFERENCE_SAVES_PER_MIN": (
        "preference_saves_per_min",
        "5",
        "preference-page saves (POST /p/) per minute for one subject; 0 is no limit",
    ),
    "LEDGER_COLLECT_RATE_PER_SITE_PER_MIN": (
        "collect_rate_per_site_per_min",
        "600",
        "requests per minute one website's key may make to /v1/collect/consents (its visitors'"
        " banners together); 0 is no limit",
    ),
    "LEDGER_COLLECT_RATE_PER_ADDRESS_PER_MIN": (
        "collect_rate_per_address_per_min",
        "30",
        "requests per minute one client address (an IPv6 /64) may make to /v1/collect/consents;"
        " 0 is no limit",
    ),
    "LEDGER_COLLECT_REPEAT_WINDOW_S": (
        "collect_repeat_window_s",
        "120",
        "seconds within which a banner's repeated request (same site, device, body, notice"
        " version and GPC signal) records nothing new",
    ),
    "LEDGER_FAILED_KEY_RATE_PER_MIN": (
        "failed_key_rate_per_min",
        "30",
        "refused API keys per minute one client address may send before it gets 429 for every"
        " key but a generated one (256 random bits); 0 is no limit",
    ),
    "LEDGER_STAFF_SESSION_IDLE_MIN": (
        "staff_session_idle_min",
        "30",
        "minutes without a request after which a staff session of the auditor's pages ends",
    ),
    "LEDGER_STAFF_SESSION_MAX_H": (
        "staff_session_max_h",
        "8",
        "hours after sign-in at which a staff session ends however active it is",
    ),
    "LEDGER_STAFF_SIGN_IN_RATE_PER_MIN": (
        "staff_sign_in_rate_per_min",
        "10",
        "sign-in attempts per minute one client address (an IPv6 /64) may make on the"
        " auditor's pages, right or wrong (those posted from the sign-in form itself); 0 is no"
        " limit",
    ),
    "LEDGER_STAFF_SESSION_RETENTION_DAYS": (
        "staff_session_retention_days",
        "90",
        "days a staff session's row (its key id and the address that signed in) is kept after"
        " it ended: `retention` deletes older ones",
    ),
    "LEDGER_FORWARDED_ALLOW_IPS": (
        "forwarded_allow_ips",
        "127.0.0.1,::1",
        "proxies trusted to name the client in X-Forwarded-For and the scheme in"
        " X-Forwarded-Proto (uvicorn's forwarded-allow-ips): staff behind a TLS proxy need it",
    ),
    "LEDGER_WEBHOOK_ALLOW_LOOPBACK": (
        "webhook_allow_loopback",
        "false",
        "webhook URLs may name a loopback host (localhost, 127.0.0.0/8, ::1), over plain http"
        " too, for trying webhooks out on one machine; `make up` turns it on",
    ),
    "LEDGER_WEBHOOK_ALLOW_PRIVATE": (
        "webhook_allow_private",
        "false",
        "webhooks may be delivered to private addresses (10.0.0.0/8, 172.16.0.0/12,"
        " 192.168.0.0/16, fc00::/7), for receivers inside the operator's own network",
    ),
    "LEDGER_LOG_LEVEL": ("log_level", "info", "log level of every process"),
    "LEDGER_LOG_FORMAT": (
        "log_format",
        "json",
        "`json`: one JSON object per log line; `text`: plain lines for reading at a terminal",
    ),
}

#: the smallest and largest value a whole-number setting may take
WHOLE_NUMBER_RANGES: Final[dict[str, tuple[int, int]]] = {
    "LEDGER_PORT": (1, 65535),
    "LEDGER_PUBLIC_PORT": (0, 65535),
    "LEDGER_TOPIC_PARTITIONS": (1, 10000),
    "LEDGER_TOPIC_REPLICATION": (1, 32),
    "LEDGER_TOPIC_MIN_INSYNC_REPLICAS": (1, 32),
    "LEDGER_PRODUCE_TIMEOUT_MS": (100, 600_000),
    "LEDGER_READ_WAIT_MS": (0, 600_000),
    "LEDGER_API_CONCURRENCY_LIMIT": (1, 1_000_000),
    "LEDGER_DB_ACQUIRE_TIMEOUT_MS": (1, 600_000),
    "LEDGER_DB_STATEMENT_TIMEOUT_MS": (0, 86_400_000),
    "LEDGER_AUDIENCE_MAX_STREAMS": (1, 8),
    "LEDGER_AUDIENCE_DEADLINE_S": (1, 86_400),
    "LEDGER_AUDIENCE_IDLE_S": (1, 3600),
    "LEDGER_KAFKA_SESSION_TIMEOUT_MS": (1000, 600_000),
    "LEDGER_PROJECTOR_BATCH": (1, 100_000),
    "LEDGER_PROJECTOR_FETCH_WAIT_MS": (1, 10_000),
    "LEDGER_CHECKPOINT_INTERVAL_S": (1, 86_400),
    "LEDGER_MAX_STALENESS_MS": (0, 86_400_000),
    "LEDGER_WEBHOOK_TIMEOUT_S": (1, 300),
    "LEDGER_WEBHOOK_RETRY_HOURS": (1, 720),
    "LEDGER_WEBHOOK_CONCURRENCY": (1, 100),
    "LEDGER_WEBHOOK_DELIVERY_RETENTION_DAYS": (1, 3650),
    "LEDGER_WEBHOOK_PARKED_RETENTION_DAYS": (1, 3650),
    "LEDGER_LINK_TTL_DAYS": (1, 3650),
    "LEDGER_PREFERENCE_LINK_TTL_DAYS": (1, 365),
    "LEDGER_SIGNUP_CONFIRMATION_DAYS": (1, 90),
    "LEDGER_DEAD_LETTER_RETENTION_DAYS": (1, 3650),
    "LEDGER_API_KEY_REFRESH_S": (1, 3600),
    "LEDGER_PUBLIC_RATE_PER_MIN": (0, 1_000_000),
    "LEDGER_FAILED_KEY_RATE_PER_MIN": (0, 1_000_000),
    "LEDGER_STAFF_SESSION_IDLE_MIN": (1, 1440),
    "LEDGER_STAFF_SESSION_MAX_H": (1, 168),
    "LEDGER_STAFF_SIGN_IN_RATE_PER_MIN": (0, 10_000),
    "LEDGER_STAFF_SESSION_RETENTION_DAYS": (1, 3650),
    "LEDGER_COLLECT_RATE_PER_SITE_PER_MIN": (0, 1_000_000),
    "LEDGER_COLLECT_RATE_PER_ADDRESS_PER_MIN": (0, 1_000_000),
    "LEDGER_COLLECT_REPEAT_WINDOW_S": (1, 86_400),
    "LEDGER_PREFERENCE_SAVES_PER_MIN": (0, 1000),
}
