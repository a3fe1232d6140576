"""Admin HTTP: /healthz, /readyz, /metrics, /api/status and the dashboard at /.

Each handler's docstring says what the endpoint answers; docs/operations.md is rendered from the
routes and those docstrings (`python scripts/opsdoc.py`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

from aiohttp import web
from google.protobuf import json_format

import sidecar
from sidecar.server.convert import status_response
from sidecar.server.http_guard import ConnectionGuard
from sidecar.status import StatusBoard

MetricsRenderer = Callable[[], tuple[bytes, str]]
ExtraStatus = Callable[[], dict[str, Any]]
_log = logging.getLogger("sidecar.admin")


class AdminServer:
    def __init__(self, board: StatusBoard, metrics: MetricsRenderer | None = None,
                 extra_status: ExtraStatus | None = None, *, max_connections: int = 256,
                 header_timeout_s: float = 10.0) -> None:
        self._board = board
        self._metrics = metrics
        self._extra_status: list[ExtraStatus] = [extra_status] if extra_status else []
        self.draining = False
        self.port = 0
        self.guard = ConnectionGuard(max_connections=max_connections,
                                     header_timeout_s=header_timeout_s)
        app = web.Application(middlewares=[self.guard.middleware])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_handler)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/", self._dashboard)
        self.app = app

    def set_extra_status(self, *extras: ExtraStatus) -> None:
        """Replace the providers whose dicts are merged into /api/status (later keys win)."""
        self._extra_status = list(extras)

    def add_extra_status(self, extra: ExtraStatus) -> None:
        """Add one more provider to /api/status, next to those already set."""
        self._extra_status.append(extra)

    async def start(self, host: str, port: int) -> int:
        self.port = await self.guard.start(self.app, host, port)
        return self.port

    async def stop(self) -> None:
        await self.guard.stop()

    async def _healthz(self, request: web.Request) -> web.Response:
        """`200 ok` while the process serves (a liveness probe; never about OANDA)."""
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        """`200 ready` once the gRPC and admin listeners serve; `503 starting` before, `503
        draining` after SIGTERM. Never about OANDA: an OANDA outage must not pull every pod."""
        if self._board.ready and not self.draining:
            return web.Response(text="ready\n")
        reason = "draining" if self.draining else "starting"
        return web.Response(status=503, text=f"{reason}\n")

    async def _metrics_handler(self, request: web.Request) -> web.Response:
        """Every metric, Prometheus text format 0.0.4 (`404` when metrics are off)."""
        if self._metrics is None:
            return web.Response(status=404, text="metrics are not enabled\n")
        body, content_type = self._metrics()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _status(self, request: web.Request) -> web.Response:
        """The `GetStatus` answer as JSON (proto field names in lowerCamelCase), with `alerts`
        (the latest alerts) and `activity` (15 minutes of call counts, recent errors) beside it."""
        message = status_response(self._board.snapshot(), sidecar.__version__)
        # snake_case, as grpcurl prints it and as the alerts and activity are spelled.
        payload = json_format.MessageToDict(message, always_print_fields_with_no_presence=True,
                                            preserving_proto_field_name=True)
        for extra in self._extra_status:
            try:
                payload.update(extra())
            except Exception:  # one broken provider must not blank the whole dashboard
                _log.exception("status provider failed")
        return web.Response(text=json.dumps(payload), content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    async def _dashboard(self, request: web.Request) -> web.Response:
        """The dashboard: one HTML page that polls `/api/status`."""
        page = resources.files("sidecar.server") / "dashboard" / "index.html"
        try:
            html = page.read_text()
        except FileNotFoundError:
            html = "<!doctype html><title>oanda-sidecar</title><p>See /api/status.</p>"
        return web.Response(text=html, content_type="text/html",
                            headers={"Cache-Control": "no-store"})
