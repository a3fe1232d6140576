"""The stateful model: accounts with their transactions, orders, trades and positions.

Everything here is synchronous, so one request's changes are atomic on the event loop. Orders and
trades keep their OANDA IDs (the ID of the transaction that created or opened them); positions are
derived from the open trades plus the realised P/L booked per side.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sidecar.clock import Clock
from sidecar.sim.formats import Timestamp, money
from sidecar.sim.market import Market
from sidecar.sim.records import ZERO, Order, Trade

__all__ = ["Account", "Batch", "Order", "SimState", "Trade", "TransactionListener"]

USER_ID = 1435156
INITIAL_BALANCE = Decimal(100_000)
GSL_MODES = ("DISABLED", "ALLOWED", "REQUIRED")

# Called with (account, transaction) right after a transaction joins an account's log.
TransactionListener = Callable[["Account", dict[str, Any]], None]


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
        self._account.append(tx)
        self.ids.append(tx_id)
        return tx

    def tail(self) -> dict[str, Any]:
        """`relatedTransactionIDs` and `lastTransactionID`, as every write answer carries them."""
        return {"relatedTransactionIDs": list(self.ids),
                "lastTransactionID": self._account.last_transaction_id}


class Account:
    def __init__(self, account_id: str, number: int, created: float,
                 listeners: list[TransactionListener], gsl_mode: str = "DISABLED") -> None:
        self.id = account_id
        self.alias = f"Simulated {number}"
        self.currency = "USD"
        self.balance = ZERO
        self.created_time = created
        self.margin_rate = Decimal("0.0333")
        self.gsl_mode = gsl_mode  # guaranteedStopLossOrderMode
        self.guaranteed_fees = ZERO
        self.transactions: list[dict[str, Any]] = []  # ID n is at index n-1
        self._state_listeners = listeners
        # This account's own listeners (a transaction stream subscriber), told of each `tx`.
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.orders: dict[str, Order] = {}
        self.order_by_client: dict[str, str] = {}
        self.live: dict[str, Order] = {}  # orders that may still be pending, in ID order
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

    def append(self, tx: dict[str, Any]) -> None:
        """The one place a transaction joins the log; listeners (streams) hear of it after:
        this account's (`listener(tx)`), then the simulator's (`listener(account, tx)`)."""
        self.transactions.append(tx)
        for own in self.listeners:
            own(tx)
        for listener in self._state_listeners:
            listener(self, tx)

    def batch(self, request_id: str, now: float) -> Batch:
        return Batch(self, request_id, now)

    def add_order(self, order: Order) -> None:
        self.orders[order.id] = order
        if order.type != "MARKET":
            self.live[order.id] = order
        if order.client_id:
            self.order_by_client[order.client_id] = order.id

    def add_trade(self, trade: Trade) -> None:
        self.trades[trade.id] = trade
        self.position_pl.setdefault(trade.instrument, [ZERO, ZERO])
        if trade.client_id:
            self.trade_by_client[trade.client_id] = trade.id

    def set_order_client_id(self, order: Order, old: str | None) -> None:
        if old and self.order_by_client.get(old) == order.id:
            del self.order_by_client[old]
        if order.client_id:
            self.order_by_client[order.client_id] = order.id

    def set_trade_client_id(self, trade: Trade, old: str | None) -> None:
        if old and self.trade_by_client.get(old) == trade.id:
            del self.trade_by_client[old]
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
        """Oldest first; forgets the orders that stopped being pending."""
        done = [i for i, o in self.live.items() if o.state != "PENDING"]
        for order_id in done:
            del self.live[order_id]
        return list(self.live.values())

    def book_pl(self, instrument: str, long_side: bool, pl: Decimal) -> None:
        self.position_pl.setdefault(instrument, [ZERO, ZERO])[0 if long_side else 1] += pl
        self.balance += pl


class SimState:
    """All accounts of one simulator, the market they trade on, and the clock they live by.

    `listeners` are called for every transaction of every account (they survive `reset`);
    `request_ids` names the batches nobody requested (triggered fills, expiries).
    """

    def __init__(self, *, accounts: int, seed: int, clock: Clock, market: Market | None = None,
                 gsl_mode: str = "DISABLED") -> None:
        if accounts < 1:
            raise ValueError("a simulator needs at least one account")
        if gsl_mode not in GSL_MODES:
            raise ValueError(f"gsl_mode must be one of {', '.join(GSL_MODES)}")
        self.clock = clock
        self.market = market or Market(seed)
        self.listeners: list[TransactionListener] = []
        self.request_ids: Callable[[], str] = lambda: "0"
        self._accounts_wanted = accounts
        self._gsl_mode = gsl_mode
        self.accounts: dict[str, Account] = {}
        self.settled_at = 0.0
        self.reset()

    def reset(self) -> None:
        """Fresh accounts in place (handlers hold a reference to this object)."""
        now = self.clock.wall()
        self.accounts = {}
        self.settled_at = now
        for number in range(1, self._accounts_wanted + 1):
            account_id = f"101-004-{USER_ID}-{number:03d}"
            self.accounts[account_id] = Account(account_id, number, now, self.listeners,
                                                self._gsl_mode)

    def counts(self, account: Account) -> dict[str, Any]:
        return {
            "orders": len(account.orders), "pendingOrders": len(account.pending_orders()),
            "trades": len(account.trades), "openTrades": len(account.open_trades()),
            "transactions": len(account.transactions),
            "lastTransactionID": account.last_transaction_id,
        }
