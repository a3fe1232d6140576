"""Finding out what became of an order write whose answer was lost, from OANDA's own records.

`Resolver.decide` runs until it knows or its deadline passes:
- create/replace: `GET orders/@{clientID}` (an order of that ID newer than the send is found:
  its transactions are read to build the answer), repeated every LOOKUP_INTERVAL_S while
  OANDA may still lag (`orders.lookup_lag_s` after the failure);
- then, or for a close or a cancel at once, `transactions/sinceid` from the last transaction ID
  known before the send: the write's transactions → a decision; none, read after the lag
  window (so the log is complete up to a moment after the send) → ABSENT, proven;
- a write the sidecar stopped waiting for (a timeout: OANDA may still be working on it) is
  assumed finished `oanda.request_timeout_s` after it was sent: the lag window starts then;
- a lookup that fails (unreachable, 5xx, open breaker, no token) is tried again with backoff.
Lookups go through `inner` (the breaker and the limiter, never retry or the cache) and teach
the transaction IDs they see. Time comes from the injected clock.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from sidecar.clock import Clock
from sidecar.errors import SidecarError
from sidecar.orders.config import OrdersConfig
from sidecar.orders.ids import CREATE, REPLACE, OrderWrite
from sidecar.orders.ledger import TransactionIDs
from sidecar.orders.transactions import ABSENT, Decision, Tx, find, page
from sidecar.pipeline import Call, Handler, Response
from sidecar.upstream.endpoints import resolve

LOOKUP_INTERVAL_S = 0.25
BACKOFF_FIRST_S = 0.25
BACKOFF_MAX_S = 2.0
BACKGROUND_BACKOFF_MAX_S = 15.0
MIN_LOOKUP_S = 0.1  # a lookup is not started with less time than this left
MAX_PAGES = 50  # 50,000 transactions: far more than an account makes while an order is out


class _Unreachable:
    """A lookup failed: try again after a pause."""


class _NotYet:
    """Nothing found, and OANDA may still lag: look again soon."""


UNREACHABLE, NOT_YET = _Unreachable(), _NotYet()
Probe = Decision | _Unreachable | _NotYet


class Resolver:
    def __init__(self, inner: Handler, clock: Clock, config: OrdersConfig,
                 ids: TransactionIDs, request_timeout_s: float) -> None:
        self._inner = inner
        self._clock = clock
        self._config = config
        self._ids = ids
        self._request_timeout_s = request_timeout_s
        self.lookups = 0  # sent by this resolver, for tests and benchmarks

    async def decide(self, write: OrderWrite, since: str | None, failed_at: float,
                     deadline: float | None, *, background: bool = False) -> Decision | None:
        """The write's outcome, or None when undecided at `deadline` (monotonic).

        `failed_at`: from when OANDA can no longer be working on the write; a negative read
        proves absence only `orders.lookup_lag_s` after it.
        """
        clock = self._clock
        failures = 0
        while True:
            final = clock.monotonic() - failed_at >= self._config.lookup_lag_s
            probe = await self._probe(write, since, deadline, final)
            if isinstance(probe, Decision):
                return probe
            if probe is UNREACHABLE:
                cap = BACKGROUND_BACKOFF_MAX_S if background else BACKOFF_MAX_S
                pause = min(cap, BACKOFF_FIRST_S * 2 ** failures)
                failures += 1
            else:
                lag_left = failed_at + self._config.lookup_lag_s - clock.monotonic()
                pause = max(0.0, min(LOOKUP_INTERVAL_S, lag_left))
            if deadline is not None:  # one more lookup if it still fits
                room = deadline - clock.monotonic() - MIN_LOOKUP_S
                if room <= 1e-9:
                    return None
                pause = min(pause, room)
            await clock.sleep(pause)

    async def read_since(self, account_id: str, deadline: float | None) -> str | None:
        """The account's lastTransactionID from its summary (the first order on an account)."""
        response = await self._get(f"/v3/accounts/{account_id}/summary", {}, deadline)
        if response is None or response.status != 200:
            return None
        return self._ids.get(account_id)

    async def _probe(self, write: OrderWrite, since: str | None, deadline: float | None,
                     final: bool) -> Probe:
        by_id = write.kind in (CREATE, REPLACE) and bool(write.client_order_id)
        if by_id:
            found = await self._by_client_id(write, since, deadline)
            if found is not NOT_YET or not final:
                return found
        if since is None:
            # Nothing to prove absence from: only a lookup by client ID can decide.
            return NOT_YET if by_id and not final else UNREACHABLE
        scanned = await self._transactions(write.account_id, since, deadline)
        if scanned is None:
            return UNREACHABLE
        decision = find(write, *scanned)
        if decision is not None:
            return decision
        return ABSENT if final else NOT_YET

    async def _by_client_id(self, write: OrderWrite, since: str | None,
                            deadline: float | None) -> Probe:
        cid = quote(write.client_order_id, safe="")
        response = await self._get(f"/v3/accounts/{write.account_id}/orders/@{cid}", {},
                                   deadline)
        if response is None or response.status not in (200, 404):
            return UNREACHABLE
        order_id = _order_id(response.body) if response.status == 200 else None
        if order_id is None or (since is not None and order_id <= int(since)):
            return NOT_YET  # not (yet) there, or an older order that reused the ID
        # The order's batch starts at its ID (a replace: one before, the replaced order's
        # cancel): read from there, however old `since` is.
        scanned = await self._transactions(write.account_id, str(max(0, order_id - 2)),
                                           deadline)
        if scanned is None:
            return UNREACHABLE
        decision = find(write, *scanned)
        return decision if decision is not None else NOT_YET

    async def _transactions(self, account_id: str, since: str,
                            deadline: float | None) -> tuple[list[Tx], str] | None:
        """Every transaction after `since`, following pages up to the last one."""
        found: list[Tx] = []
        after, last = since, since
        for _ in range(MAX_PAGES):
            response = await self._get(f"/v3/accounts/{account_id}/transactions/sinceid",
                                       {"id": after}, deadline)
            parsed = page(response.body) if response is not None and response.status == 200 \
                else None
            if parsed is None:
                return None
            txs, last = parsed
            found.extend(txs)
            if not txs or txs[-1]["id"] == last:
                return found, last
            after = str(txs[-1]["id"])
        return None

    async def _get(self, path: str, query: dict[str, str],
                   deadline: float | None) -> Response | None:
        limit = self._clock.monotonic() + self._request_timeout_s
        call = Call(method="GET", path=path, endpoint=resolve(path), query=query,
                    critical=True, deadline=limit if deadline is None else min(deadline, limit))
        self.lookups += 1
        try:
            response = await self._inner(call)
        except SidecarError:
            return None
        if response.status < 500:
            self._ids.learn(path, response.body)
        return response


def _order_id(body: bytes) -> int | None:
    """The ID of the order in a `GET orders/{spec}` answer."""
    try:
        return int(json.loads(body)["order"]["id"])
    except (ValueError, KeyError, TypeError):
        return None
