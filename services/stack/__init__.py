"""The embedded development servers and `consent-ledger up`, which runs the whole ledger on one
machine."""
