-- The purpose catalogue's versions (PurposeDefined and PurposeRetired events, keyed
-- purpose/<id>): one row per purpose and version, the first event of that version in log order
-- (projections/purposes.py). The table only grows, so its row count tells a reader that kept
-- the catalogue in memory whether it changed.
CREATE TABLE purpose_versions (
    purpose_id    text        NOT NULL,
    version       integer     NOT NULL,
    retired       boolean     NOT NULL,
    in_force_from timestamptz NOT NULL,
    -- the event's fields after the envelope, in_force_from aside (text, numbers, lists)
    data          jsonb       NOT NULL,
    event_id      uuid        NOT NULL,
    actor_type    text        NOT NULL,
    actor_id      text,
    log_partition integer     NOT NULL,
    log_offset    bigint      NOT NULL,
    recorded_at   timestamptz NOT NULL,
    PRIMARY KEY (purpose_id, version)
);
