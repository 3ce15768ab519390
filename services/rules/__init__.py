"""The decision rules and everything else pure: may we contact this subject, for this purpose, on
this channel, now? Nothing here does I/O (an import contract in pyproject.toml keeps it so)."""
