"""The bare gRPC proxy (`python -m bench.bare_proxy --upstream URL --token T`).

ProxyService.Execute straight onto one aiohttp session: no validation, no policy, no events, no
telemetry. It is the floor of this architecture (gRPC in, HTTP/1.1 out, same pool size as the
sidecar); whatever the sidecar costs above it is the price of its policies.
Prints `bare-proxy ready: grpc HOST:PORT` and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import aiohttp
import grpc
import uvloop

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2, proxy_pb2_grpc

RETURNED_HEADERS = ("RequestID", "Location", "Link", "Content-Type")


class BareProxy(proxy_pb2_grpc.ProxyServiceServicer):
    def __init__(self, base_url: str, token: str) -> None:
        self._base = base_url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=30.0),
            timeout=aiohttp.ClientTimeout(total=10.0))

    async def Execute(self, request: Any, context: Any) -> Any:
        async with self._session.request(
                request.method, self._base + request.path, params=dict(request.query) or None,
                data=request.body or None, headers=self._headers) as resp:
            body = await resp.read()
            headers = {k: resp.headers[k] for k in RETURNED_HEADERS if k in resp.headers}
            return proxy_pb2.ExecuteResponse(status=resp.status, body=body, headers=headers,
                                             attempts=1)

    async def close(self) -> None:
        await self._session.close()


async def serve(upstream: str, token: str) -> None:
    proxy = BareProxy(upstream, token)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    proxy_pb2_grpc.add_ProxyServiceServicer_to_server(  # type: ignore[no-untyped-call]
        proxy, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"bare-proxy ready: grpc 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)
    await proxy.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_proxy")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.upstream, args.token))


if __name__ == "__main__":
    main()
