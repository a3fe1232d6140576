"""OANDA's pricing and transaction streams: one upstream connection per (account, stream,
instrument set), shared by every local subscriber, watched, and resumed without a gap.

`hub` owns the connections; `connection` runs one (connect, read, watchdog, reconnect with
backoff, gap fill); `delivery` is one subscriber's view (its own resume and dedupe by ID);
`subscribers` holds the bounded per-subscriber buffers.
"""
