"""The write path: events appended once per Idempotency-Key, MACed and published to the log, and
the Kafka clients, topics and consistency tokens that takes."""
