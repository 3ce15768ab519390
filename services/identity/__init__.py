"""Keys and identities: the secrets, per-subject data keys, blind-indexed contact identifiers,
sealed link tokens and API keys."""
