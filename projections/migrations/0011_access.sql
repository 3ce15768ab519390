-- API keys (services/api_key_store.py): one row per key, never deleted (a revoked key keeps its
-- row, so the access log can still name it). Only SHA-256 of the key is stored; the key itself
-- is shown once, when `consent-ledger keys create` makes it.
CREATE TABLE api_keys (
    key_id      text        PRIMARY KEY,
    name        text        NOT NULL,
    -- decide, record, audit, admin (admin implies the others)
    scopes      text[]      NOT NULL
        CHECK (cardinality(scopes) > 0
               AND scopes <@ ARRAY['decide', 'record', 'audit', 'admin']::text[]),
    key_hash    bytea       NOT NULL CHECK (length(key_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- Reads of a subject's data (services/api/access_log.py): who (the key's id and name), when,
-- which subject and which route. Written before the data is returned.
CREATE TABLE access_log (
    id          bigserial   PRIMARY KEY,
    read_at     timestamptz NOT NULL DEFAULT now(),
    subject_id  text        NOT NULL,
    key_id      text        NOT NULL,
    key_name    text        NOT NULL,
    method      text        NOT NULL,
    route       text        NOT NULL
);
-- GET /v1/access-log?subject_id= pages one subject's reads in order
CREATE INDEX access_log_by_subject ON access_log (subject_id, id);
