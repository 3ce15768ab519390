"""Operator jobs: backup and restore, restore-log, rebuild, resuming a stopped projector,
requiring record MACs."""
