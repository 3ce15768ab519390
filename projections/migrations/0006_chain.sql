-- Tamper-evident history: the subject hash chain on the journal, and the running digests the
-- projector publishes as checkpoints (definitions in projections/hash_chain.py and the README).

-- h_n = SHA-256(h_{n-1} || u64be(length) || record_value), h_0 = 32 zero bytes, over each
-- subject's entries in log order. Rows journaled before this migration are chained here, from
-- their stored bytes: their hashes attest the history from now on, not before.
ALTER TABLE journal ADD COLUMN chain_hash bytea;
DO $$
DECLARE
    entry record;
    previous bytea;
    current_subject text;
BEGIN
    FOR entry IN
        SELECT event_id, subject_id, record_value FROM journal
        ORDER BY subject_id, log_partition, log_offset
    LOOP
        IF current_subject IS DISTINCT FROM entry.subject_id THEN
            previous := decode(repeat('00', 32), 'hex');
            current_subject := entry.subject_id;
        END IF;
        previous := sha256(
            previous || int8send(octet_length(entry.record_value)::bigint) || entry.record_value
        );
        UPDATE journal SET chain_hash = previous WHERE event_id = entry.event_id;
    END LOOP;
END
$$;
ALTER TABLE journal ALTER COLUMN chain_hash SET NOT NULL;
ALTER TABLE journal ADD CONSTRAINT journal_chain_hash_length CHECK (octet_length(chain_hash) = 32);

-- Per partition of the event topic, the range the next checkpoint will cover: from_offset up to
-- next_offset (exclusive), its record count, the digest the range continues from and the
-- running digest so far. Updated in each batch's transaction, so a crash never leaves a digest
-- that a clean replay would not produce. The row is also the partition's lock: a projector
-- takes it first in every batch, so two projectors never apply one partition at once.
CREATE TABLE checkpoint_state (
    topic           text        NOT NULL,
    log_partition   integer     NOT NULL,
    from_offset     bigint      NOT NULL,
    next_offset     bigint      NOT NULL,
    record_count    bigint      NOT NULL DEFAULT 0,
    previous_digest bytea       NOT NULL,
    digest          bytea       NOT NULL,
    -- when the open range got its first record; a checkpoint is due an interval after
    opened_at       timestamptz,
    PRIMARY KEY (topic, log_partition)
);
-- An existing ledger's checkpoints start where its projector stands.
INSERT INTO checkpoint_state (topic, log_partition, from_offset, next_offset, previous_digest,
                              digest)
SELECT topic, log_partition, next_offset, next_offset, decode(repeat('00', 32), 'hex'),
       decode(repeat('00', 32), 'hex')
FROM projector_offsets;

-- Checkpoints cut but not yet acknowledged by the checkpoint topic (services/checkpointer.py).
CREATE TABLE checkpoint_outbox (
    id              bigserial   PRIMARY KEY,
    topic           text        NOT NULL,
    log_partition   integer     NOT NULL,
    from_offset     bigint      NOT NULL,
    to_offset       bigint      NOT NULL,
    record_count    bigint      NOT NULL,
    previous_digest bytea       NOT NULL,
    digest          bytea       NOT NULL,
    created_at      timestamptz NOT NULL
);

-- Records the projector skipped as a second occurrence of a journaled event: with the journal
-- and rejected_records they make up every record of the log, so a checkpoint can be
-- recomputed from the database as well as from the topic.
CREATE TABLE duplicate_records (
    topic         text    NOT NULL,
    log_partition integer NOT NULL,
    log_offset    bigint  NOT NULL,
    event_id      uuid    NOT NULL,
    record_value  bytea   NOT NULL,
    PRIMARY KEY (topic, log_partition, log_offset)
);
