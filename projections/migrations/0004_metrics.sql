-- Histograms the projector observes, updated in the same transaction as the batch they
-- measure (so a replayed batch is not counted twice). One row per bucket: `observations`
-- counts the values above the previous bound and at most `upper_bound` (not cumulative),
-- `total` sums them; the Prometheus rendering accumulates.
CREATE TABLE metric_histograms (
    name          text             NOT NULL,
    upper_bound   double precision NOT NULL,
    observations  bigint           NOT NULL DEFAULT 0,
    total         double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (name, upper_bound)
);
