"""Offer one sidecar a steady load over gRPC, in a process of its own; print what happened as
JSON. Used by the fleet test so that the load generator's CPU does not delay the others.

    python -m tests.ratelimit.loadgen TARGET PATH RATE SECONDS [CRITICAL_EVERY_S]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import grpc
from google.rpc import error_details_pb2, status_pb2

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2, proxy_pb2_grpc


def _reason(err: grpc.aio.AioRpcError) -> str:
    raw = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    if not raw:
        return f"client:{err.code().name}"
    info = error_details_pb2.ErrorInfo()
    for detail in status_pb2.Status.FromString(raw).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
    return info.reason


async def main(target: str, path: str, rate: float, seconds: float,
               critical_every_s: float) -> dict[str, object]:
    ok, refused, critical_sent = 0, dict[str, int](), dict[str, float]()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = proxy_pb2_grpc.ProxyServiceStub(channel)

        async def one(request: proxy_pb2.ExecuteRequest) -> None:
            nonlocal ok
            try:
                answer = await stub.Execute(request, timeout=5)
            except grpc.aio.AioRpcError as err:
                reason = _reason(err)
                refused[reason] = refused.get(reason, 0) + 1
                return
            ok += answer.status == 200
            if answer.status != 200:
                refused[f"http:{answer.status}"] = refused.get(f"http:{answer.status}", 0) + 1

        tasks, start, n, crit = [], time.monotonic(), 0, 0
        while (now := time.monotonic()) - start < seconds:
            while n < (now - start) * rate:
                tasks.append(asyncio.create_task(one(proxy_pb2.ExecuteRequest(
                    method="GET", path=path))))
                n += 1
            if critical_every_s and now - start > 1.0 + crit * critical_every_s:
                tag = f"critical-{target}-{crit}"
                critical_sent[tag] = time.monotonic()
                tasks.append(asyncio.create_task(one(proxy_pb2.ExecuteRequest(
                    method="GET", path=path, priority=proxy_pb2.PRIORITY_CRITICAL,
                    headers={"ClientRequestID": tag}))))
                crit += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
    return {"ok": ok, "refused": refused, "critical_sent": critical_sent}


if __name__ == "__main__":
    args = sys.argv[1:]
    every = float(args[4]) if len(args) > 4 else 0.0
    print(json.dumps(asyncio.run(main(args[0], args[1], float(args[2]), float(args[3]),
                                      every))))
