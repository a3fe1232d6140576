"""Fixtures for the degradation end-to-end tests: the simulator, sidecars with a control token,
and a capture of every log line the sidecar writes."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import pytest
import structlog
from pydantic import SecretStr

from sidecar._gen.oanda.sidecar.v1 import control_pb2_grpc, proxy_pb2_grpc
from sidecar.app import App
from sidecar.config import LoggingConfig
from sidecar.observability.logging import configure_logging
from sidecar.sim.server import Simulator
from tests.e2e.conftest import TOKEN, make_config, sim  # noqa: F401  (the `sim` fixture)

CONTROL_TOKEN = "ctl-token-5d1e0b7a9c"
AUTH = (("authorization", f"Bearer {CONTROL_TOKEN}"),)

AppFactory = Callable[..., Awaitable[App]]


@pytest.fixture
async def app_factory(sim: Simulator) -> AsyncIterator[AppFactory]:  # noqa: F811
    apps: list[App] = []

    async def factory(*, control_token: str | None = CONTROL_TOKEN, observability: bool = True,
                      **sections: Any) -> App:
        config = make_config(sim.url, **sections)
        if control_token is not None:
            config = config.model_copy(update={"secrets": config.secrets.model_copy(
                update={"control_token": SecretStr(control_token)})})
        app = App(config)
        if observability:
            from sidecar.observability.setup import install_observability

            install_observability(app, configure_logs=False)
        await app.start()
        apps.append(app)
        return app

    yield factory
    for app in apps:
        await app.stop(0.5)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line (ours through structlog, libraries' through stdlib) at debug level."""
    stream = io.StringIO()
    configure_logging(LoggingConfig(format="json", level="debug"), [TOKEN, CONTROL_TOKEN],
                      stream=stream)
    yield stream
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "oanda-sidecar"]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()


class Stubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.proxy = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]
        self.control = control_pb2_grpc.ControlServiceStub(channel)  # type: ignore[no-untyped-call]


@pytest.fixture
async def connect() -> AsyncIterator[Callable[[App], Stubs]]:
    channels: list[grpc.aio.Channel] = []

    def open_stubs(app: App) -> Stubs:
        channel = grpc.aio.insecure_channel(app.grpc_target)
        channels.append(channel)
        return Stubs(channel)

    yield open_stubs
    for channel in channels:
        await channel.close()
