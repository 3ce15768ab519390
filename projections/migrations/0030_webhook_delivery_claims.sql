-- The deliveries' worker model: only the head of each subject's queue (its earliest pending
-- delivery in log order) carries a next_attempt_at; the deliveries queued behind it have NULL
-- and the next is released in the transaction that settles the head. Dispatchers claim due
-- heads for a lease (claimed_until, claim) with FOR UPDATE SKIP LOCKED, so several share a
-- subscription's work and one that dies frees its claims when the lease runs out.
-- Design: docs/developers/design/webhooks.md
ALTER TABLE webhook_deliveries ADD COLUMN claimed_until timestamptz;
ALTER TABLE webhook_deliveries ADD COLUMN claim uuid;

UPDATE webhook_deliveries d SET next_attempt_at = NULL
WHERE d.status = 'pending' AND EXISTS (
    SELECT 1 FROM webhook_deliveries e
    WHERE e.subscription_id = d.subscription_id AND e.subject_id = d.subject_id
      AND e.status = 'pending' AND (e.log_partition, e.log_offset) < (d.log_partition, d.log_offset)
);

-- a subscription's due heads, earliest first: a range scan, whatever waits behind them
CREATE INDEX webhook_deliveries_ready ON webhook_deliveries (subscription_id, next_attempt_at)
    WHERE status = 'pending' AND next_attempt_at IS NOT NULL;
