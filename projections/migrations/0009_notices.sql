-- Privacy notices (NoticePublished events, keyed notice/<version>): one row per version, the
-- first event of that version in log order (projections/notices.py).
CREATE TABLE notices (
    version        text        PRIMARY KEY,
    effective_from timestamptz NOT NULL,
    text_sha256    text        NOT NULL,
    url            text        NOT NULL,
    material       boolean     NOT NULL,
    -- purpose ids the change affects; empty = every purpose
    purposes       text[]      NOT NULL,
    language       text,
    event_id       uuid        NOT NULL,
    log_partition  integer     NOT NULL,
    log_offset     bigint      NOT NULL,
    published_at   timestamptz NOT NULL
);

-- The notice version a grant was given under, so the decision can tell whether a later
-- material change outdated it. Backfilled from the journal for grants projected before.
ALTER TABLE subject_facts ADD COLUMN notice_version text;
UPDATE subject_facts f SET notice_version = j.payload->>'notice_version'
FROM journal j
WHERE j.event_id = f.event_id AND f.kind = 'consent' AND f.event_type = 'ConsentGranted';

-- GET /v1/reconsent walks a purpose's grants in subject order.
CREATE INDEX subject_facts_grants ON subject_facts (scope_a, subject_id)
    WHERE kind = 'consent' AND event_type = 'ConsentGranted';
