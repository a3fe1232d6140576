"""What every v20 handler needs: the state, the account, the body, and a JSON answer."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sidecar.sim.engine import Outcome
from sidecar.sim.formats import dumps
from sidecar.sim.state import Account, Batch, SimState

STATE = web.AppKey("sim_state", SimState)
REQUEST_ID = web.RequestKey("sim_request_id", str)  # set by the middleware
BODY = web.RequestKey("sim_body", bytes)  # the raw body, read once by the middleware


def json_response(body: dict[str, Any], status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=dumps(body), status=status, headers=headers,
                        content_type="application/json")


class Answered(Exception):
    """Raised by a handler that already knows its (error) answer."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def fail(status: int, text: str, code: str | None = None) -> Answered:
    body = {"errorMessage": text} if code is None else {"errorCode": code, "errorMessage": text}
    return Answered(json_response(body, status))


def state(request: web.Request) -> SimState:
    return request.app[STATE]


def account(request: web.Request) -> Account:
    found = request.app[STATE].accounts.get(request.match_info["accountID"])
    if found is None:
        raise fail(400, "Invalid value specified for 'accountID'")
    return found


def now(request: web.Request) -> float:
    return request.app[STATE].clock.wall()


def batch(request: web.Request, acct: Account) -> Batch:
    return acct.batch(request[REQUEST_ID], now(request))


def body(request: web.Request) -> Any:
    raw = request[BODY]
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise fail(400, "Invalid JSON in the request body") from None


def int_param(request: web.Request, name: str, default: int | None = None,
              maximum: int | None = None) -> int:
    text = request.query.get(name)
    if text is None:
        if default is None:
            raise fail(400, f"Missing required parameter '{name}'")
        return default
    try:
        value = int(text)
    except ValueError:
        raise fail(400, f"Invalid value specified for '{name}'") from None
    if value < 0:
        raise fail(400, f"Invalid value specified for '{name}'")
    if maximum is not None and value > maximum:
        raise fail(400, f"Maximum value for '{name}' exceeded")
    return value


_TRUE, _FALSE = ("true", "True"), ("false", "False")


def flag(request: web.Request, name: str, default: bool) -> bool:
    """A boolean query parameter as OANDA reads it: `true`/`True`, `false`/`False` (OANDA's own
    `v20` library sends Python's spelling); anything else is a 400."""
    text = request.query.get(name)
    if text is None:
        return default
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise fail(400, f"Invalid value specified for '{name}'")


def answer(request: web.Request, acct: Account, outcome: Outcome) -> web.Response:
    """An engine outcome as HTTP; `Location` points at the order it names."""
    headers = None
    if outcome.location is not None:
        url = request.url.origin().with_path(f"/v3/accounts/{acct.id}/orders/{outcome.location}")
        headers = {"Location": str(url)}
    return json_response(outcome.body, outcome.status, headers)
