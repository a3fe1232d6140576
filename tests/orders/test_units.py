"""Client IDs, the transaction-ID ledger, the transaction log reader, and the resolver's timing on
the fake clock (a scripted upstream stands in for OANDA: the timing is what is under test)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sidecar.clock import FakeClock
from sidecar.config import OrdersConfig
from sidecar.errors import UpstreamConnectionLost
from sidecar.orders.ids import CLOSE_TRADE, CREATE, OrderWrite, classify, prepare
from sidecar.orders.ledger import TransactionIDs
from sidecar.orders.resolver import Resolver
from sidecar.orders.transactions import find
from sidecar.pipeline import Call, Response
from sidecar.upstream.endpoints import resolve

ACCT = "101-004-1-001"


def _call(method: str, path: str, body: Any = None) -> Call:
    raw = json.dumps(body).encode() if body is not None else b""
    return Call(method=method, path=path, endpoint=resolve(path), body=raw)


def test_an_absent_client_id_is_assigned_and_mirrored_to_the_trade() -> None:
    call = _call("POST", f"/v3/accounts/{ACCT}/orders",
                 {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "1"}})
    assert classify(call) == CREATE
    write, body = prepare(call, CREATE, 1_700_000_000.0)
    order = json.loads(body)["order"]
    assert "clientExtensions" not in json.loads(call.body)["order"]  # the call is not changed
    assert write.assigned and write.client_order_id.startswith("osc-18bcfe56800-")
    assert order["clientExtensions"] == {"id": write.client_order_id}
    assert order["tradeClientExtensions"] == {"id": write.client_order_id}
    assert write.account_id == ACCT


def test_a_callers_ids_are_kept_and_nothing_is_invented_for_its_trades() -> None:
    body = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "1",
                      "clientExtensions": {"id": "mine-1", "tag": "t"}}}
    call = _call("POST", f"/v3/accounts/{ACCT}/orders", body)
    write, sent = prepare(call, CREATE, 1.0)
    assert write == OrderWrite(CREATE, ACCT, "", "mine-1")
    assert sent is call.body  # untouched
    dependent = _call("POST", f"/v3/accounts/{ACCT}/orders",
                      {"order": {"type": "TAKE_PROFIT", "tradeID": "7", "price": "1.2"}})
    _, sent = prepare(dependent, CREATE, 1.0)
    assert "tradeClientExtensions" not in json.loads(sent)["order"]


def test_close_and_cancel_specifiers_come_from_the_path() -> None:
    call = _call("PUT", f"/v3/accounts/{ACCT}/trades/%40osc-1/close", {"units": "5"})
    assert classify(call) == CLOSE_TRADE
    assert prepare(call, CLOSE_TRADE, 1.0)[0] == OrderWrite(CLOSE_TRADE, ACCT, "@osc-1")
    assert classify(_call("GET", f"/v3/accounts/{ACCT}/orders")) is None


def test_the_ledger_learns_the_newest_id_from_the_tail_of_answers() -> None:
    ids = TransactionIDs()
    ids.learn(f"/v3/accounts/{ACCT}/summary", b'{"account":{},"lastTransactionID":"41"}')
    ids.learn(f"/v3/accounts/{ACCT}/orders", b'{"lastTransactionID": "40"}')  # older: ignored
    ids.learn("/v3/instruments/EUR_USD/candles", b'{"lastTransactionID":"99"}')
    assert ids.get(ACCT) == "41"
    ids.learn(f"/v3/accounts/{ACCT}/orders",
              b'{"lastTransactionID":"43","errorCode":"X","errorMessage":"y"}')
    assert ids.get(ACCT) == "43"


def test_the_log_answers_a_reject_as_oanda_would() -> None:
    txs = [{"id": "5", "batchID": "5", "type": "MARKET_ORDER_REJECT", "requestID": "r9",
            "rejectReason": "UNITS_INVALID", "clientExtensions": {"id": "c1"}}]
    decision = find(OrderWrite(CREATE, ACCT, "", "c1"), txs, "5")
    assert decision is not None and decision.outcome == "not_placed" and decision.status == 400
    body = json.loads(decision.body)
    assert body["errorCode"] == "UNITS_INVALID" and body["relatedTransactionIDs"] == ["5"]
    assert decision.request_id == "r9"
    assert find(OrderWrite(CREATE, ACCT, "", "c2"), txs, "5") is None


class ScriptedOanda:
    """Answers the resolver's lookups: `down` lookups fail, then the order is `found` or not."""

    def __init__(self, clock: FakeClock, *, down: int = 0, found: bool = False,
                 visible_after_s: float = 0.0) -> None:
        self.clock, self.down, self.found = clock, down, found
        self.visible_at = clock.monotonic() + visible_after_s
        self.paths: list[str] = []

    async def __call__(self, call: Call) -> Response:
        self.paths.append(call.path)
        if self.down:
            self.down -= 1
            raise UpstreamConnectionLost("reset")
        visible = self.found and self.clock.monotonic() >= self.visible_at
        if call.path.endswith("/orders/@c1"):
            if not visible:
                return Response(404, b'{"errorCode":"NO_SUCH_ORDER"}')
            return Response(200, b'{"order":{"id":"11"},"lastTransactionID":"12"}')
        txs = [{"id": "11", "batchID": "11", "type": "MARKET_ORDER",
                "clientExtensions": {"id": "c1"}},
               {"id": "12", "batchID": "11", "type": "ORDER_FILL", "orderID": "11"}]
        shown = txs if visible else []
        last = "12" if visible else "10"
        return Response(200, json.dumps({"transactions": shown,
                                         "lastTransactionID": last}).encode())


