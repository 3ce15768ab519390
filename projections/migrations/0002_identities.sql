-- Contact identities: per-subject data keys (crypto-shredding) and the identifier projection.

-- One AES key per subject, wrapped by a master key kept outside the database. Deleting a row
-- makes every copy of the subject's identifiers (log, journal, backups) undecryptable.
CREATE TABLE subject_keys (
    subject_id    text PRIMARY KEY,
    master_key_id text NOT NULL,
    wrapped_key   bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Which subject an identifier belongs to, found by blind index; the value only as ciphertext.
CREATE TABLE identifiers (
    identifier_type text NOT NULL,
    blind_index     bytea NOT NULL,
    subject_id      text NOT NULL,
    linked          boolean NOT NULL,
    ciphertext      bytea,
    event_id        uuid NOT NULL,
    log_partition   integer NOT NULL,
    log_offset      bigint NOT NULL,
    recorded_at     timestamptz NOT NULL,
    PRIMARY KEY (identifier_type, blind_index, subject_id)
);
CREATE INDEX identifiers_by_subject ON identifiers (subject_id);
