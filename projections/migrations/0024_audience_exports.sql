-- Every audience pulled (GET /v1/audiences, services/api/audience_exports.py): who, which
-- question, which snapshot and campaign check, when. Inserted before the first row leaves (the
-- pull is refused with 503 when it cannot be); the end (rows sent, completed or cut) is written
-- when the stream ends. A row left 'started' is a stream whose end could not be recorded (the
-- API process stopped or PostgreSQL was unreachable at its end): treat it as cut.
CREATE TABLE audience_exports (
    export_id           uuid        PRIMARY KEY,
    key_id              text        NOT NULL,
    key_name            text        NOT NULL,
    purpose             text        NOT NULL,
    channel             text        NOT NULL,
    format              text        NOT NULL,
    include_identifiers boolean     NOT NULL,
    spreadsheet_safe    boolean     NOT NULL,
    campaign_id         text,
    check_id            uuid,
    snapshot_token      text        NOT NULL,
    started_at          timestamptz NOT NULL,
    ended_at            timestamptz,
    row_count           bigint      CHECK (row_count >= 0),
    -- started: rows may be leaving; completed: every row and the end line were handed to the
    -- connection; cut: the stream ended early (cut_reason says why)
    outcome             text        NOT NULL DEFAULT 'started'
        CHECK (outcome IN ('started', 'completed', 'cut')),
    -- deadline, idle (the client stopped reading), client_left, failed
    cut_reason          text
        CHECK ((outcome = 'cut') = (cut_reason IS NOT NULL))
);
-- an auditor's question: which pulls in a period, and by which key
CREATE INDEX audience_exports_by_time ON audience_exports (started_at);
CREATE INDEX audience_exports_by_key ON audience_exports (key_id, started_at);
