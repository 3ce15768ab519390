-- Sign-up confirmation links (kind 'confirm', services/identity/links.py) are revoked like the
-- preference links: by erasure, and by unlinking the address they were mailed to.
ALTER TABLE link_revocations DROP CONSTRAINT link_revocations_kind_check;
ALTER TABLE link_revocations ADD CONSTRAINT link_revocations_kind_check
    CHECK (kind IN ('unsubscribe', 'preferences', 'confirm'));
