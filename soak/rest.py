"""Reads through the sidecar's OANDA REST listener (`server.rest_listen`), as a bot written for
OANDA's own libraries sends them: plain HTTP, a placeholder token the sidecar replaces.

Outcomes use the vocabulary of `soak.traffic`, prefixed `rest:` unless `ok`: the sidecar's own
decisions are OANDA-shaped JSON whose `errorCode` is the reason; OANDA's errors pass unchanged.
"""

from __future__ import annotations

import json

import aiohttp

from soak.traffic import http_outcome

TIMEOUT_S = 15.0
# The driver's connections to the listener are bounded: an unbounded pool grows with every
# burst (a machine stall) and keeps the extra connections alive, and the sidecar's fds and
# tasks then step up with the driver's pool, not with anything of its own.
MAX_CONNECTIONS = 8
_REASONS = frozenset({"INVALID_REQUEST", "CIRCUIT_OPEN", "RATE_LIMITED", "SIDECAR_OVERLOADED",
                      "READ_ONLY", "DEADLINE_EXCEEDED", "UPSTREAM_UNAVAILABLE",
                      "OUTCOME_UNKNOWN", "INTERNAL"})


def rest_outcome(status: int, body: bytes, from_cache: bool) -> str:
    if from_cache:
        return "rest:cached"
    if status < 400:
        return "ok"
    try:
        code = json.loads(body).get("errorCode")
    except (ValueError, AttributeError):
        code = None
    return f"rest:{code.lower()}" if code in _REASONS else f"rest:{http_outcome(status)}"


class RestReader:
    """GETs through the REST listener at `base_url` (opened lazily, closed by `close`)."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url
        self._session: aiohttp.ClientSession | None = None

    async def get(self, path: str, query: dict[str, str]) -> str:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
                headers={"Authorization": "Bearer placeholder-the-sidecar-replaces"},
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))
        try:
            async with self._session.get(self._base + path, params=query) as resp:
                body = await resp.read()
                return rest_outcome(resp.status, body,
                                    resp.headers.get("X-Sidecar-From-Cache") == "true")
        except TimeoutError:
            return "rest:timeout"
        except aiohttp.ClientError as exc:
            return f"rest:{type(exc).__name__}"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
