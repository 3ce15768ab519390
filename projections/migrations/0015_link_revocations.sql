-- Link revocations (projections/link_revocations.py): per subject, link kind and address, the
-- latest instant up to which the links issued are revoked. Folded from LinksRevoked,
-- SubjectErased and IdentifierUnlinked, so a rebuild replays it from the log.
CREATE TABLE link_revocations (
    subject_id      text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('unsubscribe', 'preferences')),
    -- '*': every link of the kind; '': links issued by subject id; else the first 8 bytes of
    -- the blind index of the address the links were issued for, in hex (never the address)
    address         text        NOT NULL CHECK (address ~ '^(\*|[0-9a-f]{16})?$'),
    revoked_through timestamptz NOT NULL,
    -- the event that revoked them last
    event_id        uuid        NOT NULL,
    PRIMARY KEY (subject_id, kind, address)
);
