"""Orders and trades as the simulator keeps them, and the OANDA shapes they render as.

An order is either an entry order (MARKET, LIMIT, STOP, MARKET_IF_TOUCHED: instrument, units,
position fill, on-fill details) or a dependent order of one trade (TAKE_PROFIT, STOP_LOSS,
TRAILING_STOP_LOSS: tradeID, price or distance); both share one record so that the trigger
loop, the lists and the replace/cancel endpoints treat them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sidecar.sim.formats import Timestamp

ZERO = Decimal(0)
ENTRY_TYPES = ("MARKET", "LIMIT", "STOP", "MARKET_IF_TOUCHED")
PENDING_TYPES = ("LIMIT", "STOP", "MARKET_IF_TOUCHED")
# dependent order type -> (the trade's key for it, the on-fill field that asks for it)
DEPENDENT_TYPES = {"TAKE_PROFIT": ("takeProfit", "takeProfitOnFill"),
                   "STOP_LOSS": ("stopLoss", "stopLossOnFill"),
                   "TRAILING_STOP_LOSS": ("trailingStopLoss", "trailingStopLossOnFill")}
ON_FILL_KEYS = tuple(f for _, f in DEPENDENT_TYPES.values())


@dataclass(slots=True, eq=False)
class Order:
    id: str
    type: str
    instrument: str
    units: Decimal  # dependent orders: the units that close their trade
    create_time: float
    time_in_force: str
    position_fill: str
    price: Decimal | None = None
    price_bound: Decimal | None = None
    trigger_condition: str | None = None
    client_extensions: dict[str, str] | None = None
    trade_client_extensions: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # tradeClose / positionCloseout
    gtd_time: float | None = None
    on_fill: dict[str, Any] = field(default_factory=dict)  # takeProfitOnFill -> its Details
    initial_market_price: Decimal | None = None  # MARKET_IF_TOUCHED: which way it triggers
    trade_id: str | None = None  # dependent orders
    client_trade_id: str | None = None
    distance: Decimal | None = None
    guaranteed: bool | None = None
    premium: Decimal | None = None  # guaranteed stop loss: execution premium (price units)
    trailing_stop_value: Decimal | None = None
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

    @property
    def dependent(self) -> bool:
        return self.trade_id is not None

    def spec_fields(self) -> dict[str, Any]:
        """What the order asks for (shared by the order and its create transaction)."""
        if self.dependent:
            d: dict[str, Any] = {"tradeID": self.trade_id}
            optional: tuple[tuple[str, Any], ...] = (
                ("clientTradeID", self.client_trade_id), ("price", self.price),
                ("distance", self.distance), ("timeInForce", self.time_in_force),
                ("triggerCondition", self.trigger_condition), ("guaranteed", self.guaranteed),
                ("guaranteedExecutionPremium", self.premium))
        else:
            d = {"instrument": self.instrument, "units": self.units,
                 "timeInForce": self.time_in_force, "positionFill": self.position_fill,
                 **self.extra, **{k: v.as_json() for k, v in self.on_fill.items()}}
            optional = (("price", self.price), ("priceBound", self.price_bound),
                        ("triggerCondition", self.trigger_condition),
                        ("tradeClientExtensions", self.trade_client_extensions))
        d.update((k, v) for k, v in optional if v is not None)
        if self.gtd_time is not None and self.time_in_force == "GTD":
            d["gtdTime"] = Timestamp(self.gtd_time)
        if self.client_extensions:
            d["clientExtensions"] = self.client_extensions
        return d

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "createTime": Timestamp(self.create_time),
                             "type": self.type, "state": self.state, **self.spec_fields()}
        optional = (("initialMarketPrice", self.initial_market_price),
                    ("trailingStopValue", self.trailing_stop_value),
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
    dependents: dict[str, str] = field(default_factory=dict)  # "takeProfit" -> order ID

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
