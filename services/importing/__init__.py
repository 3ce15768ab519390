"""`consent-ledger import`: a subscriber export (generic, listmonk, Mailchimp) becomes events."""
