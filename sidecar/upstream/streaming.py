"""OANDA's streaming host over aiohttp: open one chunked stream, read it line by line.

Like the REST transport, this is the one place where aiohttp's exceptions on a stream become
domain errors (`StreamBroken`, `StreamRefused` or the transport's connect errors). Connections
come from the REST transport's session, so they count against the same new-connections budget.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from sidecar.errors import UpstreamConnectionLost, UpstreamError
from sidecar.upstream.transport import translate

# OANDA's lines are small (a price is ~400 bytes); one above this is a broken stream.
MAX_LINE_BYTES = 1024 * 1024
_ERROR_BODY_BYTES = 4096


class StreamBroken(UpstreamConnectionLost):
    """An open stream ended: `reason` is end_of_stream, broken_chunk or read_error."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class StreamRefused(UpstreamError):
    """OANDA answered the stream request with a status other than 200."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"OANDA refused the stream: HTTP {status} "
                         f"{body[:200].decode('utf-8', 'replace')}")
        self.status = status
        self.body = body


class LineReader:
    """The lines of one open stream; `abort()` (the watchdog) ends the read in progress."""

    __slots__ = ("_aborted", "_response")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self._aborted = False

    async def next_line(self) -> bytes:
        """One complete line (newline included); StreamBroken when the stream ends."""
        try:
            line = await self._response.content.readuntil(b"\n", max_size=MAX_LINE_BYTES)
        except aiohttp.ClientPayloadError as exc:
            raise StreamBroken("broken_chunk", f"stream chunk broken: {exc}") from exc
        except HttpProcessingError as exc:  # a line longer than MAX_LINE_BYTES
            raise StreamBroken("broken_chunk", f"stream line too long: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise StreamBroken("read_error", f"stream read failed: {translate(exc).message}",
                               ) from exc
        if not line.endswith(b"\n"):
            if self._aborted:
                raise StreamBroken("aborted", "stream closed by the sidecar")
            if line:
                raise StreamBroken("broken_chunk", "stream ended in the middle of a line")
            raise StreamBroken("end_of_stream", "OANDA ended the stream")
        return line

    def abort(self) -> None:
        self._aborted = True
        self._response.close()


class StreamOpener:
    """Opens `base_url + path` with the OANDA token; yields a LineReader while it is open."""

    def __init__(self, session: Callable[[], aiohttp.ClientSession], base_url: str,
                 token: str | None, connect_timeout_s: float) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._headers = {"User-Agent": "oanda-sidecar", "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        # No total timeout: a stream stays open for days; the watchdog judges silence.
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout_s,
                                              sock_read=None)

    @asynccontextmanager
    async def open(self, path: str, query: dict[str, str]) -> AsyncIterator[LineReader]:
        try:
            response = await self._session().get(
                self._base + path, params=query or None, headers=self._headers,
                timeout=self._timeout, allow_redirects=False)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise translate(exc) from exc
        try:
            if response.status != 200:
                body = await _read_some(response)
                raise StreamRefused(response.status, body)
            yield LineReader(response)
        finally:
            response.close()


async def _read_some(response: aiohttp.ClientResponse) -> bytes:
    try:
        return await response.content.read(_ERROR_BODY_BYTES)
    except (aiohttp.ClientError, OSError, TimeoutError):
        return b""
