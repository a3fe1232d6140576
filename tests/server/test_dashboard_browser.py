"""The dashboard in real headless Chromium: a real breaker opening shows up within 2 s.

Screenshots land in `artifacts/` (git-ignored): dashboard-open.png and dashboard-stale.png, with
the measured delay in dashboard-timing.json.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import grpc

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2_grpc
from sidecar.events import BreakerTransition
from sidecar.sim.server import Simulator
from tests.conftest import require_tool
from tests.e2e.conftest import SidecarFactory
from tests.e2e.helpers import ROOT, add_fault, execute_request
from tests.server.chromium import Page, chromium_path, open_page

ARTIFACTS = ROOT / "artifacts"
BADGE = ("(document.querySelector('[data-breaker=\"rest\"] [data-role=\"breaker-state\"]')"
         " || {}).textContent || null")


async def wait_for(page: Page, expression: str, expected: Any, timeout_s: float) -> Any:
    """Poll `expression` in the page every 25 ms until it equals `expected`."""
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        value = await page.evaluate(expression)
        if value == expected:
            return value
        await asyncio.sleep(0.025)
    raise AssertionError(f"{expression} stayed {value!r}, expected {expected!r}")


async def test_breaker_open_shows_within_two_seconds(sim: Simulator,
                                                     sidecar_factory: SidecarFactory) -> None:
    binary = chromium_path()
    require_tool(binary is not None, "chromium not installed (Debian package `chromium`)")
    assert binary is not None
    app = await sidecar_factory(retry={"max_attempts": 1},
                                breaker={"recovery_timeout_s": 60})
    opened: list[float] = []
    app.bus.subscribe(BreakerTransition,
                      lambda e: opened.append(time.monotonic()) if e.to_state == "open" else None)
    async with open_page(binary, f"{app.admin_url}/") as page:
        await wait_for(page, BADGE, "CLOSED", timeout_s=10)  # the page is live and polling
        await add_fault(sim.url, kind="status", status=503)
        async with grpc.aio.insecure_channel(app.grpc_target) as channel:
            proxy = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]
            for _ in range(5):  # failure_threshold defaults to 5
                answer = await proxy.Execute(execute_request("GET", "/v3/accounts"))
                assert answer.status == 503
        assert len(opened) == 1, "the breaker did not open"
        await wait_for(page, BADGE, "OPEN", timeout_s=3)
        delay_s = time.monotonic() - opened[0]
        await page.screenshot(ARTIFACTS / "dashboard-open.png")
        timing = json.dumps({"breaker_open_to_badge_s": round(delay_s, 3)}) + "\n"
        await asyncio.to_thread((ARTIFACTS / "dashboard-timing.json").write_text, timing)
        assert delay_s < 2.0, f"OPEN badge after {delay_s:.2f}s"

        # The same refresh shows the error group, the alert and the error series.
        row = await page.evaluate(
            "(document.querySelector('[data-error=\"/v3/accounts 503\"]') || {}).innerText")
        assert row is not None and "HTTP 503" in row and "\t5\t" in row
        alerts = await page.evaluate("document.getElementById('alerts').innerText")
        assert "Circuit breaker 'rest' opened" in alerts
        errors_last_minute = await page.evaluate(
            "document.querySelector('[data-series=\"errors\"] .num').firstChild.textContent")
        assert errors_last_minute == "5"
        assert await page.evaluate("document.body.dataset.renderError || null") is None
        # Nothing was loaded from anywhere but the admin port.
        sources = await page.evaluate(
            "[location.href, ...performance.getEntriesByType('resource').map(e => e.name)]")
        assert all(url.startswith(app.admin_url) for url in sources), sources

        await _stale_is_shown(page)


async def _stale_is_shown(page: Page) -> None:
    """When /api/status stops answering, the page says STALE instead of showing old data."""
    await page.send("Network.enable")
    await page.send("Network.setBlockedURLs", urls=["*/api/status*"])
    await wait_for(page, "document.body.dataset.stale", "true", timeout_s=6)
    banner = await page.evaluate("document.getElementById('stale').innerText")
    assert banner.startswith("STALE")
    await page.screenshot(ARTIFACTS / "dashboard-stale.png")


async def test_page_of_a_sidecar_that_has_served_nothing(sidecar_factory: SidecarFactory) -> None:
    """No call and no alert yet: the page says so and still shows the breaker."""
    binary = chromium_path()
    require_tool(binary is not None, "chromium not installed (Debian package `chromium`)")
    assert binary is not None
    app = await sidecar_factory()
    async with open_page(binary, f"{app.admin_url}/") as page:
        await wait_for(page, BADGE, "CLOSED", timeout_s=10)
        text = await page.evaluate("document.body.innerText")
        assert "no errors recorded" in text
        assert "not available" not in text
        assert await page.evaluate("document.body.dataset.renderError || null") is None
