-- Idempotency keys are stored as a keyed hash (services/idempotency.py key_hash): a client may
-- have put an e-mail address or a phone number in one. Rows written before this migration hold
-- the key in clear in idempotency_key until the first API or import process that has the
-- secrets replaces it by its hash (idempotency.hash_legacy_keys); new rows never hold it.
ALTER TABLE idempotency_keys ADD COLUMN key_hash bytea;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ALTER COLUMN idempotency_key DROP NOT NULL;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_named
    CHECK (key_hash IS NOT NULL OR idempotency_key IS NOT NULL);
CREATE UNIQUE INDEX idempotency_keys_key_hash ON idempotency_keys (key_hash);
CREATE UNIQUE INDEX idempotency_keys_in_clear ON idempotency_keys (idempotency_key)
    WHERE key_hash IS NULL;

-- Dead letters are purged by age (LEDGER_DEAD_LETTER_RETENTION_DAYS, `consent-ledger
-- retention`): rejected_records rows are deleted; an outbox row keeps its position and where it
-- was published, without the record's key, value or error, so the count of dead letters ever
-- seen stays whole. A purged row is never published.
ALTER TABLE dead_letter_outbox ADD COLUMN purged_at timestamptz;
