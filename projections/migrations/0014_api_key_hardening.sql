-- API keys (services/api_keys.py): two new scopes, the keyed hash, and where a key came from.
--
-- `notices` publishes privacy-notice versions and `requests` takes the steps of a rights
-- request; both were `record` before.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check
    CHECK (cardinality(scopes) > 0
           AND scopes <@ ARRAY['decide', 'record', 'notices', 'requests', 'audit', 'admin']::text[]);

-- How key_hash was computed: HMAC-SHA-256 under LEDGER_API_KEY_HASH_KEY, or plain SHA-256 for
-- the rows stored before this migration. A legacy row keeps working and is rewritten to the
-- keyed hash on its key's next successful use; every new row names its kind.
ALTER TABLE api_keys ADD COLUMN hash_kind text NOT NULL DEFAULT 'sha256'
    CHECK (hash_kind IN ('sha256', 'hmac-sha256'));
ALTER TABLE api_keys ALTER COLUMN hash_kind DROP DEFAULT;

-- Where the key came from: `keys create`, the LEDGER_ADMIN_KEY variable, or the development
-- key of `up`. The API warns at start-up about valid LEDGER_ADMIN_KEY keys other than the
-- current one. Rows from before are classified by the names those two registrations gave.
ALTER TABLE api_keys ADD COLUMN origin text NOT NULL DEFAULT 'keys create'
    CHECK (origin IN ('keys create', 'LEDGER_ADMIN_KEY', 'up'));
UPDATE api_keys SET origin = 'LEDGER_ADMIN_KEY'
    WHERE name = 'LEDGER_ADMIN_KEY' AND scopes = ARRAY['admin']::text[];
UPDATE api_keys SET origin = 'up' WHERE name = 'dev-admin' AND scopes = ARRAY['admin']::text[];
ALTER TABLE api_keys ALTER COLUMN origin DROP DEFAULT;