async def _decide(clock: FakeClock, oanda: ScriptedOanda, deadline_s: float | None = 5.0,
                  ) -> Any:
    resolver = Resolver(oanda, clock, OrdersConfig(lookup_lag_s=1.0), TransactionIDs(), 10.0)
    now = clock.monotonic()
    return await resolver.decide(OrderWrite(CREATE, ACCT, "", "c1"), "10", now,
                                 None if deadline_s is None else now + deadline_s)


async def test_absence_is_proven_only_after_the_lag_window(clock: FakeClock) -> None:
    oanda = ScriptedOanda(clock)
    decision = await _decide(clock, oanda)
    assert decision is not None and decision.absent
    assert clock.sleeps == [0.25, 0.25, 0.25, 0.25]  # lookups at 0, .25, .5, .75, 1.0
    assert sum(p.endswith("/orders/@c1") for p in oanda.paths) == 5
    assert oanda.paths[-1].endswith("/transactions/sinceid")


async def test_a_lagging_order_is_found_once_visible(clock: FakeClock) -> None:
    oanda = ScriptedOanda(clock, found=True, visible_after_s=0.6)
    decision = await _decide(clock, oanda)
    assert decision is not None and decision.outcome == "placed" and decision.status == 201
    assert decision.transaction_ids == ("11", "12") and clock.sleeps == [0.25, 0.25, 0.25]


async def test_unreachable_lookups_back_off_and_stop_at_the_deadline(clock: FakeClock) -> None:
    oanda = ScriptedOanda(clock, down=100)
    assert await _decide(clock, oanda, deadline_s=2.0) is None
    assert clock.sleeps == pytest.approx([0.25, 0.5, 1.0, 0.15])  # the last lookup that fits
    oanda = ScriptedOanda(clock, down=2, found=True)
    decision = await _decide(clock, oanda, deadline_s=None)
    assert decision is not None and decision.outcome == "placed"


def test_a_lag_window_longer_than_the_resolve_timeout_stops_start_up() -> None:
    from sidecar.config import load_config
    from sidecar.errors import ConfigError

    env = {"OANDA_SIDECAR__ORDERS__LOOKUP_LAG_S": "20"}
    with pytest.raises(ConfigError, match=r"^orders.*lookup_lag_s must be below"):
        load_config(env=env, read_secrets=False)
