"""Deterministic control of the market, in-process (`sim.controls`) and under `/_sim/`:
hold, step or release an instrument's price; force the market open or closed; script
maintenance windows; set an account's guaranteed stop loss mode.

Every change first lets pending orders meet the market as it was, then applies the change and
lets them meet the new market at the same instant, so a held price that crosses an order fills
it before the call returns.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from sidecar.clock import Clock
from sidecar.sim.calendar import MarketCalendar, Window
from sidecar.sim.formats import parse_decimal, parse_time
from sidecar.sim.market import INSTRUMENTS
from sidecar.sim.state import GSL_MODES, SimState
from sidecar.sim.triggers import settle
from sidecar.sim.wire import json_response


class MarketControls:
    def __init__(self, state: SimState, calendar: MarketCalendar, clock: Clock) -> None:
        self._state, self._calendar, self._clock = state, calendar, clock

    def _change(self) -> float:
        now = self._clock.wall()
        settle(self._state, now)
        return now

    def hold(self, instrument: str, *, mid: Decimal | None = None, bid: Decimal | None = None,
             ask: Decimal | None = None, step: Decimal | None = None) -> dict[str, Any]:
        """Quote `instrument` at `mid` (usual spread), at `bid`/`ask`, or `step` away from
        where it is now, until released; ValueError names a bad argument."""
        if instrument not in INSTRUMENTS:
            raise ValueError(f"unknown instrument {instrument!r}")
        market, now = self._state.market, self._change()
        if step is not None:
            mid = market.quote(instrument, now).mid + step
        if mid is not None:
            market.hold_mid(instrument, mid)
        elif bid is not None and ask is not None:
            market.hold(instrument, bid, ask)
        else:
            raise ValueError("give mid, bid and ask, or step")
        settle(self._state, now, again=True)
        return self.price(instrument)

    def release(self, instrument: str | None = None) -> None:
        """Back to the seeded formula (one instrument, or all)."""
        now = self._change()
        holds = self._state.market.holds
        if instrument is None:
            holds.clear()
        else:
            holds.pop(instrument, None)
        settle(self._state, now, again=True)

    def price(self, instrument: str) -> dict[str, Any]:
        market, now = self._state.market, self._clock.wall()
        q = market.quote(instrument, now)
        return {"instrument": instrument, "bid": q.bid, "ask": q.ask,
                "held": instrument in market.holds, "tradeable": market.tradeable(now)}

    def set_market(self, mode: str) -> dict[str, Any]:
        """`open`, `closed` (at once, whatever the schedule says) or `auto` (the schedule)."""
        now = self._change()
        self._calendar.force(mode, now)
        settle(self._state, now, again=True)
        return self._calendar.as_json(now)

    def now(self) -> float:
        return self._clock.wall()

    def calendar(self) -> dict[str, Any]:
        return self._calendar.as_json(self._clock.wall())

    def maintenance(self, start: float, end: float) -> Window:
        return self._calendar.add_maintenance(start, end)

    def set_gsl_mode(self, account_id: str, mode: str) -> None:
        if mode not in GSL_MODES:
            raise ValueError(f"guaranteedStopLossOrderMode must be one of {', '.join(GSL_MODES)}")
        self._state.accounts[account_id].gsl_mode = mode

    def reset(self) -> None:
        self._state.market.holds.clear()
        self._calendar.force("auto", self._clock.wall())
        self._calendar.maintenance.clear()


CONTROLS = web.AppKey("sim_market_controls", MarketControls)


def _bad(text: str) -> web.Response:
    return json_response({"errorMessage": text}, 400)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"errorMessage":"a JSON object is required"}',
                                 content_type="application/json")
    return data


async def put_price(request: web.Request) -> web.Response:
    data = await _json(request)
    unknown = set(data) - {"mid", "bid", "ask", "step"}
    values = {k: parse_decimal(v) for k, v in data.items() if k not in unknown}
    if unknown or any(v is None for v in values.values()):
        return _bad(f"expected decimal strings among mid, bid, ask, step; got {sorted(data)}")
    try:
        return json_response(request.app[CONTROLS].hold(request.match_info["instrument"],
                                                        **values))
    except ValueError as exc:
        return _bad(str(exc))


async def delete_price(request: web.Request) -> web.Response:
    request.app[CONTROLS].release(request.match_info.get("instrument"))
    return json_response({"released": request.match_info.get("instrument", "all")})


async def get_prices(request: web.Request) -> web.Response:
    controls = request.app[CONTROLS]
    return json_response({"prices": [controls.price(i) for i in INSTRUMENTS]})


async def get_calendar(request: web.Request) -> web.Response:
    return json_response(request.app[CONTROLS].calendar())


async def put_calendar(request: web.Request) -> web.Response:
    data = await _json(request)
    if set(data) != {"mode"}:
        return _bad("expected {\"mode\": \"open\" | \"closed\" | \"auto\"}")
    try:
        return json_response(request.app[CONTROLS].set_market(str(data["mode"])))
    except ValueError as exc:
        return _bad(str(exc))


async def post_maintenance(request: web.Request) -> web.Response:
    """`{"duration_s": N}` from now, or `{"from": T, "to": T}` (RFC3339 or UNIX seconds)."""
    data = await _json(request)
    controls = request.app[CONTROLS]
    try:
        if set(data) == {"duration_s"} and isinstance(data["duration_s"], int | float):
            now = controls.now()
            window = controls.maintenance(now, now + float(data["duration_s"]))
        elif set(data) == {"from", "to"}:
            window = controls.maintenance(parse_time(str(data["from"])),
                                          parse_time(str(data["to"])))
        else:
            return _bad("expected {\"duration_s\": N} or {\"from\": T, \"to\": T}")
    except ValueError as exc:
        return _bad(str(exc))
    return json_response(window.as_json())


async def put_account(request: web.Request) -> web.Response:
    data = await _json(request)
    controls, account_id = request.app[CONTROLS], request.match_info["accountID"]
    if set(data) != {"guaranteedStopLossOrderMode"}:
        return _bad("expected {\"guaranteedStopLossOrderMode\": DISABLED | ALLOWED | REQUIRED}")
    try:
        controls.set_gsl_mode(account_id, str(data["guaranteedStopLossOrderMode"]))
    except KeyError:
        return json_response({"errorMessage": f"no account {account_id}"}, 404)
    except ValueError as exc:
        return _bad(str(exc))
    return json_response({"id": account_id, **data})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_sim/prices", get_prices)
    r.add_put("/_sim/prices/{instrument}", put_price)
    r.add_delete("/_sim/prices/{instrument}", delete_price)
    r.add_delete("/_sim/prices", delete_price)
    r.add_get("/_sim/calendar", get_calendar)
    r.add_put("/_sim/calendar", put_calendar)
    r.add_post("/_sim/maintenance", post_maintenance)
    r.add_put("/_sim/accounts/{accountID}", put_account)
