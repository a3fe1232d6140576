"""`python -m soak` (`make soak`): the sidecar under mixed traffic and periodic faults for
`SOAK_MINUTES` (default 30), its RSS, fds, asyncio tasks and event-loop lag sampled over time,
and a verdict on whether each stayed flat (docs/soak.md)."""
