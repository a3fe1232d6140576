"""The event-loop lag probe and the asyncio task gauge (sidecar/observability/runtime.py)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sidecar.clock import FakeClock
from sidecar.events import EventBus
from sidecar.observability.metrics import Metrics
from sidecar.observability.runtime import LagWindow, RuntimeMonitor, quantile


def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def test_quantile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert quantile(values, 0.5) == 50.0
    assert quantile(values, 0.99) == 99.0
    assert quantile(values, 1.0) == 100.0
    assert quantile([3.0], 0.5) == 3.0
    assert quantile([], 0.99) == 0.0


def test_window_forgets_what_is_older_than_it() -> None:
    window = LagWindow(window_s=10.0)
    window.record(100.0, 0.5)
    window.record(105.0, 0.1)
    assert window.quantile(1.0) == 0.5
    window.record(110.5, 0.2)  # 100.0 is now more than 10 s old
    assert len(window) == 2
    assert window.quantile(1.0) == 0.2
    assert window.last == 0.2


async def test_probe_measures_how_late_the_timer_fired() -> None:
    clock = FakeClock(auto_advance=False)
    metrics = Metrics(EventBus())
    monitor = RuntimeMonitor(clock, metrics.runtime, interval_s=0.1)
    probe = asyncio.ensure_future(monitor.probe())
    await asyncio.sleep(0)
    clock.advance(0.35)  # the loop was busy: the 0.1 s timer fires 0.25 s late
    assert await probe == pytest.approx(0.25)
    assert clock.sleeps == [0.1]
    values = scrape(metrics)
    assert values[("oanda_sidecar_event_loop_lag_seconds", ())] == pytest.approx(0.25)
    assert values[("oanda_sidecar_event_loop_lag_window_seconds",
                   (("quantile", "1"),))] == pytest.approx(0.25)


async def test_a_timer_on_time_is_zero_lag_and_quantiles_cover_the_window() -> None:
    clock = FakeClock()  # auto-advance: every sleep takes exactly as long as asked
    metrics = Metrics(EventBus())
    monitor = RuntimeMonitor(clock, metrics.runtime, interval_s=0.1, window_s=10.0)
    for _ in range(99):
        assert await monitor.probe() == pytest.approx(0.0, abs=1e-9)
    monitor.window.record(clock.monotonic(), 0.8)  # one spike among 100 probes
    values = scrape(metrics)
    window = "oanda_sidecar_event_loop_lag_window_seconds"
    assert values[(window, (("quantile", "0.5"),))] == pytest.approx(0.0, abs=1e-9)
    assert values[(window, (("quantile", "0.99"),))] == pytest.approx(0.0, abs=1e-9)
    assert values[(window, (("quantile", "1"),))] == 0.8
    assert clock.sleeps == [0.1] * 99


async def test_service_runs_the_probe_and_counts_tasks_until_stopped() -> None:
    clock = FakeClock(auto_advance=False)
    metrics = Metrics(EventBus())
    monitor = RuntimeMonitor(clock, metrics.runtime, interval_s=0.1)
    await monitor.start()
    idle = [asyncio.ensure_future(asyncio.Event().wait()) for _ in range(5)]
    await asyncio.sleep(0)
    for _ in range(3):
        clock.advance(0.1)
        await asyncio.sleep(0)
    assert len(monitor.window) == 3
    tasks = scrape(metrics)[("oanda_sidecar_asyncio_tasks", ())]
    assert tasks == len(asyncio.all_tasks())
    assert tasks >= 6  # the five idle ones and the probe
    await monitor.stop()
    for task in idle:
        task.cancel()
    await asyncio.gather(*idle, return_exceptions=True)
    assert scrape(metrics)[("oanda_sidecar_asyncio_tasks", ())] == tasks - 6
    clock.advance(1.0)
    await asyncio.sleep(0)
    assert len(monitor.window) == 3  # stopped: no more probes
    await monitor.stop()  # twice is harmless
