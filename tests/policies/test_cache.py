"""The cache fallback policy, the response cache (memory backend) and the read-only gate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.clock import FakeClock
from sidecar.config import DegradationConfig
from sidecar.errors import CircuitOpen, RateLimited, ReadOnly, UpstreamConnectError
from sidecar.events import CacheFailed, CacheServed, EventBus
from sidecar.pipeline import Call, Response
from sidecar.policies.cache import (
    CachedResponse,
    CacheFallbackPolicy,
    ResponseCache,
    cache_scope,
    decode_entry,
    encode_entry,
)
from sidecar.policies.readonly import ReadOnlyGate
from sidecar.upstream.endpoints import DEFAULT_CRITICAL, PatternSet, resolve
from tests.conftest import RecordingBus

ACCOUNT = "/v3/accounts/101-004-1435156-001"


@dataclass
class Levels:
    level: str = "none"
    reason: str = "test"


@dataclass
class Upstream:
    """A scripted transport: each item is a Response or an exception to raise."""

    script: list[Response | Exception] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    async def __call__(self, call: Call) -> Response:
        self.calls.append(f"{call.method} {call.path}")
        item = self.script.pop(0) if self.script else Response(200, b'{"fresh":true}')
        if isinstance(item, Exception):
            raise item
        return item


def call(path: str, method: str = "GET", **kw: Any) -> Call:
    return Call(method=method, path=path, endpoint=resolve(path), **kw)


def ok(body: bytes = b'{"n":1}') -> Response:
    return Response(200, body, {"RequestID": "42", "Content-Type": "application/json"})


@pytest.fixture
def cache(clock: FakeClock, bus: RecordingBus) -> ResponseCache:
    return ResponseCache.from_config(DegradationConfig(cache_max_entries=3), clock, bus)


def policy(cache: ResponseCache, clock: FakeClock, bus: EventBus, levels: Levels | None = None,
           token: str = "token-a", **config: Any) -> CacheFallbackPolicy:
    return CacheFallbackPolicy(cache, levels or Levels(), DegradationConfig(**config), clock, bus,
                               cache_scope("http://oanda", token))


async def test_a_failing_read_is_answered_from_cache_with_its_age(
        cache: ResponseCache, clock: FakeClock, bus: RecordingBus) -> None:
    p, upstream = policy(cache, clock, bus), Upstream([ok(), UpstreamConnectError("down")])
    first = await p.handle(call(f"{ACCOUNT}/summary"), upstream)
    assert not first.from_cache
    clock.advance(2.5)
    served = await p.handle(call(f"{ACCOUNT}/summary"), upstream)
    assert served.from_cache and served.cache_age_ms == 2500
    assert (served.status, served.body, served.headers["RequestID"]) == (200, b'{"n":1}', "42")
    assert [(e.endpoint, e.age_s) for e in bus.of(CacheServed)] == [
        ("/v3/accounts/{accountID}/summary", 2.5)]


@pytest.mark.parametrize("failure", [
    UpstreamConnectError("refused"), CircuitOpen("open", retry_after_s=3),
    Response(503, b"{}"), Response(502, b""), Response(429, b"{}")])
async def test_upstream_failures_fall_back(cache: ResponseCache, clock: FakeClock,
                                           bus: RecordingBus, failure: Any) -> None:
    p = policy(cache, clock, bus)
    await p.handle(call(ACCOUNT), Upstream([ok()]))
    answer = await p.handle(call(ACCOUNT), Upstream([failure]))
    assert answer.from_cache and answer.status == 200


@pytest.mark.parametrize("failure", [
    RateLimited("slow down", retry_after_s=1), Response(401, b"{}"), Response(404, b"{}")])
async def test_caller_and_answer_errors_are_not_hidden(cache: ResponseCache, clock: FakeClock,
                                                       bus: RecordingBus, failure: Any) -> None:
    p = policy(cache, clock, bus)
    await p.handle(call(ACCOUNT), Upstream([ok()]))
    if isinstance(failure, Exception):
        with pytest.raises(type(failure)):
            await p.handle(call(ACCOUNT), Upstream([failure]))
    else:
        assert (await p.handle(call(ACCOUNT), Upstream([failure]))).status == failure.status


async def test_nothing_cached_means_the_error_goes_through(
        cache: ResponseCache, clock: FakeClock, bus: RecordingBus) -> None:
    p = policy(cache, clock, bus)
    with pytest.raises(UpstreamConnectError):
        await p.handle(call(ACCOUNT), Upstream([UpstreamConnectError("down")]))
    assert (await p.handle(call(ACCOUNT), Upstream([Response(503, b"x")]))).status == 503


async def test_only_successful_gets_of_read_endpoints_are_kept(
        cache: ResponseCache, clock: FakeClock, bus: RecordingBus) -> None:
    p = policy(cache, clock, bus)
    upstream = Upstream([Response(201, b"{}"), Response(404, b"{}"), Response(503, b"{}"),
                         ok(), ok()])
    await p.handle(call(f"{ACCOUNT}/orders", "POST", body=b"{}"), upstream)
    await p.handle(call(f"{ACCOUNT}/orders/9"), upstream)
    await p.handle(call(f"{ACCOUNT}/openTrades"), upstream)
    await p.handle(call(f"{ACCOUNT}/transactions/sinceid"), upstream)  # not a cached template
    assert len(cache) == 0
    await p.handle(call(f"{ACCOUNT}/openTrades"), upstream)
    assert len(cache) == 1


async def test_entries_expire_by_endpoint_and_pricing_stays_short(
        cache: ResponseCache, clock: FakeClock, bus: RecordingBus) -> None:
    p = policy(cache, clock, bus, cache_default_ttl_s=300, pricing_max_age_s=5,
               cache_ttls={"/v3/accounts/{accountID}/pricing": 60})
    assert p.ttl_for("/v3/accounts/{accountID}/pricing") == 5
    assert p.ttl_for("/v3/accounts/{accountID}/instruments") == 3600
    assert p.ttl_for("/v3/accounts/{accountID}/transactions") is None
    pricing, summary = call(f"{ACCOUNT}/pricing", query={"instruments": "EUR_USD"}), call(ACCOUNT)
    await p.handle(pricing, Upstream([ok()]))
    await p.handle(summary, Upstream([ok()]))
    clock.advance(5.5)
    with pytest.raises(UpstreamConnectError):
        await p.handle(pricing, Upstream([UpstreamConnectError("down")]))
    clock.advance(290)
    assert (await p.handle(summary, Upstream([UpstreamConnectError("x")]))).from_cache
    clock.advance(5)
    with pytest.raises(UpstreamConnectError):
        await p.handle(summary, Upstream([UpstreamConnectError("down")]))


async def test_keys_separate_tokens_queries_and_datetime_formats(
        cache: ResponseCache, clock: FakeClock, bus: RecordingBus) -> None:
    mine, theirs = policy(cache, clock, bus, token="a"), policy(cache, clock, bus, token="b")
    path = f"{ACCOUNT}/pricing"
    await mine.handle(call(path, query={"instruments": "EUR_USD", "since": "1"}), Upstream([ok()]))
    down = UpstreamConnectError("down")
    with pytest.raises(UpstreamConnectError):  # same request, another token: nothing crosses
        await theirs.handle(call(path, query={"since": "1", "instruments": "EUR_USD"}),
                            Upstream([down]))
    assert (await mine.handle(call(path, query={"since": "1", "instruments": "EUR_USD"}),
                              Upstream([down]))).from_cache  # query order does not matter
    for other in (call(path, query={"instruments": "USD_JPY", "since": "1"}),
                  call(path, query={"instruments": "EUR_USD", "since": "1"},
                       headers={"Accept-Datetime-Format": "UNIX"})):
        with pytest.raises(UpstreamConnectError):
            await mine.handle(other, Upstream([down]))
    assert cache_scope("http://oanda", "a") not in ("a", cache_scope("http://other", "a"))


async def test_while_degraded_fresh_entries_answer_first(
        cache: ResponseCache, clock: FakeClock, bus: RecordingBus) -> None:
    levels = Levels()
    p = policy(cache, clock, bus, levels)
    await p.handle(call(ACCOUNT), Upstream([ok()]))
    levels.level = "cached_data"
    upstream = Upstream()
    answer = await p.handle(call(ACCOUNT), upstream)
    assert answer.from_cache and answer.attempts == 0 and answer.degradation == "cached_data"
    assert upstream.calls == []
    miss = await p.handle(call(f"{ACCOUNT}/positions"), upstream)  # a miss still asks OANDA
    assert not miss.from_cache and upstream.calls == [f"GET {ACCOUNT}/positions"]


async def test_the_cache_holds_at_most_max_entries(
        cache: ResponseCache, clock: FakeClock, bus: RecordingBus) -> None:
    p = policy(cache, clock, bus)
    paths = [f"/v3/accounts/{n}" for n in range(5)]
    for path in paths:
        await p.handle(call(path), Upstream([ok(path.encode())]))
    assert len(cache) == 3
    with pytest.raises(UpstreamConnectError):  # the oldest went first
        await p.handle(call(paths[0]), Upstream([UpstreamConnectError("down")]))
    newest = await p.handle(call(paths[4]), Upstream([UpstreamConnectError("down")]))
    assert newest.body == paths[4].encode()


class BrokenBackend:
    def __init__(self) -> None:
        self.calls = 0

    async def get(self, key: str) -> Any:
        self.calls += 1
        raise ConnectionError("redis is down")

    async def set(self, key: str, value: Any, ttl: float) -> Any:
        self.calls += 1
        raise ConnectionError("redis is down")

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("remote", [False, True])
async def test_a_broken_cache_never_fails_a_request(clock: FakeClock, bus: RecordingBus,
                                                    remote: bool) -> None:
    backend = BrokenBackend()
    broken = ResponseCache(backend, clock, bus, max_entries=10, remote=remote)
    p = policy(broken, clock, bus, Levels("read_only"))
    assert (await p.handle(call(ACCOUNT), Upstream([ok()]))).status == 200
    await broken.flush()
    assert [e.operation for e in bus.of(CacheFailed)] == ["get"]
    assert "redis is down" in bus.of(CacheFailed)[0].error
    await p.handle(call(ACCOUNT), Upstream([ok()]))  # within a second: the cache is skipped
    assert backend.calls == 1
    clock.advance(1.1)
    with pytest.raises(UpstreamConnectError):
        await p.handle(call(ACCOUNT), Upstream([UpstreamConnectError("down")]))
    assert backend.calls == 2 and len(bus.of(CacheFailed)) == 2


def test_entries_round_trip_through_bytes() -> None:
    entry = CachedResponse(200, b'{"a":"x\ny"}\n\x00\xff', {"Link": "<a>; rel=\"next\"\n"},
                           1.7e9 + 0.25)
    assert decode_entry(encode_entry(entry)) == entry


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["store", "fail", "wait"]), st.floats(0, 200)),
                max_size=30))
async def test_a_served_answer_is_the_latest_and_never_older_than_its_ttl(
        steps: list[tuple[str, float]]) -> None:
    clock, bus = FakeClock(), RecordingBus()
    p = policy(ResponseCache.from_config(DegradationConfig(), clock, bus), clock, bus,
               cache_default_ttl_s=100)
    latest: bytes | None = None
    for n, (op, value) in enumerate(steps):
        if op == "wait":
            clock.advance(value)
        elif op == "store":
            latest = str(n).encode()
            await p.handle(call(ACCOUNT), Upstream([ok(latest)]))
        else:
            try:
                answer = await p.handle(call(ACCOUNT), Upstream([UpstreamConnectError("x")]))
            except UpstreamConnectError:
                continue
            assert answer.body == latest and answer.cache_age_ms <= 100_000


GateCase = tuple[str, str, str, bool]
GATE: list[GateCase] = [
    ("read_only", "POST", f"{ACCOUNT}/orders", False),
    ("read_only", "PATCH", f"{ACCOUNT}/configuration", False),
    ("read_only", "PUT", f"{ACCOUNT}/orders/7", False),
    ("read_only", "PUT", f"{ACCOUNT}/positions/EUR_USD/close", True),
    ("read_only", "PUT", f"{ACCOUNT}/trades/12/close", True),
    ("read_only", "PUT", f"{ACCOUNT}/orders/7/cancel", True),
    ("read_only", "GET", f"{ACCOUNT}/summary", True),
    ("cached_data", "POST", f"{ACCOUNT}/orders", True),
    ("none", "POST", f"{ACCOUNT}/orders", True),
]


@pytest.mark.parametrize(("level", "method", "path", "allowed"), GATE)
async def test_read_only_refuses_writes_but_not_closing_or_cancelling(
        level: str, method: str, path: str, allowed: bool) -> None:
    gate, upstream = ReadOnlyGate(Levels(level, "breaker open")), Upstream()
    risk_reducing = PatternSet(DEFAULT_CRITICAL)(method, resolve(path).template)
    attempt: Callable[[], Any] = lambda: gate.handle(  # noqa: E731
        call(path, method, risk_reducing=risk_reducing), upstream)
    if allowed:
        assert (await attempt()).degradation == level
        assert upstream.calls == [f"{method} {path}"]
    else:
        with pytest.raises(ReadOnly) as refused:
            await attempt()
        assert refused.value.reason == "READ_ONLY" and "breaker open" in refused.value.message
        assert upstream.calls == []


async def test_the_callers_priority_alone_does_not_open_the_gate() -> None:
    gate = ReadOnlyGate(Levels("read_only"))
    with pytest.raises(ReadOnly):
        await gate.handle(call(f"{ACCOUNT}/orders", "POST", critical=True), Upstream())


async def test_the_cache_is_bounded_by_bytes_and_refuses_oversized_entries(
        clock: FakeClock, bus: RecordingBus) -> None:
    """Issue 11 #3: before, 300 distinct 650 KiB reads grew RSS from 81 to 274 MiB (bounded by
    entries only: ~6 GiB at the default 10,000)."""
    from aiocache import SimpleMemoryCache

    small = ResponseCache(SimpleMemoryCache(timeout=None), clock, bus, max_entries=10_000,
                          remote=False, max_bytes=4 << 20, max_entry_bytes=1 << 20)
    body = b"x" * (650 << 10)
    for i in range(300):
        await small.put(f"k{i}", CachedResponse(200, body, {}, clock.wall()), 60)
    assert small.bytes <= 4 << 20 and len(small) == 6  # 6 x 650 KiB fit in 4 MiB
    assert await small.get("k299") is not None and await small.get("k0") is None
    await small.put("big", CachedResponse(200, b"x" * (2 << 20), {}, clock.wall()), 60)
    assert await small.get("big") is None  # over the per-entry limit: never stored
    assert small.bytes <= 4 << 20
