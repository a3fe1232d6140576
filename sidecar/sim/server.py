"""The simulator process: app factory, the /v3 middleware (log, limit, faults, auth), runner.

Order of checks for a /v3 request, each of which every engineer can rely on:
record it → count it in the token's 1 s window → apply matching faults (latency first, then at
most one of status/outage/throttle/reset/hang) → 401 on a bad token → 429 over the limit →
the v20 handler. `drop_after_commit` runs the handler and then resets the connection.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import struct
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from sidecar.clock import Clock, SystemClock
from sidecar.sim import admin, controls, order_faults, persist, refusals, routes, streams
from sidecar.sim.admin import CONTROL, RequestRecord
from sidecar.sim.calendar import MarketCalendar
from sidecar.sim.faults import Fault, FaultRegistry, Plan, fault_body
from sidecar.sim.formats import TIME_FORMAT
from sidecar.sim.market import TICK_S, Market
from sidecar.sim.order_faults import OrderFaults
from sidecar.sim.ratelimit import SlidingWindowLimit
from sidecar.sim.state import SimState
from sidecar.sim.triggers import settle
from sidecar.sim.wire import BODY, REQUEST_ID, STATE, Answered, json_response

log = logging.getLogger(__name__)

UNAUTHORIZED = {"errorMessage": "Insufficient authorization to perform request."}
THROTTLED = {"errorMessage": "Rate limit exceeded. Please reduce request rate."}
MAINTENANCE = {"errorMessage": "Timeout waiting for response."}

__all__ = ["Fault", "RequestRecord", "Simulator", "build_app", "run_simulator"]


class Simulator:
    """A stateful fake OANDA v20 REST API with fault injection, on loopback.

    `calendar` decides when the market trades: in-process the default is always open, so that
    no test depends on today's weekday (`oanda-sidecar sim` closes it at weekends by default).
    `gsl_mode` is the accounts' guaranteedStopLossOrderMode.
    """

    def __init__(self, *, token: str = "sim-token", rate_limit_per_s: int = 120,
                 accounts: int = 1, seed: int = 0, clock: Clock | None = None,
                 request_log_limit: int = 100_000, calendar: MarketCalendar | None = None,
                 gsl_mode: str = "DISABLED", state_file: Path | None = None) -> None:
        self.token = token
        self.state_file = state_file  # kept across restarts when set (sim/persist.py)
        self.request_log_limit = request_log_limit
        self.clock: Clock = clock or SystemClock()
        self.calendar = calendar or MarketCalendar.always_open()
        self.state = SimState(accounts=accounts, seed=seed, clock=self.clock,
                              market=Market(seed, self.calendar), gsl_mode=gsl_mode)
        self.state.request_ids = self.next_request_id
        self.controls = controls.MarketControls(self.state, self.calendar, self.clock)
        self._ticker: asyncio.Task[None] | None = None
        self.faults = FaultRegistry(self.clock, seed)
        self.order_faults = OrderFaults(seed)  # commit-then-503/hang, lookup lag
        self.limiter = SlidingWindowLimit(rate_limit_per_s)
        self.streams = streams.SimStreams(self.state, self.clock)  # pricing/transaction streams
        self.requests: list[RequestRecord] = []
        self._request_ids = itertools.count(60_000_000_000_000_000 + seed * 1_000_000_000)
        self.statuses: Counter[int] = Counter()  # answers per status (faulted ones: none)
        if state_file is not None and state_file.exists():
            first, statuses = persist.restore(self.state, state_file.read_bytes())
            self._request_ids, self.statuses = itertools.count(first), Counter(statuses)
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.url = ""

    @property
    def account_id(self) -> str:
        return next(iter(self.state.accounts))

    @property
    def account_ids(self) -> list[str]:
        return list(self.state.accounts)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Bind and serve; returns (and sets) `url`."""
        self._closing.clear()
        self.streams.reopen()
        runner = web.AppRunner(build_app(self), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        self._ticker = asyncio.create_task(self._tick())
        bound_host, bound_port = runner.addresses[0][:2]
        self.url = f"http://{bound_host}:{bound_port}"
        return self.url

    async def close(self) -> None:
        """Stop serving; hung and delayed requests end at once (their connections reset)."""
        self._closing.set()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self.streams.close()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            try:
                await runner.cleanup()
            finally:
                self._save()

    def _save(self) -> None:
        if self.state_file is not None:  # after cleanup: no request changes it any more
            persist.save(self.state_file, persist.snapshot(
                self.state, next(self._request_ids), self.statuses))

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def reset(self) -> None:
        """Fresh accounts, no faults, empty request log and rate-limit windows."""
        self.state.reset()
        self.controls.reset()
        self.faults.clear()
        self.order_faults.set_lag(0.0)
        self.streams.faults.clear()
        self.requests.clear()
        self.limiter.reset()

    def next_request_id(self) -> str:
        return str(next(self._request_ids))

    def settle(self) -> None:
        """Let pending orders meet the market up to now (expiries, trailing stops, fills)."""
        settle(self.state, self.clock.wall())

    async def _tick(self) -> None:
        # Real time, like latency faults: pending orders trigger even when nobody polls.
        while await self._pause(TICK_S):
            try:
                self.settle()
            except Exception:  # a bug here must not stop the simulator from serving
                log.exception("simulator: settling pending orders failed")

    async def _pause(self, seconds: float) -> bool:
        """Wait on the wire (real time); False when the simulator closes meanwhile."""
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return True
        return False

    async def _hang(self, request: web.Request) -> None:
        # Until the client gives up (its transport goes away) or the simulator closes.
        while not self._closing.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await self._pause(0.05)

    async def handle_v3(self, request: web.Request, handler: Any) -> web.StreamResponse:
        request_id = self.next_request_id()
        raw = await request.read()
        record = RequestRecord(request.method, request.path, dict(request.query),
                               self.clock.monotonic(), request.headers.get("ClientRequestID"),
                               raw, request_id=request_id)
        if len(self.requests) >= self.request_log_limit:
            # A long-running demo must not grow without bound; tests never get near this.
            del self.requests[: self.request_log_limit // 2]
        self.requests.append(record)
        token = _bearer(request.headers.get("Authorization", ""))
        within_limit = self.limiter.arrive(token, record.at)
        plan = self.faults.plan(request.method, request.path)
        request[REQUEST_ID], request[BODY] = request_id, raw
        TIME_FORMAT.set("UNIX" if request.headers.get("Accept-Datetime-Format", "").upper()
                        == "UNIX" else "RFC3339")
        if plan is not None:
            record.faults = plan.fault_ids
        handler = self.order_faults.reads(request, handler)
        response = await self._answer(request, handler, plan, token, within_limit)
        action = plan.action if plan is not None else None
        response = await self.order_faults.after_commit(request, action, response, self._hang)
        if response is None or (action is not None and action.kind == "drop_after_commit"):
            _reset_connection(request)
            return web.Response(status=204)  # never sent: the connection is gone
        response.headers["RequestID"] = request_id
        record.status = response.status
        self.statuses[response.status] += 1
        return response

    async def _answer(self, request: web.Request, handler: Any, plan: Plan | None, token: str,
                      within_limit: bool) -> web.Response | None:
        action = plan.action if plan is not None else None
        if plan is not None and plan.latency_s > 0 and not await self._pause(plan.latency_s):
            return None
        if action is not None and action.kind == "hang":
            await self._hang(request)
            return None
        if action is not None and action.resets:
            return None
        if action is not None and action.answers:
            text, content_type = fault_body(action)
            return web.Response(text=text, status=action.answer_status, content_type=content_type)
        if self.calendar.in_maintenance(self.clock.wall()):
            return json_response(MAINTENANCE, 503)
        if token != self.token:
            return json_response(UNAUTHORIZED, 401)
        if not within_limit:
            return json_response(THROTTLED, 429)
        self.settle()
        return await _dispatch(request, handler)


def _bearer(header: str) -> str:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _reset_connection(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER 0: close with an RST, as a dropped connection looks to a client.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _dispatch(request: web.Request, handler: Any) -> web.Response:
    try:
        response: web.Response = await handler(request)
    except Answered as answered:
        return answered.response
    except web.HTTPException as exc:  # the router's 404 and 405
        text = {404: "The requested resource does not exist.",
                405: f"The method {request.method} is not allowed for this resource."}
        body = {"errorMessage": text.get(exc.status, exc.reason)}
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_response(body, exc.status, headers)
    except Exception:
        log.exception("simulator handler failed for %s %s", request.method, request.path)
        return json_response({"errorMessage": "Internal simulator error."}, 500)
    return response


def build_app(sim: Simulator) -> web.Application:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/v3/") or request.path == "/v3":
            return await sim.handle_v3(request, handler)
        response = await _dispatch(request, handler)
        response.headers["RequestID"] = sim.next_request_id()
        return response

    app = web.Application(middlewares=[middleware], client_max_size=2 * 1024 * 1024)
    app[STATE] = sim.state
    app[CONTROL] = sim
    app[controls.CONTROLS] = sim.controls
    routes.add_routes(app)
    streams.add_routes(app, sim.streams)
    admin.add_routes(app)
    controls.add_routes(app)
    order_faults.add_routes(app, sim.order_faults)
    refusals.add_routes(app)  # last: only where nothing else answers
    return app


async def run_simulator(host: str, port: int, token: str = "sim-token", *,
                        rate_limit_per_s: int = 120, accounts: int = 1, seed: int = 0,
                        calendar: MarketCalendar | None = None,
                        gsl_mode: str = "DISABLED", state_file: Path | None = None) -> None:
    """`oanda-sidecar sim`: serve until cancelled, announcing the URL on one line. The market
    closes at weekends (Friday 21:00 to Sunday 21:00 UTC) unless `calendar` says otherwise.
    With `state_file`, accounts are read from it at start and written to it at the end."""
    sim = Simulator(token=token, rate_limit_per_s=rate_limit_per_s, accounts=accounts, seed=seed,
                    calendar=calendar or MarketCalendar(), gsl_mode=gsl_mode,
                    state_file=state_file)
    await sim.start(host, port)
    print(f"simulator listening on {sim.url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.close()
