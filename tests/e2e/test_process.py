"""The daemon as a process: start-up errors, the ready line, draining on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
from pathlib import Path

import aiohttp
import grpc
import pytest

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2_grpc
from sidecar.sim.server import Simulator
from tests.e2e.conftest import TOKEN
from tests.e2e.helpers import add_fault, clean_env, execute_request, free_port, sidecar_cmd


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sidecar.yaml"
    path.write_text(text)
    return path


def _serve(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*sidecar_cmd(), "serve", "--config", str(config)],
                          env=clean_env(**env), capture_output=True, text=True, timeout=60)


CONFIG_ERRORS = [
    ("unknown key", "breaker:\n  failure_treshold: 3\n", {}, "breaker.failure_treshold"),
    ("unknown section", "brakers: {}\n", {}, "brakers"),
    ("wrong type", "retry:\n  max_attempts: three\n", {}, "retry.max_attempts"),
    ("out of range", "rate_limit:\n  rate_per_s: -5\n", {}, "rate_limit.rate_per_s"),
    ("bad enum", "retry:\n  jitter: sometimes\n", {}, "retry.jitter"),
    ("bad listen", "server:\n  grpc_listen: nowhere\n", {}, "server.grpc_listen"),
    ("env override", "", {"OANDA_SIDECAR__BREAKER__FAILURE_THRESHOLD": "0"},
     "OANDA_SIDECAR__BREAKER__FAILURE_THRESHOLD"),
    ("missing token", "", {"OANDA_API_TOKEN": ""}, "OANDA_API_TOKEN"),
    ("unreadable token file", "oanda:\n  token_file: /nonexistent/token\n", {"OANDA_API_TOKEN": ""},
     "oanda.token_file"),
    ("secret in yaml", "secrets:\n  oanda_token: abc\n", {}, "secrets"),
    ("unwritable state dir", "server:\n  state_dir: /proc/no-such-dir\n", {},
     "server.state_dir"),
]


@pytest.mark.parametrize(("kind", "yaml_text", "env", "named"), CONFIG_ERRORS,
                         ids=[c[0] for c in CONFIG_ERRORS])
def test_config_errors_stop_startup_with_one_line_naming_the_key(
        tmp_path: Path, kind: str, yaml_text: str, env: dict[str, str], named: str) -> None:
    env = {"OANDA_API_TOKEN": "t", **env}
    result = _serve(_write(tmp_path, yaml_text), **env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    check = subprocess.run([*sidecar_cmd(), "check-config", "--config",
                            str(tmp_path / "sidecar.yaml")], env=clean_env(**env),
                           capture_output=True, text=True, timeout=60)
    # Issue 15: check-config refuses what serve refuses (before: "ok" without a token).
    assert check.returncode != 0 and named.split(".")[0].lower() in check.stderr.lower()


@pytest.mark.parametrize("listener", ["grpc_listen", "admin_listen", "rest_listen"])
def test_port_in_use_stops_startup_naming_the_listener(tmp_path: Path, listener: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = {"grpc_listen": free_port(), "admin_listen": free_port(),
                 "rest_listen": free_port(), listener: busy.getsockname()[1]}
        config = _write(tmp_path, f"server:\n  grpc_listen: 127.0.0.1:{ports['grpc_listen']}\n"
                                  f"  admin_listen: 127.0.0.1:{ports['admin_listen']}\n"
                                  f"  rest_listen: 127.0.0.1:{ports['rest_listen']}\n")
        result = _serve(config, OANDA_API_TOKEN="t")
    assert result.returncode != 0
    assert f"server.{listener}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


async def test_sigterm_lets_fifty_slow_calls_finish_and_exits_zero(
        tmp_path: Path, sim: Simulator) -> None:
    grpc_port, admin_port = free_port(), free_port()
    config = _write(tmp_path, f"""
server: {{grpc_listen: "127.0.0.1:{grpc_port}", admin_listen: "127.0.0.1:{admin_port}",
          rest_listen: "127.0.0.1:{free_port()}", drain_grace_s: 20}}
oanda: {{base_url: "{sim.url}", max_new_connections_per_s: 200, request_timeout_s: 10}}
telemetry: {{tracing_enabled: false}}
""")
    await add_fault(sim.url, kind="latency", latency_s=1.5)
    proc = await asyncio.create_subprocess_exec(
        *sidecar_cmd(), "serve", "--config", str(config), env=clean_env(OANDA_API_TOKEN=TOKEN),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        ready = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert b"ready" in ready
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = proxy_pb2_grpc.ProxyServiceStub(channel)
            calls = [asyncio.ensure_future(stub.Execute(execute_request("GET", "/v3/accounts"),
                                                        timeout=30)) for _ in range(50)]
            for _ in range(100):
                if len(sim.requests) >= 50:
                    break
                await asyncio.sleep(0.05)
            assert len(sim.requests) == 50
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            async with aiohttp.ClientSession() as http, http.get(
                    f"http://127.0.0.1:{admin_port}/readyz") as resp:
                assert resp.status == 503
            results = await asyncio.gather(*calls)
        assert [r.status for r in results] == [200] * 50
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
