"""Projections: the event log folded into PostgreSQL tables the API answers from."""
