-- Websites registered to record cookie choices from their visitors' browsers
-- (POST /v1/collect/consents; projections/sites.py). Not folded from the log: like api_keys,
-- an operator's configuration. The publishable key (`pk_<site_id>_<secret>`) is stored only as
-- its HMAC-SHA-256 under the server's LEDGER_API_KEY_HASH_KEY.
CREATE TABLE sites (
    site_id    text        PRIMARY KEY CHECK (site_id ~ '^[0-9a-f]{16}$'),
    name       text        NOT NULL,
    -- canonical origins (https://www.example.com), the Origin header values accepted
    origins    text[]      NOT NULL CHECK (cardinality(origins) > 0),
    -- purpose ids of the catalogue the site's banner may record
    purposes   text[]      NOT NULL CHECK (cardinality(purposes) > 0),
    key_hash   bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
