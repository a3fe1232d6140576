"""Input validation: a reference model of the rules, checked both ways with Hypothesis."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.errors import InvalidRequest
from sidecar.pipeline import Call, Response, compose
from sidecar.policies.validation import RequestValidator, validate
from sidecar.upstream.endpoints import resolve

SAFE_SEGMENT = st.text(alphabet=st.sampled_from(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_~@"), min_size=1, max_size=24)
VALID_PATHS = st.lists(SAFE_SEGMENT, min_size=1, max_size=6).map(lambda s: "/v3/" + "/".join(s))
METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"])


def _call(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
          query: dict[str, str] | None = None) -> Call:
    return Call(method=method, path=path, endpoint=resolve(path), body=body,
                headers=headers or {}, query=query or {})


def reference_is_valid(method: str, path: str) -> bool:
    """An independent statement of CONTRACT §3's path and method rules."""
    if method not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
        return False
    if not path.startswith("/v3/") or len(path.encode("utf-8", "surrogatepass")) > 2048:
        return False
    lowered = path.lower()
    if ".." in lowered.replace("%2e", "."):
        return False
    if re.search(r"[\x00-\x1f\x7f]", path) or re.search(r"%(0|1)[0-9a-f]|%7f", lowered):
        return False
    if "://" in path or path.startswith("//"):
        return False
    pchar = r"[A-Za-z0-9\-._~!$&'()*+,;=:@/]*"
    if not re.fullmatch(f"{pchar}(%[0-9A-Fa-f]{{2}}{pchar})*", path):
        return False
    return True


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(method=METHODS, path=VALID_PATHS)
def test_no_valid_request_is_refused(method: str, path: str) -> None:
    body = b'{"order": {}}' if method in ("POST", "PUT", "PATCH") else b""
    validate(_call(method, path, body))


NASTY = st.sampled_from(["..", "%2e%2E", ".%2e", "\r\n", "\n", "\x00", "%0a", "%0D", "%00", "%7f",
                         "//", "://", "?", "#", " ", "\\", "%", "%zz", "https:", "\x7f", "é"])


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.one_of(METHODS, st.text(max_size=8)),
       parts=st.lists(st.one_of(SAFE_SEGMENT, NASTY), min_size=1, max_size=8),
       prefix=st.sampled_from(["/v3/", "/v3/", "/v2/", "", "v3/", "/V3/", "//v3/", "http://h/v3/"]))
async def test_no_invalid_request_reaches_the_upstream(method: str, parts: list[str],
                                                       prefix: str) -> None:
    path = prefix + "/".join(parts)
    sent: list[Call] = []

    async def upstream(call: Call) -> Response:
        sent.append(call)
        return Response(200, b"{}")

    handler = compose([RequestValidator()], upstream)
    try:
        await handler(_call(method, path))
    except InvalidRequest:
        assert sent == []
        return
    # Admitted: it must satisfy the reference rules.
    assert reference_is_valid(method, path), (method, path)
    assert len(sent) == 1


@pytest.mark.parametrize(("fields", "field", "words"), [
    (dict(method="GET", path="/v3/accounts", headers={"authorization": "Bearer x"}), "headers",
     "Authorization"),
    (dict(method="GET", path="/v3/accounts", headers={"X-Forwarded-For": "1"}), "headers",
     "not allowed"),
    (dict(method="GET", path="/v3/accounts", headers={"Accept-Datetime-Format": "ISO"}),
     "headers", "RFC3339"),
    (dict(method="GET", path="/v3/accounts", body=b"{}"), "body", "no body"),
    (dict(method="POST", path="/v3/x", body=b"\xff"), "body", "JSON"),
    (dict(method="GET", path="/v3/accounts", query={"": "1"}), "query", "empty"),
    (dict(method="GET", path="/v3/accounts", query={"a": "b\nc"}), "query", "control"),
])
def test_messages_name_the_rule(fields: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate(_call(**fields))  # type: ignore[arg-type]
    assert caught.value.field == field
    assert words in caught.value.message


def test_allowed_headers_are_canonicalised() -> None:
    call = _call("PUT", "/v3/accounts/1/orders/2/cancel", body=json.dumps({}).encode(),
                 headers={"clientrequestid": "abc", "accept-datetime-format": "UNIX"})
    validate(call)
    assert call.headers == {"ClientRequestID": "abc", "Accept-Datetime-Format": "UNIX"}


@pytest.mark.parametrize(("body", "why"), [
    (b'{"units": NaN}', "NaN"), (b'{"units": Infinity}', "Infinity"),
    ('{"a": 1}'.encode("utf-16"), "UTF-16"), (b'\xef\xbb\xbf{"a": 1}', "byte-order mark"),
    (b"\xff\xfe", "not UTF-8"), (b"[" * 100_000, "nested"), (b"[1, 2]", "not an object"),
])
def test_bodies_that_are_not_plain_utf8_json_objects_are_refused(body: bytes, why: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate(_call("POST", "/v3/accounts/A/orders", body=body))
    assert caught.value.field == "body", why


@pytest.mark.parametrize("value", ["x" * 20_000, "a\u2028b", "a\x85b", "with space", ""])
def test_client_request_ids_are_bounded_and_plain(value: str) -> None:
    with pytest.raises(InvalidRequest):
        validate(_call("PUT", "/v3/accounts/A/orders/1/cancel",
                       headers={"ClientRequestID": value}))


def test_a_plain_client_request_id_passes() -> None:
    call = _call("PUT", "/v3/accounts/A/orders/1/cancel", headers={"clientrequestid": "r-42.x"})
    validate(call)
    assert call.headers == {"ClientRequestID": "r-42.x"}


def test_caller_input_is_quoted_short_in_messages() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate(_call("GET", "/v3/accounts", headers={"X" * 5000: "1"}))
    assert len(caught.value.message) < 200


async def test_the_validator_completes_the_call() -> None:
    seen: list[Call] = []

    async def nxt(call: Call) -> Response:
        seen.append(call)
        return Response(200, b"{}")

    handler = compose([RequestValidator(lambda m, t: t.endswith("/close"))], nxt)
    await handler(Call("PUT", "/v3/accounts/A/trades/7/close"))
    await handler(Call("GET", "/v3/accounts/A/summary", prioritised=True))
    close, read = seen
    assert close.endpoint.template == "/v3/accounts/{accountID}/trades/{tradeSpecifier}/close"
    assert (close.risk_reducing, close.critical) == (True, True)
    assert (read.risk_reducing, read.critical) == (False, True)
