"""Reading an order write's fate from OANDA's transaction log: pure functions, no I/O.

`find(write, transactions, last_id)` returns a `Decision` when the log holds the write's
transactions (taken effect, or rejected), None when it holds nothing of it. The answer it builds
has the shape OANDA's own answer would have had: the order's create transaction, its fill or
cancel, `relatedTransactionIDs` (the batch) and `lastTransactionID`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sidecar.orders.ids import CANCEL, CLOSE_POSITION, CLOSE_TRADE, CREATE, OrderWrite
from sidecar.orders.records import NOT_PLACED, PLACED

Tx = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Decision:
    """The write's outcome, and the answer built from the transactions found."""

    outcome: str  # PLACED (it took effect) or NOT_PLACED
    status: int  # the HTTP status of the built answer; 0: absent, nothing to answer
    body: bytes = b""
    transaction_ids: tuple[str, ...] = ()
    request_id: str | None = None  # OANDA's RequestID of the request that made them

    @property
    def absent(self) -> bool:
        return self.status == 0


ABSENT = Decision(NOT_PLACED, 0)


def find(write: OrderWrite, txs: Sequence[Tx], last_id: str) -> Decision | None:
    if write.kind == CLOSE_TRADE:
        return _close_trade(write.spec, txs, last_id)
    if write.kind == CLOSE_POSITION:
        return _close_position(write.spec, txs, last_id)
    if write.kind == CANCEL:
        return _cancel(write.spec, txs, last_id)
    return _order(write, txs, last_id)


def _client_id(tx: Tx) -> str | None:
    ext = tx.get("clientExtensions")
    return ext.get("id") if isinstance(ext, dict) else None


def _order(write: OrderWrite, txs: Sequence[Tx], last_id: str) -> Decision | None:
    cid = write.client_order_id
    for tx in txs:
        kind = str(tx.get("type", ""))
        if _client_id(tx) != cid:
            continue
        if kind.endswith("_ORDER_REJECT"):
            return _rejected(tx, "orderRejectTransaction", txs, last_id)
        if kind.endswith("_ORDER"):
            return _created(write, tx, txs, last_id)
    return None


def _created(write: OrderWrite, create: Tx, txs: Sequence[Tx], last_id: str) -> Decision:
    order_id = create["id"]
    body: dict[str, Any] = {}
    if write.kind != CREATE:  # a replace cancels the replaced order in the same batch
        replaced = _first(txs, lambda t: t.get("type") == "ORDER_CANCEL"
                          and t.get("replacedByOrderID") == order_id)
        if replaced is not None:
            body["orderCancelTransaction"] = replaced
    body["orderCreateTransaction"] = create
    body.update(_order_fate(order_id, txs, ""))
    return _answer(201, body, create, txs, last_id)


def _order_fate(order_id: str, txs: Sequence[Tx], prefix: str) -> dict[str, Tx]:
    """The fill or cancel of `order_id`, keyed as OANDA's answer keys them."""
    out: dict[str, Tx] = {}
    for tx in txs:
        if tx.get("orderID") != order_id or tx.get("replacedByOrderID"):
            continue
        if tx.get("type") == "ORDER_FILL":
            out[_key(prefix, "orderFillTransaction")] = tx
        elif tx.get("type") == "ORDER_CANCEL":
            out[_key(prefix, "orderCancelTransaction")] = tx
    return out


def _key(prefix: str, name: str) -> str:
    return f"{prefix}{name[0].upper()}{name[1:]}" if prefix else name


def _close_trade(spec: str, txs: Sequence[Tx], last_id: str) -> Decision | None:
    def closes(tx: Tx) -> bool:
        close = tx.get("tradeClose")
        if tx.get("reason") != "TRADE_CLOSE" or not isinstance(close, dict):
            return False
        return spec in (close.get("tradeID"), "@" + str(close.get("clientTradeID")))

    for tx in txs:
        if not closes(tx):
            continue
        if str(tx.get("type", "")).endswith("_REJECT"):
            return _rejected(tx, "orderRejectTransaction", txs, last_id)
        body = {"orderCreateTransaction": tx, **_order_fate(tx["id"], txs, "")}
        return _answer(200, body, tx, txs, last_id)
    return None


def _close_position(instrument: str, txs: Sequence[Tx], last_id: str) -> Decision | None:
    for tx in txs:
        if tx.get("reason") != "POSITION_CLOSEOUT" or tx.get("instrument") != instrument:
            continue
        batch = [t for t in txs if t.get("batchID") == tx.get("batchID")]
        body: dict[str, Any] = {}
        for side in ("long", "short"):
            for t in batch:
                if f"{side}PositionCloseout" not in t:
                    continue
                if str(t.get("type", "")).endswith("_REJECT"):
                    body[f"{side}OrderRejectTransaction"] = t
                else:
                    body[f"{side}OrderCreateTransaction"] = t
                    body.update(_order_fate(t["id"], txs, side))
        if any(k.endswith("RejectTransaction") for k in body):
            return _rejected_body(body, tx, txs, last_id)
        return _answer(200, body, tx, txs, last_id)
    return None


def _cancel(spec: str, txs: Sequence[Tx], last_id: str) -> Decision | None:
    def names(tx: Tx) -> bool:
        return spec in (tx.get("orderID"), "@" + str(tx.get("clientOrderID")))

    for tx in txs:
        kind = tx.get("type")
        if kind == "ORDER_CANCEL" and tx.get("reason") == "CLIENT_REQUEST" and names(tx):
            return _answer(200, {"orderCancelTransaction": tx}, tx, txs, last_id)
        if kind == "ORDER_CANCEL_REJECT" and names(tx):
            return _rejected(tx, "orderCancelRejectTransaction", txs, last_id, status=404)
    return None


def _rejected(tx: Tx, key: str, txs: Sequence[Tx], last_id: str,
              status: int = 400) -> Decision:
    return _rejected_body({key: tx}, tx, txs, last_id, status)


def _rejected_body(body: dict[str, Any], tx: Tx, txs: Sequence[Tx], last_id: str,
                   status: int = 400) -> Decision:
    reason = next((str(t["rejectReason"]) for t in body.values() if "rejectReason" in t), "")
    body = {**body, "errorCode": reason, "errorMessage": reason.replace("_", " ").capitalize()}
    built = _answer(status, body, tx, txs, last_id)
    return Decision(NOT_PLACED, built.status, built.body, built.transaction_ids,
                    built.request_id)


def _answer(status: int, body: dict[str, Any], first: Tx, txs: Sequence[Tx],
            last_id: str) -> Decision:
    batch = first.get("batchID", first.get("id"))
    related = [str(t["id"]) for t in txs if t.get("batchID", t.get("id")) == batch]
    body = {**body, "relatedTransactionIDs": related, "lastTransactionID": last_id}
    request_id = first.get("requestID")
    return Decision(PLACED, status, json.dumps(body, separators=(",", ":")).encode(),
                    tuple(related), str(request_id) if request_id is not None else None)


def _first(txs: Sequence[Tx], test: Callable[[Tx], bool]) -> Tx | None:
    return next((t for t in txs if test(t)), None)


def page(body: bytes) -> tuple[list[Tx], str] | None:
    """The transactions and `lastTransactionID` of a `transactions/sinceid` answer."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("transactions"), list):
        return None
    txs = [t for t in data["transactions"] if isinstance(t, dict) and "id" in t]
    return txs, str(data.get("lastTransactionID", txs[-1]["id"] if txs else ""))
