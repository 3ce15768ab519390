"""The HTTP API: commands append events, queries answer from the projections."""
