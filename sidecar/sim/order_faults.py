"""Order faults: what OANDA does to a write whose answer never arrives, and its read lag.

Two fault kinds of the registry act after the request was processed (committed):
`commit_then_503` answers OANDA's `503 {"errorMessage": "Timeout waiting for response."}` and
`commit_then_hang` never answers (the connection ends when the client gives up). With
`drop_after_commit` (reset after processing) and `reset` (before processing) that is every way an
order's answer can be lost.

Lookup lag: OANDA can take 0.25-1.5 s before a new order is visible to `GET orders/{spec}` and
its transactions to `transactions/sinceid`. `set_lag(0.5)` (or `set_lag(0.25, 1.5)`: each
batch of transactions gets its own lag, seeded) hides transactions that young from those two
reads. `POST /_sim/order-faults {"lookup_lag_s": 0.5}` or `{"lookup_lag_s": [0.25, 1.5]}` does
the same over HTTP; `{"lookup_lag_s": 0}` ends it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sidecar.sim.faults import Fault
from sidecar.sim.formats import Timestamp
from sidecar.sim.wire import STATE, json_response

COMMIT_THEN_503 = "commit_then_503"
COMMIT_THEN_HANG = "commit_then_hang"
TIMEOUT_BODY = {"errorMessage": "Timeout waiting for response."}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class OrderFaults:
    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self.lag: tuple[float, float] = (0.0, 0.0)
        self._batch_lag: dict[tuple[str, str], float] = {}

    def set_lag(self, low_s: float, high_s: float | None = None) -> None:
        high = low_s if high_s is None else high_s
        if not 0 <= low_s <= high <= 60:
            raise ValueError("lookup_lag_s must be within 0..60 s (a value or [low, high])")
        self.lag = (low_s, high)
        self._batch_lag.clear()

    async def after_commit(self, request: web.Request, action: Fault | None,
                           response: web.Response | None,
                           hang: Callable[[web.Request], Awaitable[None]]
                           ) -> web.Response | None:
        """The answer after a processed request: unchanged, a 503, or none (hang)."""
        if action is None or response is None:
            return response
        if action.kind == COMMIT_THEN_503:
            return json_response(TIMEOUT_BODY, 503)
        if action.kind == COMMIT_THEN_HANG:
            await hang(request)
            return None
        return response

    def reads(self, request: web.Request, handler: Handler) -> Handler:
        """`handler`, or a lagging view for `GET orders/{spec}` and `transactions/sinceid`."""
        if self.lag[1] <= 0 or request.method != "GET":
            return handler
        parts = request.path.split("/")
        if len(parts) == 6 and parts[4] == "orders" and parts[5] not in ("", "cancel"):
            return self._lagged_order
        if len(parts) == 6 and parts[4:] == ["transactions", "sinceid"]:
            return self._lagged_since
        return handler

    def _lag_of(self, account_id: str, tx: dict[str, Any]) -> float:
        key = (account_id, str(tx.get("batchID", tx["id"])))
        lag = self._batch_lag.get(key)
        if lag is None:
            lag = self._batch_lag[key] = self._rng.uniform(*self.lag)
        return lag

    def _visible(self, request: web.Request, account_id: str) -> list[dict[str, Any]]:
        """The account's transactions OANDA already shows: the prefix old enough."""
        state = request.app[STATE]
        now = state.clock.wall()
        txs = state.accounts[account_id].transactions
        shown = 0
        for tx in txs:
            stamp = tx["time"]
            t = stamp.t if isinstance(stamp, Timestamp) else now
            if t + self._lag_of(account_id, tx) > now:
                break
            shown += 1
        return txs[:shown]

    async def _lagged_order(self, request: web.Request) -> web.StreamResponse:
        account_id = request.match_info["accountID"]
        state = request.app[STATE]
        account = state.accounts.get(account_id)
        order = account.find_order(request.match_info["orderSpecifier"]) if account else None
        if account is None or order is None or int(order.id) > len(
                self._visible(request, account_id)):
            return json_response({"errorCode": "NO_SUCH_ORDER",
                                  "errorMessage": "The order ID specified does not exist"}, 404)
        return json_response({"order": order.as_json(),
                              "lastTransactionID": account.last_transaction_id})

    async def _lagged_since(self, request: web.Request) -> web.StreamResponse:
        account_id = request.match_info["accountID"]
        if account_id not in request.app[STATE].accounts:
            return json_response({"errorMessage": "Invalid value specified for 'accountID'"}, 400)
        visible = self._visible(request, account_id)
        try:
            since = int(request.query.get("id", ""))
        except ValueError:
            return json_response({"errorMessage": "Invalid value specified for 'id'"}, 400)
        return json_response({"transactions": visible[since:since + 1000],
                              "lastTransactionID": str(len(visible))})


ORDER_FAULTS = web.AppKey("sim_order_faults", OrderFaults)


async def _configure(request: web.Request) -> web.Response:
    faults = request.app[ORDER_FAULTS]
    try:
        data = await request.json()
        lag = data["lookup_lag_s"]
        low, high = (lag, lag) if isinstance(lag, int | float) else (lag[0], lag[1])
        faults.set_lag(float(low), float(high))
    except (ValueError, KeyError, TypeError, IndexError, json.JSONDecodeError) as exc:
        return json_response({"errorMessage": f"invalid order faults: {exc}"}, 400)
    return json_response({"lookup_lag_s": list(faults.lag)})


async def _show(request: web.Request) -> web.Response:
    return json_response({"lookup_lag_s": list(request.app[ORDER_FAULTS].lag)})


def add_routes(app: web.Application, faults: OrderFaults) -> None:
    app[ORDER_FAULTS] = faults
    app.router.add_post("/_sim/order-faults", _configure)
    app.router.add_get("/_sim/order-faults", _show)
