"""End-to-end fixtures: the real simulator and the real sidecar on loopback, in this process.

`sidecar_factory(**overrides)` builds a sidecar whose upstream is the simulator; overrides are
config sections as dicts, e.g. `sidecar_factory(breaker={"failure_threshold": 2})`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from pydantic import SecretStr

from sidecar._gen.oanda.sidecar.v1 import control_pb2_grpc, proxy_pb2_grpc
from sidecar.app import App
from sidecar.config import Config
from sidecar.sim.server import Simulator
from tests.conftest import SIM_TOKEN

TOKEN = SIM_TOKEN

# Short timeouts so that end-to-end tests of failures stay quick.
TEST_CONFIG: dict[str, Any] = {
    "server": {"grpc_listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0",
               "rest_listen": "127.0.0.1:0", "drain_grace_s": 5},
    "oanda": {"request_timeout_s": 2.0, "max_new_connections_per_s": 100},
    "retry": {"base_delay_s": 0.02, "max_delay_s": 0.2},
    "breaker": {"recovery_timeout_s": 0.5},
    "logging": {"format": "json"},
    "telemetry": {"tracing_enabled": False},
    # Alerts page the same on every weekday (the weekly-closure rule has its own test).
    "alerts": {"quiet_during_weekly_closure": False},
}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def make_config(sim_url: str, token: str | None = TOKEN, *, control_token: str | None = None,
                **sections: Any) -> Config:
    data = merge(TEST_CONFIG, {"oanda": {"base_url": sim_url}})
    config = Config.model_validate(merge(data, sections))
    return config.model_copy(update={"secrets": config.secrets.model_copy(update={
        "oanda_token": SecretStr(token) if token else None,
        "control_token": SecretStr(control_token) if control_token else None})})


@pytest.fixture
async def sim(sim_token: str, sim_seed: int) -> AsyncIterator[Simulator]:
    """The one simulator fixture: a real OANDA v20 simulator on loopback, per test."""
    simulator = Simulator(token=sim_token, seed=sim_seed)
    await simulator.start(host="127.0.0.1", port=0)
    yield simulator
    await simulator.close()


SidecarFactory = Callable[..., Awaitable[App]]


@pytest.fixture
async def sidecar_factory(sim: Simulator) -> AsyncIterator[SidecarFactory]:
    apps: list[App] = []

    async def factory(*, control_token: str | None = None, **sections: Any) -> App:
        app = App(make_config(sim.url, control_token=control_token, **sections))
        await app.start()
        apps.append(app)
        return app

    yield factory
    for app in apps:
        await app.stop(0.5)


@pytest.fixture
async def sidecar(sidecar_factory: SidecarFactory) -> App:
    return await sidecar_factory()


class Stubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.proxy = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]
        self.control = control_pb2_grpc.ControlServiceStub(channel)  # type: ignore[no-untyped-call]


@pytest.fixture
async def stubs(sidecar: App) -> AsyncIterator[Stubs]:
    async with grpc.aio.insecure_channel(sidecar.grpc_target) as channel:
        yield Stubs(channel)
