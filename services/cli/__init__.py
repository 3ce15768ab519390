"""The `consent-ledger` command: argument parsing and dispatch only."""
