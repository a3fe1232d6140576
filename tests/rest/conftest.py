"""Fixtures for the REST listener: the real simulator, the real sidecar, clients over HTTP/1.1.

`listener` is a sidecar whose REST listener (`server.rest_listen`) fronts the simulator; bots
use `BOT_TOKEN`, a placeholder the simulator would refuse — the sidecar sends its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sidecar.app import App
from sidecar.sim.server import Simulator
from tests.e2e.conftest import (  # noqa: F401  (fixtures)
    TOKEN,
    SidecarFactory,
    sidecar_factory,
    sim,
)

BOT_TOKEN = "placeholder-token-of-the-bot"
# Fast order resolution: OANDA's lag allowance and the resolve timeout kept short.
ORDERS: dict[str, Any] = {"lookup_lag_s": 0.3, "resolve_timeout_s": 3.0}


@pytest.fixture
async def listener(sim: Simulator, sidecar_factory: SidecarFactory) -> App:  # noqa: F811
    app: App = await sidecar_factory(oanda={"stream_url": sim.url}, orders=ORDERS)
    return app


@pytest.fixture
async def http(listener: App) -> AsyncIterator[aiohttp.ClientSession]:
    """A bot's HTTP session on the listener, with its own (placeholder) token."""
    headers = {"Authorization": f"Bearer {BOT_TOKEN}"}
    async with aiohttp.ClientSession(base_url=listener.rest_url, headers=headers) as session:
        yield session
