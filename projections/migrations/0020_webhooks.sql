-- Webhooks: subscriptions of downstream systems (mail tools, CRMs) to events of the log, and
-- the dispatcher's bookkeeping of what it has to deliver to each of them. Not folded from the
-- log: subscriptions are an operator's configuration (like api_keys and sites), deliveries the
-- dispatcher's own progress. Design: docs/developers/design/webhooks.md

CREATE TABLE webhook_subscriptions (
    id                  uuid        PRIMARY KEY,
    url                 text        NOT NULL,
    -- event types of schemas/events.py the subscription receives
    event_types         text[]      NOT NULL CHECK (cardinality(event_types) > 0),
    description         text,
    -- deliveries carry the subject's linked e-mail addresses and phone numbers, decrypted
    include_identifiers boolean     NOT NULL DEFAULT false,
    enabled             boolean     NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    -- the API key that created it (api_keys.key_id), for the access log's story
    created_by          text,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- set when a delivery is parked; cleared by the next success
    failing_since       timestamptz,
    last_success_at     timestamptz
);

-- The signing secrets, sealed (AES-GCM) by the current master key, like subject_keys: the
-- dispatcher must sign, so only a hash would not do. A rotation adds a secret and gives the
-- previous one a retires_at; both sign until then.
CREATE TABLE webhook_secrets (
    subscription_id uuid        NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    master_key_id   text        NOT NULL,
    sealed_secret   bytea       NOT NULL,
    retires_at      timestamptz,
    PRIMARY KEY (subscription_id, created_at)
);

-- One row per (subscription, event): what to send, and where its delivery stands.
-- status: pending (waiting for its first attempt or a retry), succeeded, parked (retried for
-- the whole retry window, or its subscription deleted while it waited).
CREATE TABLE webhook_deliveries (
    id              uuid        PRIMARY KEY,
    subscription_id uuid        NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    subject_id      text        NOT NULL,
    log_partition   integer     NOT NULL,
    log_offset      bigint      NOT NULL,
    -- {type, event_id, subject_id, occurred_at, recorded_at, data} without identifiers: the
    -- event's own fields, whose personal values are sealed under the subject's key as in the log
    payload         jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'succeeded', 'parked')),
    attempts        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz,
    last_attempt_at timestamptz,
    UNIQUE (subscription_id, event_id)
);
-- the next delivery of each subject of a subscription (log order per subject)
CREATE INDEX webhook_deliveries_pending
    ON webhook_deliveries (subscription_id, subject_id, log_partition, log_offset)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_listing
    ON webhook_deliveries (subscription_id, status, created_at);

-- Every attempt: what GET /v1/webhooks/{id}/deliveries shows.
CREATE TABLE webhook_attempts (
    delivery_id   uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt       integer     NOT NULL,
    started_at    timestamptz NOT NULL,
    duration_ms   integer     NOT NULL,
    -- the receiver's HTTP status; NULL when there was none (timeout, refused connection)
    response_code integer,
    -- succeeded, failed, timeout, refused (connection refused, or an address not allowed)
    outcome       text        NOT NULL,
    error         text,
    PRIMARY KEY (delivery_id, attempt)
);

-- The dispatcher's progress on the event topic: the next offset to read per partition,
-- written in the transaction that records the deliveries of the records before it.
CREATE TABLE webhook_dispatch_offsets (
    log_partition integer PRIMARY KEY,
    next_offset   bigint  NOT NULL
);

-- Delivery outcomes counted per subscription (ledger_webhook_deliveries_total), in the
-- transaction that records each attempt, so each counts once.
CREATE TABLE webhook_outcome_counts (
    subscription_id uuid   NOT NULL,
    outcome         text   NOT NULL,
    count           bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (subscription_id, outcome)
);

-- The identifiers an erased subject held, captured by the erasure before its data key is
-- destroyed, for the SubjectErased deliveries of subscriptions with include_identifiers
-- (Art. 19 GDPR). Sealed under a key of its own wrapped by the master key; the row is deleted
-- once every such delivery has succeeded or been parked.
CREATE TABLE webhook_erasure_identifiers (
    event_id        uuid        PRIMARY KEY,
    subject_id      text        NOT NULL,
    master_key_id   text        NOT NULL,
    wrapped_key     bytea       NOT NULL,
    sealed          bytea       NOT NULL,
    captured_at     timestamptz NOT NULL DEFAULT now()
);
