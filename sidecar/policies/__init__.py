"""The request path's policies, one per file, each with one method `handle(call, next)`:
validation, deadline, read-only gate, cache fallback, retry, breaker, rate limiter (and the
pure parts behind them: breaker state table, retry budget, token bucket)."""
