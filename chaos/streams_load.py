"""The two subscribers of a chaos run, on the raw gRPC stream (no client-side de-duplication:
whatever the sidecar delivers is recorded, so that a duplicate or a gap is the sidecar's)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2, proxy_pb2_grpc

Write = Callable[..., None]


async def watch_transactions(channel: grpc.aio.Channel, account: str, since: int,
                             write: Write) -> None:
    """Every transaction after `since`; after an error, resumes after the newest one seen."""
    stub = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]
    last = since
    while True:
        request = proxy_pb2.StreamRequest(path=f"/v3/accounts/{account}/transactions/stream",
                                          since_transaction_id=str(last))
        last = await _read(stub.Stream(request), write, last)
        await asyncio.sleep(0.5)


async def _read(call: Any, write: Write, last: int) -> int:
    try:
        async for msg in call:
            if msg.transaction_id:
                number = int(msg.transaction_id)
                write("tx", id=number, replayed=msg.replayed, t=time.time())
                last = max(last, number)
            elif msg.type.startswith("SIDECAR_"):
                write("tx", notice=msg.type, t=time.time())
    except grpc.aio.AioRpcError as exc:
        write("tx", error=exc.code().name, t=time.time())
    finally:
        call.cancel()
    return last


async def watch_prices(channel: grpc.aio.Channel, account: str, instruments: Sequence[str],
                       write: Write) -> None:
    stub = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]
    request = proxy_pb2.StreamRequest(path=f"/v3/accounts/{account}/pricing/stream",
                                      query={"instruments": ",".join(instruments)})
    while True:
        call = stub.Stream(request)
        try:
            async for msg in call:
                if msg.type == "PRICE":
                    write("prices", t=time.time())
        except grpc.aio.AioRpcError as exc:
            write("prices", error=exc.code().name, t=time.time())
        finally:
            call.cancel()
        await asyncio.sleep(0.5)
