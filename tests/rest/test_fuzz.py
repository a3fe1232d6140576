"""A fuzz of the REST listener's HTTP front, with Hypothesis: requests built from valid and
nasty parts go over real HTTP/1.1 to the real sidecar, in front of an upstream that records
what reaches it and answers 200 to everything.

Both ways: whatever the validator (the one rule set, shared with Execute, checked against its
own reference model in tests/policies/test_validation.py) refuses is answered 400
INVALID_REQUEST and reaches nothing; whatever it admits reaches the upstream unchanged — path as
sent, query, body, the two OANDA headers — and nothing valid is refused.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, quote

import aiohttp
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from yarl import URL

from sidecar.app import App
from sidecar.errors import InvalidRequest
from sidecar.pipeline import Call
from sidecar.policies.validation import validate
from tests.e2e.conftest import SidecarFactory
from tests.rest.test_listener import Seen, recorder  # noqa: F401  (fixture)

SEGMENT = st.text(alphabet=st.sampled_from(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_~@.!$&'()*+,;=:"),
    min_size=1, max_size=16)
NASTY = st.sampled_from(["..", "%2e%2E", ".%2e", "%252e%252e", "%0a", "%0D", "%00", "%7f",
                         "%zz", "%", "%C3%A9", "%E2%80%A8", "a%2Fb", "\u00e9", "101-004-1-001",
                         "@cid", "orders", "summary", "stream"])
# Weighted towards valid parts: about a third of the requests are admitted.
PATHS = st.tuples(st.sampled_from(["/v3/"] * 6 + ["/v3/accounts/", "/v2/", "/", "//v3/",
                                                  "/V3/", "/v3//"]),
                  st.lists(st.one_of(SEGMENT, SEGMENT, SEGMENT, NASTY), max_size=6)).map(
    lambda t: t[0] + "/".join(t[1]))
QUERY_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                     max_size=12)
QUERIES = st.one_of(
    st.just(""), st.just(""),
    st.lists(st.tuples(QUERY_TEXT, QUERY_TEXT), max_size=4).map(
        lambda pairs: "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)),
    st.sampled_from(["a=%ff", "a=1&a=2", "=x", "a", "a=%E2%80%A8", "instruments=EUR_USD",
                     "count=5&price=M", "x=%0d%0a"]))
BODIES = st.one_of(st.just(b""), st.just(b""), st.just(b""), st.sampled_from([
    b'{"order": {"type": "MARKET", "units": "1"}}', b"{}", b"[]", b"null", b'{"a": NaN}',
    b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b'{"a": "\xc3\x28"}', b"{not json", b'"text"']),
    st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=6), max_size=3).map(
        lambda d: json.dumps(d).encode()))
HEADERS = st.dictionaries(
    st.sampled_from(["ClientRequestID", "Accept-Datetime-Format", "clientrequestid"]),
    st.one_of(st.sampled_from(["RFC3339", "UNIX", "rfc3339", "bot-1", "x" * 129, "a b"]),
              st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e),
                      min_size=1, max_size=20)),
    max_size=2) | st.just({})
METHODS = st.sampled_from(["GET", "GET", "POST", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
                           "TRACE"])


def expected_refusal(method: str, path: str, query: str, headers: dict[str, str],
                     body: bytes) -> bool:
    """What the validator says of the same request (after HTTP's own query decoding)."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return True
    if len({k for k, _ in pairs}) != len(pairs):
        return True  # a parameter given twice
    call = Call(method=method, path=path, query=dict(pairs), body=body,
                headers={k: v for k, v in headers.items()})
    try:
        validate(call)
    except InvalidRequest:
        return True
    return False


@pytest.fixture
async def fronted(sidecar_factory: SidecarFactory,
                  recorder: tuple[str, list[Seen]]) -> App:  # noqa: F811
    url, _ = recorder
    app: App = await sidecar_factory(oanda={"base_url": url},
                                     rate_limit={"rate_per_s": 10_000, "burst": 10_000})
    return app


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(method=METHODS, path=PATHS, query=QUERIES, headers=HEADERS, body=BODIES)
async def test_nothing_invalid_reaches_upstream_and_nothing_valid_is_refused(
        fronted: App, recorder: tuple[str, list[Seen]],  # noqa: F811
        method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> None:
    if "/stream" in path and path.endswith("stream"):
        return  # the stream paths have their own rules (tests/rest/test_hostile.py)
    _, seen = recorder
    seen.clear()
    headers = {name: value for name, value in headers.items()  # one spelling each: HTTP
               if name == next(n for n in headers if n.lower() == name.lower())}
    refused = expected_refusal(method, path, query, headers, body)
    target = URL(fronted.rest_url + path + (f"?{query}" if query else ""), encoded=True)
    async with aiohttp.ClientSession() as http, http.request(
            method, target, data=body or None,
            headers=headers, skip_auto_headers=("Content-Type",)) as resp:
        status, text = resp.status, await resp.text()
    if not path.isascii():  # not HTTP: aiohttp's parser answers its own 400
        assert status == 400 and seen == [], (path, text)
        event("not HTTP (raw non-ASCII target): 400 from the parser")
        return
    event("refused" if refused else "admitted")
    if refused:
        assert status == 400 and json.loads(text)["errorCode"] == "INVALID_REQUEST", text
        assert seen == [], (method, path, query)
        return
    assert status == 200, (method, path, query, headers, body, text)
    received = seen[-1]
    assert received.method == method and received.raw_path.partition("?")[0] == path
    assert dict(received.query) == dict(parse_qsl(query, keep_blank_values=True))
    assert received.body == body
    for name, value in headers.items():
        assert received.headers[name] == value
