"""The fault-injection and inspection API under `/_sim/` (no auth)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from sidecar.sim.faults import Fault, FaultRegistry
from sidecar.sim.state import SimState
from sidecar.sim.stream_faults import StreamFault
from sidecar.sim.streams import STREAMS
from sidecar.sim.wire import json_response


@dataclass(slots=True)
class RequestRecord:
    """One request that arrived on /v3, faulted or not."""

    method: str
    path: str
    query: dict[str, str]
    at: float  # monotonic arrival time
    client_request_id: str | None
    body: bytes
    status: int | None = None  # None: dropped, reset or hung
    request_id: str = ""
    faults: list[str] = field(default_factory=list)  # IDs of the faults that hit it

    @property
    def client_order_id(self) -> str | None:
        """`order.clientExtensions.id` of an order request, to follow retries of one order."""
        try:
            ext = json.loads(self.body)["order"]["clientExtensions"]["id"]
        except (ValueError, KeyError, TypeError):
            return None
        return ext if isinstance(ext, str) else None

    def as_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "query": self.query, "at": self.at,
                "clientRequestID": self.client_request_id, "requestID": self.request_id,
                "clientOrderID": self.client_order_id,
                "body": self.body.decode("utf-8", "replace"), "status": self.status,
                "faults": self.faults}


class Controllable(Protocol):
    faults: FaultRegistry
    requests: list[RequestRecord]
    state: SimState

    def reset(self) -> None: ...


CONTROL = web.AppKey("sim_control", Controllable)


async def add_fault(request: web.Request) -> web.Response:
    data = await request.json()
    if isinstance(data, dict) and str(data.get("kind", "")).startswith("stream_"):
        return add_stream_fault(request, data)  # the streams' faults (sim/stream_faults.py)
    try:
        fault = Fault.from_json(data)
    except (ValueError, TypeError) as exc:
        return json_response({"errorMessage": f"invalid fault: {exc}"}, 400)
    return json_response({"id": request.app[CONTROL].faults.add(fault)})


def add_stream_fault(request: web.Request, data: dict[str, Any]) -> web.Response:
    try:
        fault = StreamFault.from_json(data)
    except (ValueError, TypeError) as exc:
        return json_response({"errorMessage": f"invalid fault: {exc}"}, 400)
    return json_response({"id": request.app[STREAMS].faults.add(fault)})


async def list_faults(request: web.Request) -> web.Response:
    return json_response({"faults": request.app[CONTROL].faults.list()
                          + request.app[STREAMS].faults.list()})


async def clear_faults(request: web.Request) -> web.Response:
    request.app[CONTROL].faults.clear()
    request.app[STREAMS].faults.clear()
    return json_response({"cleared": True})


async def delete_fault(request: web.Request) -> web.Response:
    fault_id = request.match_info["id"]
    if not (request.app[CONTROL].faults.remove(fault_id)
            or request.app[STREAMS].faults.remove(fault_id)):
        return json_response({"errorMessage": "no such fault"}, 404)
    return json_response({"deleted": request.match_info["id"]})


async def list_requests(request: web.Request) -> web.Response:
    records = request.app[CONTROL].requests
    return json_response({"requests": [r.as_json() for r in records]})


async def clear_requests(request: web.Request) -> web.Response:
    request.app[CONTROL].requests.clear()
    return json_response({"cleared": True})


async def reset(request: web.Request) -> web.Response:
    request.app[CONTROL].reset()
    return json_response({"reset": True})


async def state_counts(request: web.Request) -> web.Response:
    state = request.app[CONTROL].state
    per_account = [{"id": a.id, **state.counts(a)} for a in state.accounts.values()]
    statuses = getattr(request.app[CONTROL], "statuses", {})
    return json_response({**per_account[0], "accounts": per_account,
                          "statuses": {str(k): v for k, v in sorted(statuses.items())}})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/_sim/faults", add_fault)
    r.add_get("/_sim/faults", list_faults)
    r.add_delete("/_sim/faults", clear_faults)
    r.add_delete("/_sim/faults/{id}", delete_fault)
    r.add_get("/_sim/requests", list_requests)
    r.add_delete("/_sim/requests", clear_requests)
    r.add_post("/_sim/reset", reset)
    r.add_get("/_sim/state", state_counts)
