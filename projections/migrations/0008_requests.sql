-- Data-subject rights requests and their deadlines (projections/requests.py): one row per
-- request, the fold of its events in log order. due_on is the last day to answer (GDPR Art.
-- 12(3)): one calendar month from receipt, plus the months of any extension (at most two).
CREATE TABLE rights_requests (
    request_id       uuid        PRIMARY KEY,
    subject_id       text        NOT NULL,
    kind             text        NOT NULL,
    reference        text,
    received_at      timestamptz NOT NULL,
    verified_at      timestamptz,
    extended_months  integer     NOT NULL DEFAULT 0,
    extension_reason text,
    extended_at      timestamptz,
    due_on           date        NOT NULL,
    -- open, completed or refused
    status           text        NOT NULL,
    closed_at        timestamptz,
    -- the refusal's reason or the completion's evidence
    outcome_note     text,
    -- every event of the request, in log order
    event_ids        uuid[]      NOT NULL
);
-- GET /v1/requests?status=open|overdue pages open requests by deadline; the metric counts them
CREATE INDEX rights_requests_open ON rights_requests (due_on, request_id) WHERE status = 'open';
CREATE INDEX rights_requests_by_subject ON rights_requests (subject_id);
