"""The admin server's dashboard page and the status providers behind /api/status."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sidecar.events import EventBus
from sidecar.server.admin import AdminServer
from sidecar.status import StatusBoard
from tests.e2e.helpers import ROOT

PAGE = ROOT / "sidecar" / "server" / "dashboard" / "index.html"


@pytest.fixture
async def admin() -> AsyncIterator[AdminServer]:
    server = AdminServer(StatusBoard(EventBus()))
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()


async def get(server: AdminServer, path: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{server.port}{path}") as resp:
        return resp.status, resp.headers["Content-Type"], await resp.text()


def test_the_page_needs_nothing_from_outside() -> None:
    html = PAGE.read_text()
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=|<link\b|@import|url\(", html, re.I)
    urls = set(re.findall(r"https?://[^\s\"'`)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched
    assert "fetch(\"/api/status\"" in html


async def test_root_serves_the_dashboard(admin: AdminServer) -> None:
    status, content_type, body = await get(admin, "/")
    assert status == 200 and content_type.startswith("text/html")
    assert body == PAGE.read_text()


async def test_status_merges_every_provider_and_survives_a_broken_one(
        admin: AdminServer) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("provider down")

    admin.set_extra_status(lambda: {"alerts": []})
    admin.add_extra_status(broken)
    admin.add_extra_status(lambda: {"activity": {"totals": {}}})
    status, _, body = await get(admin, "/api/status")
    assert status == 200
    payload = json.loads(body)
    assert payload["alerts"] == [] and payload["activity"] == {"totals": {}}
    assert "breakers" in payload and "version" in payload
    admin.set_extra_status()  # replaces every provider
    _, _, body = await get(admin, "/api/status")
    assert "alerts" not in json.loads(body)
