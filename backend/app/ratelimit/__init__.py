"""Rate limits: moving windows (own, in memory; `limits` in Redis), concurrency slots, admission."""
