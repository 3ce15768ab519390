"""HTTP plumbing shared by the API and the pages: problem documents, strict request bodies and
limits, rate limits."""
