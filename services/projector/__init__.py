"""What runs beside the projector (projections/runner.py): the state feed, checkpoints and
dead-letter publishers and their shared outbox sessions."""
