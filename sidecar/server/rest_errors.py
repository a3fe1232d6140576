"""Sidecar decisions as the REST listener answers them: OANDA-shaped JSON (CONTRACT §9).

`{"errorCode": REASON, "errorMessage": "..."}` with the HTTP status each error class names
(`SidecarError.http_status`), `Retry-After` (whole seconds, rounded up) where waiting helps, and
`X-Sidecar-Attempts`. OANDA's own error answers never come through here: they pass unchanged.
"""

from __future__ import annotations

import json
import logging
import math

from aiohttp import web

from sidecar.errors import InvalidRequest, OutcomeUnknown, SidecarError

_log = logging.getLogger("sidecar.rest")
ATTEMPTS = "X-Sidecar-Attempts"
CLIENT_ORDER_ID = "X-Sidecar-Client-Order-ID"


def as_sidecar_error(exc: BaseException) -> SidecarError:
    """A SidecarError as it is; anything else is a bug: logged with its traceback, INTERNAL."""
    if isinstance(exc, SidecarError):
        return exc
    _log.error("unexpected error in a REST-listener call", exc_info=exc)
    return SidecarError(f"internal error: {type(exc).__name__}")


def error_body(error: SidecarError) -> dict[str, str]:
    body = {"errorCode": error.reason, "errorMessage": error.describe()}
    if isinstance(error, InvalidRequest) and error.field:
        body["field"] = error.field
    if isinstance(error, OutcomeUnknown):
        for key, name in (("client_order_id", "clientOrderID"),
                          ("since_transaction_id", "sinceTransactionID")):
            if value := error.metadata.get(key):
                body[name] = value
    return body


def error_headers(error: SidecarError) -> dict[str, str]:
    headers = {ATTEMPTS: str(error.attempts)}
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    if client_id := error.metadata.get("client_order_id"):
        headers[CLIENT_ORDER_ID] = client_id
    return headers


def error_response(exc: BaseException, *, status: int | None = None) -> web.Response:
    """The whole answer for `exc`; `status` overrides the class's (413 for a large body)."""
    error = as_sidecar_error(exc)
    return web.Response(status=status or error.http_status,
                        body=json.dumps(error_body(error)).encode(),
                        content_type="application/json", headers=error_headers(error))
