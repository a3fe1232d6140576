"""The stateful model: accounts with their transactions, orders, trades and positions.

Everything here is synchronous, so one request's changes are atomic on the event loop. Orders and
trades keep their OANDA IDs (the ID of the transaction that created or opened them); positions are
derived from the open trades plus the realised P/L booked per side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sidecar.clock import Clock
from sidecar.sim.formats import Timestamp, money
from sidecar.sim.market import Market

USER_ID = 1435156
INITIAL_BALANCE = Decimal(100_000)
ZERO = Decimal(0)


@dataclass(slots=True, eq=False)
class Order:
    id: str
    type: str
    instrument: str
    units: Decimal
    create_time: float
    time_in_force: str
    position_fill: str
    price: Decimal | None = None
    price_bound: Decimal | None = None
    trigger_condition: str | None = None
    client_extensions: dict[str, str] | None = None
    trade_client_extensions: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # tradeClose / positionCloseout
    state: str = "PENDING"
    filling_transaction_id: str | None = None
    filled_time: float | None = None
    trade_opened_id: str | None = None
    trade_reduced_id: str | None = None
    trade_closed_ids: list[str] = field(default_factory=list)
    cancelling_transaction_id: str | None = None
    cancelled_time: float | None = None
    replaces_order_id: str | None = None
    replaced_by_order_id: str | None = None

    @property
    def client_id(self) -> str | None:
        return (self.client_extensions or {}).get("id")

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id, "createTime": Timestamp(self.create_time), "type": self.type,
            "instrument": self.instrument, "units": self.units, "timeInForce": self.time_in_force,
            "positionFill": self.position_fill, "state": self.state, **self.extra,
        }
        optional = (("price", self.price), ("priceBound", self.price_bound),
                    ("triggerCondition", self.trigger_condition),
                    ("clientExtensions", self.client_extensions),
                    ("tradeClientExtensions", self.trade_client_extensions),
                    ("fillingTransactionID", self.filling_transaction_id),
                    ("tradeOpenedID", self.trade_opened_id),
                    ("tradeReducedID", self.trade_reduced_id),
                    ("cancellingTransactionID", self.cancelling_transaction_id),
                    ("replacesOrderID", self.replaces_order_id),
                    ("replacedByOrderID", self.replaced_by_order_id))
        d.update((k, v) for k, v in optional if v is not None)
        if self.filled_time is not None:
            d["filledTime"] = Timestamp(self.filled_time)
        if self.trade_closed_ids:
            d["tradeClosedIDs"] = list(self.trade_closed_ids)
        if self.cancelled_time is not None:
            d["cancelledTime"] = Timestamp(self.cancelled_time)
        return d


@dataclass(slots=True, eq=False)
class Trade:
    id: str
    instrument: str
    price: Decimal
    open_time: float
    initial_units: Decimal
    initial_margin: Decimal
    current_units: Decimal
    client_extensions: dict[str, str] | None = None
    realized_pl: Decimal = ZERO
    state: str = "OPEN"
    closing_transaction_ids: list[str] = field(default_factory=list)
    close_time: float | None = None
    closed_value: Decimal = ZERO
    closed_units: Decimal = ZERO

    @property
    def client_id(self) -> str | None:
        return (self.client_extensions or {}).get("id")

    def reduce(self, units: Decimal, price: Decimal, pl: Decimal, tx_id: str, now: float) -> None:
        """Close `units` (same sign as the trade) at `price`, booking `pl`."""
        self.current_units -= units
        self.realized_pl += pl
        self.closing_transaction_ids.append(tx_id)
        self.closed_value += price * abs(units)
        self.closed_units += abs(units)
        if self.current_units == 0:
            self.state, self.close_time = "CLOSED", now


class Batch:
    """The transactions one request creates: consecutive IDs sharing a batchID and requestID."""

    __slots__ = ("_account", "ids", "now", "request_id")

    def __init__(self, account: Account, request_id: str, now: float) -> None:
        self._account = account
        self.request_id = request_id
        self.now = now
        self.ids: list[str] = []

    def next_id(self) -> str:
        return str(len(self._account.transactions) + 1)

    def add(self, fields: dict[str, Any]) -> dict[str, Any]:
        tx_id = self.next_id()
        tx = {"id": tx_id, "time": Timestamp(self.now), "userID": USER_ID,
              "accountID": self._account.id, "batchID": self.ids[0] if self.ids else tx_id,
              "requestID": self.request_id, **fields}
        self._account.transactions.append(tx)
        self.ids.append(tx_id)
        return tx

    def tail(self) -> dict[str, Any]:
        """`relatedTransactionIDs` and `lastTransactionID`, as every write answer carries them."""
        return {"relatedTransactionIDs": list(self.ids),
                "lastTransactionID": self._account.last_transaction_id}


class Account:
    def __init__(self, account_id: str, number: int, created: float) -> None:
        self.id = account_id
        self.alias = f"Simulated {number}"
        self.currency = "USD"
        self.balance = ZERO
        self.created_time = created
        self.margin_rate = Decimal("0.0333")
        self.transactions: list[dict[str, Any]] = []  # ID n is at index n-1
        self.orders: dict[str, Order] = {}
        self.order_by_client: dict[str, str] = {}
        self.trades: dict[str, Trade] = {}
        self.trade_by_client: dict[str, str] = {}
        self.position_pl: dict[str, list[Decimal]] = {}  # instrument -> [long pl, short pl]
        self.last_fill_time: float | None = None
        batch = self.batch("0", created)
        batch.add({"type": "CREATE", "divisionID": 4, "siteID": 101, "accountUserID": USER_ID,
                   "accountNumber": number, "homeCurrency": self.currency})
        self.balance = money(INITIAL_BALANCE)
        batch.add({"type": "TRANSFER_FUNDS", "amount": self.balance,
                   "fundingReason": "CLIENT_FUNDING", "accountBalance": self.balance})

    @property
    def last_transaction_id(self) -> str:
        return str(len(self.transactions))

    def batch(self, request_id: str, now: float) -> Batch:
        return Batch(self, request_id, now)

    def add_order(self, order: Order) -> None:
        self.orders[order.id] = order
        if order.client_id:
            self.order_by_client[order.client_id] = order.id

    def add_trade(self, trade: Trade) -> None:
        self.trades[trade.id] = trade
        self.position_pl.setdefault(trade.instrument, [ZERO, ZERO])
        if trade.client_id:
            self.trade_by_client[trade.client_id] = trade.id

    def find_order(self, spec: str) -> Order | None:
        """By ID or `@clientID` (the newest order carrying that client ID)."""
        if spec.startswith("@"):
            return self.orders.get(self.order_by_client.get(spec[1:], ""))
        return self.orders.get(spec)

    def find_trade(self, spec: str) -> Trade | None:
        if spec.startswith("@"):
            return self.trades.get(self.trade_by_client.get(spec[1:], ""))
        return self.trades.get(spec)

    def open_trades(self, instrument: str | None = None) -> list[Trade]:
        """Oldest first (FIFO), as OANDA reduces them."""
        return [t for t in self.trades.values() if t.state == "OPEN"
                and (instrument is None or t.instrument == instrument)]

    def pending_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.state == "PENDING"]

    def book_pl(self, instrument: str, long_side: bool, pl: Decimal) -> None:
        self.position_pl.setdefault(instrument, [ZERO, ZERO])[0 if long_side else 1] += pl
        self.balance += pl


class SimState:
    """All accounts of one simulator, the market they trade on, and the clock they live by."""

    def __init__(self, *, accounts: int, seed: int, clock: Clock) -> None:
        if accounts < 1:
            raise ValueError("a simulator needs at least one account")
        self.clock = clock
        self.market = Market(seed)
        self._accounts_wanted = accounts
        self.accounts: dict[str, Account] = {}
        self.reset()

    def reset(self) -> None:
        """Fresh accounts in place (handlers hold a reference to this object)."""
        now = self.clock.wall()
        self.accounts = {}
        for number in range(1, self._accounts_wanted + 1):
            account_id = f"101-004-{USER_ID}-{number:03d}"
            self.accounts[account_id] = Account(account_id, number, now)

    def counts(self, account: Account) -> dict[str, Any]:
        return {
            "orders": len(account.orders), "pendingOrders": len(account.pending_orders()),
            "trades": len(account.trades), "openTrades": len(account.open_trades()),
            "transactions": len(account.transactions),
            "lastTransactionID": account.last_transaction_id,
        }
