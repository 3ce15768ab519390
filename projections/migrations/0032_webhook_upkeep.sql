-- Webhook deliveries' upkeep. Design: docs/developers/design/webhooks.md
--
-- retry_base: the attempts made before the latest redelivery, so the retry schedule counts
-- only the attempts of the current retry window (a redelivered delivery is retried within
-- seconds again, not after an hour).
ALTER TABLE webhook_deliveries ADD COLUMN retry_base integer NOT NULL DEFAULT 0;

-- The listing (GET /v1/webhooks/{id}/deliveries) pages newest first by (created_at, id), with
-- and without a status: both orders come from an index, never a sort of every delivery.
DROP INDEX webhook_deliveries_listing;
CREATE INDEX webhook_deliveries_listing
    ON webhook_deliveries (subscription_id, status, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_newest
    ON webhook_deliveries (subscription_id, created_at DESC, id DESC);

-- ledger_webhook_oldest_pending_seconds and the queue depth, per subscription at scrape time
CREATE INDEX webhook_deliveries_pending_age
    ON webhook_deliveries (subscription_id, (COALESCE(retry_from, created_at)))
    WHERE status = 'pending';

-- A deleted subscription's counts go with it (they named a subscription no longer there).
DELETE FROM webhook_outcome_counts c
WHERE NOT EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.id = c.subscription_id);
ALTER TABLE webhook_outcome_counts
    ADD CONSTRAINT webhook_outcome_counts_subscription
    FOREIGN KEY (subscription_id) REFERENCES webhook_subscriptions (id) ON DELETE CASCADE;

-- A delivery's data carries no blind index, identifier ciphertext or sealed context value
-- (projections/webhook_fanout.py delivery_payload): strip them from the rows made before.
UPDATE webhook_deliveries
SET payload = payload #- '{data,blind_index}' #- '{data,ciphertext}'
                      #- '{data,context,client_address}' #- '{data,context,user_agent}'
WHERE payload->'data' ?| ARRAY['blind_index', 'ciphertext']
   OR payload->'data'->'context' ?| ARRAY['client_address', 'user_agent'];
