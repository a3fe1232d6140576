"""Input validation, the outermost policy: an invalid request never leaves the sidecar.

Sizes are checked first, before anything is parsed, resolved or remembered. Then the rules, and
last the call is completed: canonical header names, the endpoint its path belongs to, whether it
is risk-reducing (a close or cancel) and its limiter lane. Every later layer sees one canonical
path: dot segments are refused in every encoding, so what the read-only gate judges is what
OANDA receives. Caller input quoted in a message is cut short (`errors.quote`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from urllib.parse import unquote

from sidecar.errors import InvalidRequest, quote
from sidecar.pipeline import METHODS, Call, Handler, Response
from sidecar.upstream.endpoints import resolve

MAX_PATH_BYTES = 2048
MAX_BODY_BYTES = 1024 * 1024
MAX_QUERY_BYTES = 16 * 1024
MAX_HEADER_BYTES = 1024
MAX_CLIENT_REQUEST_ID = 128
# Canonical spelling of each header a caller may send.
ALLOWED_HEADERS = {"accept-datetime-format": "Accept-Datetime-Format",
                   "clientrequestid": "ClientRequestID"}
DATETIME_FORMATS = frozenset({"RFC3339", "UNIX"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_ENCODED_CONTROL = re.compile(r"%(?:[01][0-9a-fA-F]|7[fF])")
_PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
_BAD_PERCENT = re.compile(r"%(?![0-9a-fA-F]{2})")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")

RiskReducing = Callable[[str, str], bool]


def validate(call: Call) -> None:
    """Raise InvalidRequest naming the first rule the call breaks; canonicalise header names."""
    _check_sizes(call)
    if call.method not in METHODS:
        raise InvalidRequest(f"method {quote(call.method)} is not one of GET, POST, PUT, PATCH, "
                             "DELETE", field="method")
    _validate_path(call.path)
    _validate_query(call.query)
    _validate_body(call)
    call.headers = _validate_headers(call.headers)


def _check_sizes(call: Call) -> None:
    if len(call.method) > 16:
        raise InvalidRequest(f"method {quote(call.method)} is not one of GET, POST, PUT, PATCH, "
                             "DELETE", field="method")
    path = call.path
    if len(path) > MAX_PATH_BYTES or (  # a character is at least one byte: no copy to refuse
            not path.isascii() and len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES):
        raise InvalidRequest(f"path is longer than {MAX_PATH_BYTES} bytes", field="path")
    if call.query and sum(len(k) + len(v) for k, v in call.query.items()) > MAX_QUERY_BYTES:
        raise InvalidRequest(f"query is larger than {MAX_QUERY_BYTES} bytes", field="query")
    if len(call.body) > MAX_BODY_BYTES:
        raise InvalidRequest(f"body is larger than {MAX_BODY_BYTES} bytes (1 MiB)", field="body")
    if call.headers and sum(len(k) + len(v) for k, v in call.headers.items()) > MAX_HEADER_BYTES:
        raise InvalidRequest(f"headers are larger than {MAX_HEADER_BYTES} bytes", field="headers")


def _validate_path(path: str) -> None:
    if _CONTROL.search(path) or _ENCODED_CONTROL.search(path):
        raise InvalidRequest("path contains a control character (CR, LF, NUL, ...)", field="path")
    if _SCHEME.match(path) or path.startswith("//") or "://" in path:
        raise InvalidRequest("path must not contain a scheme or host; send only the /v3/... path",
                             field="path")
    if not path.startswith("/v3/"):
        raise InvalidRequest("path must start with /v3/", field="path")
    if "?" in path or "#" in path:
        raise InvalidRequest("path must not contain '?' or '#'; put parameters in `query`",
                             field="path")
    if not _PATH_CHARS.fullmatch(path):
        raise InvalidRequest("path contains characters not allowed in a URL path", field="path")
    if _BAD_PERCENT.search(path):
        raise InvalidRequest("path contains a malformed percent-escape", field="path")
    if any(_is_dot_segment(segment) for segment in path.split("/")):
        raise InvalidRequest("path must not contain '.' or '..' segments (plain or "
                             "percent-encoded, once or twice)", field="path")


def _is_dot_segment(segment: str) -> bool:
    if "." not in segment and "%" not in segment:
        return False
    once = unquote(segment)
    return segment in (".", "..") or once in (".", "..") or unquote(once) in (".", "..") \
        or ".." in once or ".." in unquote(once)


def _validate_query(query: dict[str, str]) -> None:
    for key, value in query.items():
        if not key:
            raise InvalidRequest("query has an empty parameter name", field="query")
        if _CONTROL.search(key) or _CONTROL.search(value):
            raise InvalidRequest(f"query parameter {quote(key)} contains a control character",
                                 field="query")


def _validate_body(call: Call) -> None:
    if not call.body:
        return
    if call.method in ("GET", "DELETE"):
        raise InvalidRequest(f"{call.method} requests carry no body", field="body")
    try:
        text = call.body.decode("utf-8")  # strict: UTF-16 and invalid bytes are refused
        parsed = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidRequest("body is nested too deeply", field="body") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("body is not valid UTF-8 JSON (no byte-order mark, NaN or "
                             "Infinity)", field="body") from None
    if not isinstance(parsed, dict):
        raise InvalidRequest("body must be a JSON object", field="body")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _validate_headers(headers: dict[str, str]) -> dict[str, str]:
    if not headers:
        return headers
    clean: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower == "authorization":
            raise InvalidRequest("the Authorization header is added by the sidecar; a caller's "
                                 "is refused, never forwarded", field="headers")
        canonical = ALLOWED_HEADERS.get(lower)
        if canonical is None:
            raise InvalidRequest(f"header {quote(name)} is not allowed (allowed: "
                                 "Accept-Datetime-Format, ClientRequestID)", field="headers")
        if _CONTROL.search(value) or not value:
            raise InvalidRequest(f"header {canonical} has an empty value or a control character",
                                 field="headers")
        _check_header_value(canonical, value)
        clean[canonical] = value
    return clean


def _check_header_value(name: str, value: str) -> None:
    if name == "Accept-Datetime-Format" and value not in DATETIME_FORMATS:
        raise InvalidRequest("Accept-Datetime-Format must be RFC3339 or UNIX", field="headers")
    if name == "ClientRequestID" and (len(value) > MAX_CLIENT_REQUEST_ID
                                      or not _VISIBLE_ASCII.fullmatch(value)):
        raise InvalidRequest(f"ClientRequestID must be 1 to {MAX_CLIENT_REQUEST_ID} visible "
                             "ASCII characters", field="headers")


class RequestValidator:
    """The validation policy: refuses before anything is queued, counted or sent, then completes
    the call (endpoint, risk-reducing, lane)."""

    __slots__ = ("_risk_reducing",)

    def __init__(self, risk_reducing: RiskReducing | None = None) -> None:
        self._risk_reducing = risk_reducing

    async def handle(self, call: Call, next: Handler) -> Response:
        validate(call)
        call.endpoint = resolve(call.path)
        if self._risk_reducing is not None:
            call.risk_reducing = self._risk_reducing(call.method, call.endpoint.template)
        call.critical = call.prioritised or call.risk_reducing
        return await next(call)
