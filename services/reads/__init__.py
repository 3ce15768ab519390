"""What queries wait on and share inside one API process: projection progress, the staleness
guard, cached notices, coalesced and shared reads."""
