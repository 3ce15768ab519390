-- The journal: every event once (first occurrence in the log wins), with its log position.
CREATE TABLE journal (
    event_id      uuid PRIMARY KEY,
    subject_id    text        NOT NULL,
    event_type    text        NOT NULL,
    log_partition integer     NOT NULL,
    log_offset    bigint      NOT NULL,
    occurred_at   timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL,
    -- json, not jsonb: kept as written, in the schema's field order, for history answers
    payload       json        NOT NULL,
    record_value  bytea       NOT NULL
);
CREATE INDEX journal_by_subject ON journal (subject_id, log_partition, log_offset);
CREATE INDEX journal_by_position ON journal (log_partition, log_offset);

-- Current state: per subject and scope, the latest consent / objection / restriction /
-- relationship event (see projections/state.py). One indexed read answers a decision.
CREATE TABLE subject_facts (
    subject_id    text        NOT NULL,
    kind          text        NOT NULL,
    scope_a       text        NOT NULL,
    scope_b       text        NOT NULL,
    event_type    text        NOT NULL,
    event_id      uuid        NOT NULL,
    log_partition integer     NOT NULL,
    log_offset    bigint      NOT NULL,
    occurred_at   timestamptz NOT NULL,
    until         timestamptz,
    outcome       text,
    PRIMARY KEY (subject_id, kind, scope_a, scope_b)
);

-- The projector's position: the next offset to read per partition, written in the same
-- transaction as the rows it produced.
CREATE TABLE projector_offsets (
    topic         text        NOT NULL,
    log_partition integer     NOT NULL,
    next_offset   bigint      NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, log_partition)
);

-- Records the projector could not decode: kept with their bytes, never silently dropped.
CREATE TABLE rejected_records (
    topic         text        NOT NULL,
    log_partition integer     NOT NULL,
    log_offset    bigint      NOT NULL,
    error         text        NOT NULL,
    record_key    bytea,
    record_value  bytea,
    rejected_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, log_partition, log_offset)
);

-- Idempotency keys of commands: the request digest and the exact records sent, so a retry
-- re-sends identical bytes (same event ids) instead of inventing new events.
CREATE TABLE idempotency_keys (
    idempotency_key text        PRIMARY KEY,
    request_digest  bytea       NOT NULL,
    event_ids       uuid[]      NOT NULL,
    record_values   bytea[]     NOT NULL,
    subject_id      text        NOT NULL,
    -- partition and offset of each record once the broker acknowledged it
    ack_partitions  integer[],
    ack_offsets     bigint[],
    created_at      timestamptz NOT NULL DEFAULT now()
);
