-- Staff sessions of the auditor's pages (services/identity/staff_sessions.py, the SQL in
-- services/identity/session_store.py): a DPO signs in once with an API key of scope audit (or
-- admin) and the browser carries a random session id in a cookie. Not folded from the log: a
-- session is the API's own short-lived state, like api_keys. Only a hash of the session id is
-- stored, so a read of this table cannot be replayed as a cookie; the row names the key, never
-- the key itself, and the key is checked again on every request (a revoked key ends its
-- sessions at once). Design: docs/security/staff-sessions.md

CREATE TABLE staff_sessions (
    -- SHA-256 of the session id the cookie carries
    session_hash  bytea       PRIMARY KEY CHECK (length(session_hash) = 32),
    key_id        text        NOT NULL REFERENCES api_keys (key_id),
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    -- set when the session ends: signed out, idle or absolute timeout, key revoked
    ended_at      timestamptz,
    end_reason    text CHECK (end_reason IN ('signed_out', 'idle', 'absolute', 'key_revoked')),
    -- the client address that signed in, for the operator's log of sign-ins
    signed_in_from text       NOT NULL
);
-- revoking a key ends its live sessions
CREATE INDEX staff_sessions_live_by_key ON staff_sessions (key_id) WHERE ended_at IS NULL;
