"""Rate limiting over the `limits` library: moving windows in memory (default) or in Redis."""
