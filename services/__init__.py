"""What runs: the HTTP API, the projector process, the embedded stack and the CLI."""
