-- A redelivery (POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver) starts a new retry
-- window: a delivery is retried until LEDGER_WEBHOOK_RETRY_HOURS after retry_from, its
-- latest redelivery, or after created_at when it was never redelivered.
-- Design: docs/developers/design/webhooks.md
ALTER TABLE webhook_deliveries ADD COLUMN retry_from timestamptz;
