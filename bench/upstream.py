"""The upstream process (`python -m bench.upstream --token T`), one for the whole run.

It serves, on 127.0.0.1 ephemeral ports:
* a minimal responder: any method and path, a small fixed JSON body, no work (latency figures);
* the simulator with OANDA's 120 req/s limit and fault injection (behaviour figures);
* an OTLP/gRPC trace sink that only counts spans, so "tracing on" really exports.
It prints one JSON line `{"responder": URL, "sim": URL, "otlp": URL}` when ready and serves until
SIGTERM. `GET <responder>/_bench/spans` answers how many spans the sink has received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any

import grpc
import uvloop
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from sidecar.sim.server import Simulator

BODY = b'{"accounts":[{"id":"101-004-1234567-001","tags":[]}]}'


class SpanSink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans = 0

    async def Export(self, request: Any, context: Any) -> Any:
        self.spans += sum(len(ss.spans) for rs in request.resource_spans
                          for ss in rs.scope_spans)
        return trace_service_pb2.ExportTraceServiceResponse()


def responder_app(sink: SpanSink) -> web.Application:
    async def respond(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=BODY, content_type="application/json",
                            headers={"RequestID": "1"})

    async def spans(request: web.Request) -> web.Response:
        return web.json_response({"spans": sink.spans})

    app = web.Application()
    app.router.add_get("/_bench/spans", spans)
    app.router.add_route("*", "/{tail:.*}", respond)
    return app


async def serve(token: str) -> None:
    sink = SpanSink()
    otlp = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        sink, otlp)
    otlp_port = otlp.add_insecure_port("127.0.0.1:0")
    await otlp.start()
    runner = web.AppRunner(responder_app(sink), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sim = Simulator(token=token)
    await sim.start("127.0.0.1", 0)
    print(json.dumps({"responder": f"http://127.0.0.1:{port}", "sim": sim.url,
                      "otlp": f"http://127.0.0.1:{otlp_port}"}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.close()
    await runner.cleanup()
    await otlp.stop(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream")
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.token))


if __name__ == "__main__":
    main()
