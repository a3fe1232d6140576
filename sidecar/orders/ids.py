"""Which writes are orders, and their client IDs.

`classify` names the order writes the sidecar resolves (create, replace, close, cancel) from the
call's method and path template. `prepare` reads the account and specifier from the path and,
for a create or replace, makes sure the order carries `clientExtensions.id`: the caller's is
kept, an absent one becomes `osc-…` and the body is rewritten.

tradeClientExtensions: when the sidecar assigns the order's ID (the caller set no order client
ID) and the caller set no trade client ID either, the same `osc-…` ID is mirrored to
`tradeClientExtensions.id` on order types that can open a trade. The trade the order opens can
then be found by the same ID (`trades/@osc-…`, for a later close); OANDA checks a trade client
ID only against open trades, and ours are unique, so it can never cause a reject. A caller who
names its orders keeps its own scheme: nothing is invented for its trades.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from sidecar.pipeline import Call

CREATE, REPLACE, CLOSE_TRADE, CLOSE_POSITION, CANCEL = (
    "create", "replace", "close_trade", "close_position", "cancel")
_A = "/v3/accounts/{accountID}"
WRITES: dict[tuple[str, str], str] = {
    ("POST", f"{_A}/orders"): CREATE,
    ("PUT", f"{_A}/orders/{{orderSpecifier}}"): REPLACE,
    ("PUT", f"{_A}/orders/{{orderSpecifier}}/cancel"): CANCEL,
    ("PUT", f"{_A}/trades/{{tradeSpecifier}}/close"): CLOSE_TRADE,
    ("PUT", f"{_A}/positions/{{instrument}}/close"): CLOSE_POSITION,
}
PREFIX = "osc-"
# Order types whose fill can open a trade (dependent orders take no tradeClientExtensions).
_OPENING_TYPES = frozenset({"MARKET", "LIMIT", "STOP", "MARKET_IF_TOUCHED"})


@dataclass(frozen=True, slots=True)
class OrderWrite:
    """One order write as the resolver needs it."""

    kind: str
    account_id: str
    spec: str  # the order or trade specifier, or the instrument; "" for a create
    client_order_id: str = ""  # create and replace: the (new) order's client ID
    assigned: bool = False  # the sidecar chose the client ID


def classify(call: Call) -> str | None:
    return WRITES.get((call.method, call.endpoint.template))


def new_client_id(wall: float) -> str:
    """`osc-` + milliseconds since the epoch (hex, so IDs sort by time) + 48 random bits."""
    return f"{PREFIX}{int(wall * 1000):x}-{secrets.token_hex(6)}"


def prepare(call: Call, kind: str, wall: float) -> tuple[OrderWrite, bytes]:
    """The write's account, specifier and client ID, and the body to send: the call's, or (a
    client ID assigned) a rewritten copy."""
    parts = call.path.split("/")
    account = parts[3] if len(parts) > 3 else ""
    spec = unquote(parts[5]) if len(parts) > 5 and kind != CREATE else ""
    if kind not in (CREATE, REPLACE):
        return OrderWrite(kind, account, spec), call.body
    body = _load(call.body)
    order = body.get("order") if body is not None else None
    ext = order.get("clientExtensions", {}) if isinstance(order, dict) else None
    if body is None or not isinstance(order, dict) or not isinstance(ext, dict):
        return OrderWrite(kind, account, spec), call.body  # OANDA refuses it as it is
    given = ext.get("id")
    if isinstance(given, str) and given:
        return OrderWrite(kind, account, spec, given), call.body
    if given is not None:
        return OrderWrite(kind, account, spec), call.body  # not a string: OANDA rejects it
    cid = new_client_id(wall)
    order["clientExtensions"] = {**ext, "id": cid}
    _mirror_to_trade(order, cid)
    rewritten = json.dumps(body, separators=(",", ":")).encode()
    return OrderWrite(kind, account, spec, cid, assigned=True), rewritten


def _mirror_to_trade(order: dict[str, Any], cid: str) -> None:
    if order.get("type") not in _OPENING_TYPES:
        return
    trade_ext = order.get("tradeClientExtensions")
    if trade_ext is None:
        order["tradeClientExtensions"] = {"id": cid}
    elif isinstance(trade_ext, dict) and "id" not in trade_ext:
        trade_ext["id"] = cid


def _load(body: bytes) -> dict[str, Any] | None:
    if not body:
        return None
    try:
        loaded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return loaded if isinstance(loaded, dict) else None
