"""The retry budget: retries may add only a bounded share of load, so an outage never
multiplies the traffic sent to OANDA.

Envoy's retry budget allows `max(min_retry_concurrency, budget_percent * active requests)`
retries. Here both sides are counted over a sliding window on the injected clock: a retry is
allowed while the retries started in the window stay below
`max(min_retries, ratio * requests in the window)`. Counting over a window rather than over
retries in flight keeps the bound firm: slots that free up as retries finish would otherwise
let an outage keep adding `min_retries` more, again and again.

The window is a ring of buckets (O(1) memory, no per-call allocation); it covers between
`window_s * (buckets-1)/buckets` and `window_s` seconds of history.
"""

from __future__ import annotations

from sidecar.clock import Clock

_NEVER = -(2**62)


class RetryBudget:
    """Counts requests and retries over a sliding window and admits retries within the budget."""

    __slots__ = ("_clock", "_min", "_n", "_ratio", "_requests", "_retries", "_ticks", "_width")

    def __init__(self, ratio: float, min_retries: int, window_s: float, clock: Clock,
                 *, buckets: int = 10) -> None:
        if window_s <= 0 or buckets < 1:
            raise ValueError("window_s must be > 0 and buckets >= 1")
        self._ratio = ratio
        self._min = min_retries
        self._clock = clock
        self._n = buckets
        self._width = window_s / buckets
        self._ticks = [_NEVER] * buckets
        self._requests = [0] * buckets
        self._retries = [0] * buckets

    def _slot(self, now: float) -> int:
        tick = int(now // self._width)
        i = tick % self._n
        if self._ticks[i] != tick:  # the bucket holds an older tick: it has left the window
            self._ticks[i] = tick
            self._requests[i] = 0
            self._retries[i] = 0
        return i

    def record_request(self) -> None:
        """One original request (first attempt) entered the retry policy."""
        self._requests[self._slot(self._clock.monotonic())] += 1

    def counts(self) -> tuple[int, int]:
        """(requests, retries) inside the current window."""
        i = self._slot(self._clock.monotonic())
        oldest = self._ticks[i] - self._n + 1
        requests = retries = 0
        for tick, req, ret in zip(self._ticks, self._requests, self._retries, strict=True):
            if tick >= oldest:
                requests += req
                retries += ret
        return requests, retries

    def try_acquire(self) -> bool:
        """Spend one retry if the budget allows it; False means: do not retry."""
        requests, retries = self.counts()
        if retries >= max(self._min, self._ratio * requests):
            return False
        self._retries[self._slot(self._clock.monotonic())] += 1
        return True
