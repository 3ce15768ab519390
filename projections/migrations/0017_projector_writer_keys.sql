-- Which writer keys (LEDGER_WRITER_KEYS ids) the projector owning a partition checks record MACs
-- with, as it last reported them (projections/projector_health.py): about once a second with
-- the other columns, and at once when it is assigned the partition, before it applies anything.
-- The API compares its current writer key id with them (projections/freshness.py): a record it
-- MACs with a key the owner does not know would be dead-lettered as unauthenticated-record, so
-- decisions, /readyz and commands refuse until every reporting projector knows the key.
-- NULL: the row was reported by a projector that does not say (a version before this one).
-- Operational like the rest of the table: not a projection, kept across rebuilds.
ALTER TABLE projector_partitions ADD COLUMN writer_key_ids text[];
