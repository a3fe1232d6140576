"""The operations of OANDA's v20 spec the simulator does not implement, refused by name.

Each answers 404 with an `errorMessage` naming the operation (OANDA's REST host answers 404 for
what it does not serve, such as the stream paths). They are registered last, and only where no
handler exists, so that a handler added later (the simulator's streams) takes over; the spec walk
in tests/sim/test_spec_walk.py checks this table against docs/simulator.md.
"""

from __future__ import annotations

from aiohttp import web

from sidecar.sim.wire import json_response

NOT_IMPLEMENTED: dict[tuple[str, str], str] = {
    ("GET", "/v3/instruments/{instrument}/orderBook"): "order books are not simulated",
    ("GET", "/v3/instruments/{instrument}/positionBook"): "position books are not simulated",
    ("GET", "/v3/accounts/{accountID}/pricing/stream"): "streams are served on the stream host",
    ("GET", "/v3/accounts/{accountID}/transactions/stream"):
        "streams are served on the stream host",
}
PREFIX = "Not implemented by the simulator:"


def _routed(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if path:
            out.add((route.method, str(path)))
    return out


def add_routes(app: web.Application) -> None:
    routed = _routed(app)
    for (method, path), why in NOT_IMPLEMENTED.items():
        if (method, path) in routed:
            continue
        text = f"{PREFIX} {method} {path} ({why}; see docs/simulator.md)"

        async def refuse(request: web.Request, text: str = text) -> web.Response:
            return json_response({"errorMessage": text}, 404)

        app.router.add_route(method, path, refuse)
