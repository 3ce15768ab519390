-- Operational state of the projector: how it is doing, not what the log says. None of these
-- tables is a projection: a clean replay may leave them different, and nothing that decides
-- reads them except the staleness guard and /readyz.

-- Per partition, as the projector owning it last reported (about once a second): its position
-- (the next offset it will apply), the log's high-water mark from its latest fetch, and the
-- latest instant at which the projection held every record the partition's log held then.
-- Times are the database's clock, so the API and the projector never compare two clocks.
CREATE TABLE projector_partitions (
    topic         text        NOT NULL,
    log_partition integer     NOT NULL,
    position      bigint      NOT NULL,
    highwater     bigint,
    caught_up_at  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, log_partition)
);

-- The log lost records the projection needs (loss detection, projections/log_loss.py): every
-- projector stops applying while a row exists for its topic. Only an operator removes rows
-- (`consent-ledger resume-projector`); the projector never clears them itself.
CREATE TABLE projector_stops (
    topic         text        NOT NULL,
    log_partition integer     NOT NULL,
    problem       text        NOT NULL CHECK (problem IN ('ahead_of_log', 'before_log_start')),
    stored_offset bigint      NOT NULL,
    log_start     bigint,
    highwater     bigint,
    detected_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, log_partition)
);

-- Undecodable records to publish on the dead-letter topic: queued in the batch transaction that
-- keeps them in rejected_records, marked published after the broker's acknowledgement. The
-- bytes are copied, so the row stands on its own; published rows stay, naming where they went.
CREATE TABLE dead_letter_outbox (
    topic                 text        NOT NULL,
    log_partition         integer     NOT NULL,
    log_offset            bigint      NOT NULL,
    error                 text        NOT NULL,
    record_key            bytea,
    record_value          bytea,
    queued_at             timestamptz NOT NULL DEFAULT now(),
    -- a publisher working on the row; another takes it over after this time
    claimed_until         timestamptz,
    published_at          timestamptz,
    dead_letter_partition integer,
    dead_letter_offset    bigint,
    PRIMARY KEY (topic, log_partition, log_offset)
);
CREATE INDEX dead_letter_outbox_unpublished ON dead_letter_outbox (queued_at)
    WHERE published_at IS NULL;

-- Records rejected before this migration are published too.
INSERT INTO dead_letter_outbox (topic, log_partition, log_offset, error, record_key, record_value)
SELECT topic, log_partition, log_offset, error, record_key, record_value FROM rejected_records
ON CONFLICT DO NOTHING;
