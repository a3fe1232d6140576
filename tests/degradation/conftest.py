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

from sidecar.app import App
from sidecar.config import LoggingConfig
from sidecar.observability.logging import configure_logging
from tests.e2e.conftest import (  # noqa: F401  (fixtures)
    TOKEN,
    SidecarFactory,
    Stubs,
    sidecar_factory,
    sim,
)

CONTROL_TOKEN = "ctl-token-5d1e0b7a9c"
AUTH = (("authorization", f"Bearer {CONTROL_TOKEN}"),)

AppFactory = Callable[..., Awaitable[App]]


@pytest.fixture
def app_factory(sidecar_factory: SidecarFactory) -> AppFactory:  # noqa: F811
    """The e2e sidecar factory with the control token on by default."""

    async def factory(*, control_token: str | None = CONTROL_TOKEN, **sections: Any) -> App:
        return await sidecar_factory(control_token=control_token, **sections)

    return factory


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
