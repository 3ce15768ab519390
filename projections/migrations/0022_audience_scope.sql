-- The audience scope: pull a campaign's audience (GET /v1/audiences) and the suppression list
-- with decrypted addresses (services/identity/api_keys.py SCOPES).
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check
    CHECK (cardinality(scopes) > 0
           AND scopes <@ ARRAY['decide', 'record', 'notices', 'requests', 'audit', 'audience',
                               'admin']::text[]);
