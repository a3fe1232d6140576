"""The two long-lived ProxyService.Stream subscribers, and subscribe/unsubscribe churn.

The transaction subscriber checks the stream's promise as it goes: every transaction exactly
once, in ID order (each ID is the previous one plus one). If the sidecar ends its stream (a
drain, SLOW_CONSUMER), it resumes from the last ID it has, as a bot should, and loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from typing import Any

import grpc

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2
from soak.traffic import grpc_outcome

RESUBSCRIBE_DELAY_S = 1.0
CHURN_INSTRUMENTS = ("AUD_USD", "USD_CHF,USD_CAD", "EUR_GBP", "XAU_USD")


class Subscriber:
    """One subscriber kept open for the whole soak (re-subscribing if the sidecar ends it)."""

    def __init__(self, stub: Any, request: proxy_pb2.StreamRequest) -> None:
        self._stub = stub
        self.request = request
        self.counts: Counter[str] = Counter()  # message types, `ended:<reason>`
        self.last_id = int(request.since_transaction_id or 0)
        self.delivered: list[int] = []
        self.out_of_order = 0
        self.duplicates = 0
        self.gaps = 0
        self.endings: list[str] = []  # why the sidecar ended the stream, with its details

    async def run(self) -> None:
        while True:
            request = proxy_pb2.StreamRequest()
            request.CopyFrom(self.request)
            if self.last_id:
                request.since_transaction_id = str(self.last_id)
            call = self._stub.Stream(request)
            try:
                async for message in call:
                    self._take(message)
                self.counts["ended:ok"] += 1
            except grpc.aio.AioRpcError as err:
                self.counts[f"ended:{grpc_outcome(err)}"] += 1
                self.endings.append(f"{grpc_outcome(err)}: {err.details()}"[:300])
            finally:
                call.cancel()
            await asyncio.sleep(RESUBSCRIBE_DELAY_S)

    def _take(self, message: proxy_pb2.StreamMessage) -> None:
        self.counts[message.type] += 1
        if not message.transaction_id:
            return
        tx = int(message.transaction_id)
        if tx <= self.last_id:
            self.duplicates += tx in set(self.delivered[-2000:])
            self.out_of_order += tx not in set(self.delivered[-2000:])
            return
        if self.last_id and tx != self.last_id + 1:
            self.gaps += 1
        self.delivered.append(tx)
        self.last_id = tx


async def churn(stub: Any, account: str, every_s: float = 20.0, hold_s: float = 5.0,
                counts: Counter[str] | None = None) -> None:
    """Every `every_s`: a pricing subscriber of another instrument set and a transaction
    subscriber, each open for `hold_s`, then cancelled (the hub opens and closes upstreams)."""
    counts = counts if counts is not None else Counter()
    for instruments in itertools.cycle(CHURN_INSTRUMENTS):
        await asyncio.sleep(every_s)
        calls = [
            stub.Stream(proxy_pb2.StreamRequest(
                path=f"/v3/accounts/{account}/pricing/stream",
                query={"instruments": instruments})),
            stub.Stream(proxy_pb2.StreamRequest(
                path=f"/v3/accounts/{account}/transactions/stream")),
        ]
        readers = [asyncio.ensure_future(_read(call, counts)) for call in calls]
        await asyncio.sleep(hold_s)
        for call in calls:
            call.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        counts["cycles"] += 1


async def _read(call: Any, counts: Counter[str]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        try:
            async for message in call:
                counts[message.type] += 1
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                counts[f"ended:{grpc_outcome(err)}"] += 1
