-- The state feed's outbox: subjects whose events the projector applied and whose current
-- state has not been published to the compacted state topic since. Written in the batch's
-- transaction, so no applied change can be missed by the feed (services/state_feed.py).
-- One row per subject: `changes` counts the batches that touched it, so the feed deletes a row
-- only if no batch touched the subject after the feed read it.
CREATE TABLE state_feed_outbox (
    subject_id    text        PRIMARY KEY,
    -- the subject's partition and the highest offset of its events queued so far
    log_partition integer     NOT NULL,
    log_offset    bigint      NOT NULL,
    changes       bigint      NOT NULL DEFAULT 1,
    queued_at     timestamptz NOT NULL DEFAULT now(),
    -- a feed publisher working on the row; another takes it over after this time
    claimed_until timestamptz
);
CREATE INDEX state_feed_outbox_by_age ON state_feed_outbox (queued_at);
