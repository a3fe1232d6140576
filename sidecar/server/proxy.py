"""ProxyService.Execute: one OANDA call, through the composed pipeline (sidecar.server.front).

A thin front: proto → `Call` (sidecar.server.convert), `Front.run` (the span, the in-flight
register, one ExecuteFinished per call), `Response` → proto.
"""

from __future__ import annotations

from typing import Any

import grpc

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2, proxy_pb2_grpc
from sidecar.pipeline import Call
from sidecar.server.convert import call_from_request, execute_response
from sidecar.server.front import GRPC, Front


class ProxyServicer(proxy_pb2_grpc.ProxyServiceServicer):
    def __init__(self, front: Front) -> None:
        self._front = front

    def cut_off(self) -> int:
        return self._front.cut_off()

    async def Execute(self, request: proxy_pb2.ExecuteRequest,
                      context: grpc.aio.ServicerContext[Any, Any]) -> proxy_pb2.ExecuteResponse:
        remaining = context.time_remaining()
        front = self._front
        call = Call(method=request.method, path=request.path,
                    deadline=None if remaining is None
                    else front.monotonic() + remaining)
        response = await front.run(call, lambda c: call_from_request(request, c), front=GRPC,
                                   trace_metadata=context.invocation_metadata())
        return execute_response(response)
