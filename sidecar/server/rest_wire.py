"""HTTP ↔ domain for the REST listener: a request's parts as a `Call`, a `Response` as HTTP.

Only what OANDA's REST defines passes in (the path as sent, the query, the body, the
`Accept-Datetime-Format` and `ClientRequestID` headers); the caller's `Authorization` and every
other header are dropped — the transport adds the sidecar's token. Every rule about what is
valid is the validator's (sidecar.policies.validation): here only what HTTP itself can get wrong
(a query that is not UTF-8, a parameter given twice, a body too large to read).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from aiohttp import web
from multidict import CIMultiDictProxy

from sidecar.errors import InvalidRequest
from sidecar.pipeline import Call, Response
from sidecar.policies.validation import ALLOWED_HEADERS, MAX_BODY_BYTES, MAX_QUERY_BYTES
from sidecar.server.rest_errors import ATTEMPTS, CLIENT_ORDER_ID
from sidecar.vocabulary import Level

# The headers of OANDA's answer the listener hands back (the transport keeps only these).
_PASSED = ("RequestID", "Location", "Link", "Content-Type")
FROM_CACHE = "X-Sidecar-From-Cache"
RECONCILED = "X-Sidecar-Reconciled"
DEGRADATION = "X-Sidecar-Degradation"
SINCE = "X-Sidecar-Since-Transaction-ID"


class BodyTooLarge(InvalidRequest):
    """A body over 1 MiB: refused unread (413), the connection closed behind the answer."""

    http_status = 413


def path_of(request: web.Request) -> str:
    """The path exactly as the caller sent it (percent-escapes kept): the validator judges it."""
    return request.raw_path.partition("?")[0]


def query_of(request: web.Request) -> dict[str, str]:
    raw = request.rel_url.raw_query_string
    if not raw:
        return {}
    if len(raw) > MAX_QUERY_BYTES * 3:  # every character percent-escaped at most
        raise InvalidRequest(f"query is larger than {MAX_QUERY_BYTES} bytes", field="query")
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, errors="strict",
                          max_num_fields=1000)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("query is not valid UTF-8 percent-encoding (or has more than "
                             "1000 parameters)", field="query") from None
    query: dict[str, str] = {}
    for key, value in pairs:
        if key in query:
            raise InvalidRequest(f"query parameter {key[:64]!r} is given twice; OANDA takes "
                                 "one value (a comma-separated list where it takes several)",
                                 field="query")
        query[key] = value
    return query


def headers_of(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    """The headers OANDA's REST defines, as sent; the rest (Authorization first) dropped."""
    picked: dict[str, str] = {}
    for canonical in ALLOWED_HEADERS.values():
        values = headers.getall(canonical, ())
        if len(values) > 1:
            raise InvalidRequest(f"header {canonical} is given twice", field="headers")
        if values:
            picked[canonical] = values[0]
    return picked


async def body_of(request: web.Request) -> bytes:
    """The body, read only when it can be within the limit."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise BodyTooLarge(f"body is larger than {MAX_BODY_BYTES} bytes (1 MiB)", field="body")
    if not request.body_exists:
        return b""
    try:
        return await request.content.readexactly(request.content_length) \
            if request.content_length is not None else await _read_capped(request)
    except (ValueError, OSError, EOFError) as exc:  # asyncio.IncompleteReadError is an EOFError
        raise InvalidRequest(f"the body could not be read: {type(exc).__name__}",
                             field="body") from None


async def _read_capped(request: web.Request) -> bytes:
    """A chunked body: read up to the limit and refuse beyond it."""
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise BodyTooLarge(f"body is larger than {MAX_BODY_BYTES} bytes (1 MiB)",
                               field="body")
    return bytes(body)


def fill(call: Call, query: dict[str, str], headers: dict[str, str], body: bytes) -> None:
    call.query, call.headers, call.body = query, headers, body


def answer(response: Response) -> web.Response:
    """OANDA's answer unchanged, with what the sidecar did in X-Sidecar-* headers."""
    headers = {name: response.headers[name] for name in _PASSED if name in response.headers}
    headers[ATTEMPTS] = str(response.attempts)
    if response.from_cache:
        headers[FROM_CACHE] = "true"
        headers["Age"] = str(response.cache_age_ms // 1000)
    if response.reconciled:
        headers[RECONCILED] = "true"
    if response.client_order_id:
        headers[CLIENT_ORDER_ID] = response.client_order_id
    if response.degradation != Level.NONE:
        headers[DEGRADATION] = response.degradation.value.upper()
    if response.retry_after_s is not None and response.status in (429, 503):
        headers["Retry-After"] = str(max(1, round(response.retry_after_s)))
    return web.Response(status=response.status, body=response.body, headers=headers)
