-- Record MACs (schemas/record_mac.py): every record the ledger produces carries a `ledger_mac`
-- header, and the projector refuses an event-topic record without a valid one.

-- Per partition of a topic, the offset from which records must carry a valid MAC. Records
-- below it were written before MACs existed and are accepted without one. Written only by
-- `consent-ledger require-record-macs`; no row for a partition means a MAC is required from
-- offset 0 (a new deployment). Kept across rebuilds: a replay of the same log must apply the
-- same cut-off.
CREATE TABLE record_mac_cutoffs (
    topic         text        NOT NULL,
    log_partition integer     NOT NULL CHECK (log_partition >= 0),
    required_from bigint      NOT NULL CHECK (required_from >= 0),
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, log_partition)
);

-- The MAC header each record had, so `restore-log` produces it again as it was: journal rows
-- and repeats keep the header's value (their other headers follow from their columns);
-- rejected records keep all their headers (encoded as in schemas/record_mac.py). NULL: the
-- record had no valid MAC (written before MACs were required), or was kept before this column.
ALTER TABLE journal ADD COLUMN record_mac text;
ALTER TABLE duplicate_records ADD COLUMN record_mac text;
ALTER TABLE rejected_records ADD COLUMN record_headers bytea;

-- Why a record was refused, machine-readable (projections/dead_letters.py REASONS); the
-- `error` column keeps the human-readable detail.
ALTER TABLE rejected_records ADD COLUMN reason text NOT NULL DEFAULT 'undecodable-record';
ALTER TABLE dead_letter_outbox ADD COLUMN reason text NOT NULL DEFAULT 'undecodable-record';
UPDATE rejected_records SET reason = 'restore-placeholder'
WHERE error LIKE 'placeholder written by restore-log:%';
UPDATE dead_letter_outbox SET reason = 'restore-placeholder'
WHERE error LIKE 'placeholder written by restore-log:%';
-- every insert names its reason from now on
ALTER TABLE rejected_records ALTER COLUMN reason DROP DEFAULT;
ALTER TABLE dead_letter_outbox ALTER COLUMN reason DROP DEFAULT;
