"""Input validation, the outermost policy: an invalid request never leaves the sidecar."""

from __future__ import annotations

import json
import re

from sidecar.errors import InvalidRequest
from sidecar.pipeline import Call, Handler, Response

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
MAX_PATH_BYTES = 2048
MAX_BODY_BYTES = 1024 * 1024
MAX_QUERY_BYTES = 16 * 1024
# Canonical spelling of each header a caller may send.
ALLOWED_HEADERS = {"accept-datetime-format": "Accept-Datetime-Format",
                   "clientrequestid": "ClientRequestID"}
DATETIME_FORMATS = frozenset({"RFC3339", "UNIX"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ENCODED_CONTROL = re.compile(r"%(?:[01][0-9a-fA-F]|7[fF])")
_PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
_BAD_PERCENT = re.compile(r"%(?![0-9a-fA-F]{2})")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def validate(call: Call) -> None:
    """Raise InvalidRequest naming the first rule the call breaks; canonicalise header names."""
    if call.method not in METHODS:
        raise InvalidRequest(f"method {call.method!r} is not one of GET, POST, PUT, PATCH, DELETE",
                             field="method")
    _validate_path(call.path)
    _validate_query(call.query)
    _validate_body(call)
    call.headers = _validate_headers(call.headers)


def _validate_path(path: str) -> None:
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidRequest(f"path is longer than {MAX_PATH_BYTES} bytes", field="path")
    if _CONTROL.search(path) or _ENCODED_CONTROL.search(path):
        raise InvalidRequest("path contains a control character (CR, LF, NUL, ...)", field="path")
    if _SCHEME.match(path) or path.startswith("//") or "://" in path:
        raise InvalidRequest("path must not contain a scheme or host; send only the /v3/... path",
                             field="path")
    if not path.startswith("/v3/"):
        raise InvalidRequest("path must start with /v3/", field="path")
    if ".." in path.lower().replace("%2e", "."):
        raise InvalidRequest("path must not contain '..' (plain or percent-encoded)", field="path")
    if "?" in path or "#" in path:
        raise InvalidRequest("path must not contain '?' or '#'; put parameters in `query`",
                             field="path")
    if not _PATH_CHARS.fullmatch(path):
        raise InvalidRequest("path contains characters not allowed in a URL path", field="path")
    if _BAD_PERCENT.search(path):
        raise InvalidRequest("path contains a malformed percent-escape", field="path")


def _validate_query(query: dict[str, str]) -> None:
    size = 0
    for key, value in query.items():
        if not key:
            raise InvalidRequest("query has an empty parameter name", field="query")
        if _CONTROL.search(key) or _CONTROL.search(value):
            raise InvalidRequest(f"query parameter {key!r} contains a control character",
                                 field="query")
        size += len(key) + len(value)
    if size > MAX_QUERY_BYTES:
        raise InvalidRequest(f"query is larger than {MAX_QUERY_BYTES} bytes", field="query")


def _validate_body(call: Call) -> None:
    if not call.body:
        return
    if len(call.body) > MAX_BODY_BYTES:
        raise InvalidRequest(f"body is larger than {MAX_BODY_BYTES} bytes (1 MiB)", field="body")
    if call.method in ("GET", "DELETE"):
        raise InvalidRequest(f"{call.method} requests carry no body", field="body")
    try:
        json.loads(call.body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("body is not valid JSON", field="body") from None


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
            raise InvalidRequest(f"header {name!r} is not allowed (allowed: "
                                 "Accept-Datetime-Format, ClientRequestID)", field="headers")
        if _CONTROL.search(value) or not value:
            raise InvalidRequest(f"header {name!r} has an empty value or a control character",
                                 field="headers")
        if canonical == "Accept-Datetime-Format" and value not in DATETIME_FORMATS:
            raise InvalidRequest("Accept-Datetime-Format must be RFC3339 or UNIX", field="headers")
        clean[canonical] = value
    return clean


class RequestValidator:
    """The validation policy: refuses before anything is queued, counted or sent."""

    async def handle(self, call: Call, next: Handler) -> Response:
        validate(call)
        return await next(call)
