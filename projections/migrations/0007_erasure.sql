-- Erasure by crypto-shredding (projections/erasure.py) and the proof-retention purge
-- (services/retention.py).

-- A shredded data key leaves a tombstone: the row stays, the key is gone. The subject id stays
-- unique, so a key can never be created again for an erased subject, even by a request that
-- races the erasure (its insert conflicts with the tombstone, or the erasure overwrites it).
ALTER TABLE subject_keys
    ALTER COLUMN master_key_id DROP NOT NULL,
    ALTER COLUMN wrapped_key DROP NOT NULL,
    ADD COLUMN shredded_at timestamptz,
    ADD CONSTRAINT subject_keys_key_or_tombstone CHECK (
        (wrapped_key IS NULL) = (shredded_at IS NOT NULL)
        AND (master_key_id IS NULL) = (wrapped_key IS NULL)
    );

-- Address-level suppression entries: an identifier an erased subject held. They outlive the
-- subject (and its proof period), so an unsubscribe or objection still holds if the address
-- comes back: a subject that links it again is denied direct marketing (`suppressed`), an
-- import skips it, GET /v1/suppressions lists it. The blind index only, never the address.
CREATE TABLE suppressed_identifiers (
    identifier_type text        NOT NULL,
    blind_index     bytea       NOT NULL,
    reason          text        NOT NULL,
    since           timestamptz NOT NULL,
    -- the event that suppressed it (the SubjectErased)
    event_id        uuid        NOT NULL,
    PRIMARY KEY (identifier_type, blind_index)
);

-- One row per erased subject, from its first SubjectErased: the record of the erasure that
-- stays after the retention job purged the subject's proof (purged_* columns).
CREATE TABLE erasures (
    subject_id    text        PRIMARY KEY,
    event_id      uuid        NOT NULL,
    ground        text        NOT NULL,
    request_id    uuid,
    erased_at     timestamptz NOT NULL,
    -- identifiers that went to suppressed_identifiers
    suppressed    integer     NOT NULL,
    purged_at     timestamptz,
    purged_events integer,
    -- the subject's hash-chain head when its journal entries were purged
    chain_head    bytea
);
CREATE INDEX erasures_by_date ON erasures (erased_at);
