"""Transactions read over REST, through the same pipeline as Execute (limiter, breaker, retry):
where the stream starts (`anchor`) and what it missed (`pages_since`, pages of at most 1000)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from sidecar.errors import InvalidRequest, UpstreamError
from sidecar.pipeline import Call, Handler, Response
from sidecar.streams.messages import BrokenLine, StreamMessage, from_object
from sidecar.upstream.endpoints import resolve

PAGE_MAX = 1000


class TransactionSource:
    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def anchor(self, account: str) -> int:
        """The account's last transaction ID now (a live answer, never a cached one)."""
        body = await self._get(f"/v3/accounts/{account}/summary", {})
        return _last_id(body)

    async def pages_since(self, account: str, after: int) -> AsyncIterator[list[StreamMessage]]:
        """Every transaction after `after`, oldest first, one page at a time, up to OANDA's
        lastTransactionID; each message is marked replayed."""
        path = f"/v3/accounts/{account}/transactions/sinceid"
        while True:
            body = await self._get(path, {"id": str(after)})
            last = _last_id(body)
            page = _transactions(body, after)
            if page:
                yield page[:PAGE_MAX]
                after = page[min(len(page), PAGE_MAX) - 1].id_number
            if not page or after >= last:
                return

    async def _get(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        response = await self._handler(Call(method="GET", path=path, endpoint=resolve(path),
                                            query=query))
        _check(response, path)
        try:
            body = json.loads(response.body)
        except ValueError:
            raise UpstreamError(f"OANDA's answer to {resolve(path).template} is not JSON",
                                ) from None
        if not isinstance(body, dict):
            raise UpstreamError(f"OANDA's answer to {resolve(path).template} is not an object")
        return body


def _check(response: Response, path: str) -> None:
    template = resolve(path).template
    if response.from_cache:
        raise UpstreamError(f"{template}: only a cached answer (OANDA unreachable)")
    status = response.status
    if status == 200:
        return
    text = response.body[:200].decode("utf-8", "replace")
    if status in (400, 404):
        raise InvalidRequest(f"OANDA refused {template}: HTTP {status} {text}", field="path")
    raise UpstreamError(f"{template}: HTTP {status} {text}")


def _last_id(body: dict[str, Any]) -> int:
    value = body.get("lastTransactionID")
    if not isinstance(value, str) or not value.isdigit():
        raise UpstreamError("OANDA's answer carries no lastTransactionID")
    return int(value)


def _transactions(body: dict[str, Any], after: int) -> list[StreamMessage]:
    raw = body.get("transactions")
    if not isinstance(raw, list):
        raise UpstreamError("transactions/sinceid answered without a transactions list")
    out: list[StreamMessage] = []
    for obj in raw:
        try:
            message = from_object(obj, replayed=True) if isinstance(obj, dict) else None
        except (BrokenLine, KeyError):
            message = None
        if message is None:
            raise UpstreamError("transactions/sinceid answered a malformed transaction")
        if message.id_number > after:
            out.append(message)
    out.sort(key=lambda m: m.id_number)
    return out
