"""The telemetry the sidecar sends, received: OTLP/gRPC traces and PagerDuty/Slack webhooks.

`python -m chaos.receivers --otlp HOST:PORT --http HOST:PORT` in the receivers' namespace;
`GET /counts` answers {"spans": n, "exports": n, "pagerduty": n, "slack": n}.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from typing import Any

import grpc
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

COUNTS: Counter[str] = Counter()
PAGERDUTY_PATH = "/v2/enqueue"
SLACK_PATH = "/services/T0CHAOS/B0CHAOS/chaos-webhook"


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    async def Export(self, request: trace_service_pb2.ExportTraceServiceRequest,
                     context: Any) -> trace_service_pb2.ExportTraceServiceResponse:
        COUNTS["exports"] += 1
        COUNTS["spans"] += sum(len(ss.spans) for rs in request.resource_spans
                               for ss in rs.scope_spans)
        return trace_service_pb2.ExportTraceServiceResponse()


async def _pagerduty(request: web.Request) -> web.Response:
    body = await request.json()
    COUNTS["pagerduty"] += 1
    return web.json_response({"status": "success", "message": "Event processed",
                              "dedup_key": body.get("dedup_key")}, status=202)


async def _slack(request: web.Request) -> web.Response:
    await request.read()
    COUNTS["slack"] += 1
    return web.Response(text="ok")


async def _counts(request: web.Request) -> web.Response:
    return web.json_response(dict(COUNTS))


async def serve(otlp: str, http: str) -> None:
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        _Traces(), server)
    server.add_insecure_port(otlp)
    await server.start()
    app = web.Application()
    app.router.add_post(PAGERDUTY_PATH, _pagerduty)
    app.router.add_post(SLACK_PATH, _slack)
    app.router.add_get("/counts", _counts)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = http.rpartition(":")
    await web.TCPSite(runner, host, int(port)).start()
    print("receivers ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos.receivers")
    parser.add_argument("--otlp", default="0.0.0.0:4317")
    parser.add_argument("--http", default="0.0.0.0:8090")
    ns = parser.parse_args()
    asyncio.run(serve(ns.otlp, ns.http))


if __name__ == "__main__":
    main()
