"""OANDA's stream host down for longer than the breaker allows: subscribers are told, the
`stream` breaker opens, alerts go out; when it is back the stream resumes, gap-filled."""

from __future__ import annotations

import grpc
from pydantic import SecretStr

from sidecar._gen.oanda.sidecar.v1 import control_pb2, control_pb2_grpc, proxy_pb2_grpc
from sidecar.alerting import Alerting
from sidecar.clock import SystemClock
from sidecar.config import Secrets
from sidecar.events import BreakerTransition, StreamChanged
from sidecar.sim.server import Simulator
from tests.alerting.receivers import PagerDutyReceiver
from tests.e2e.conftest import SidecarFactory
from tests.e2e.helpers import add_fault, clear_faults
from tests.streams.conftest import (
    STREAM_CONFIG,
    Collector,
    add_transactions,
    line,
    log_ids,
    sim_fault,
    tx_path,
    until,
)


async def test_stream_host_down_opens_the_breaker_alerts_and_resumes_gap_filled(
        sim: Simulator, sidecar_factory: SidecarFactory) -> None:
    sim.streams.heartbeat_s = 0.3
    pd = await PagerDutyReceiver().start()
    app = await sidecar_factory(
        oanda={"stream_url": sim.url},
        breaker={"failure_threshold": 3, "recovery_timeout_s": 0.5},
        alerts={"stream_down_s": 1.0, "aggregation_window_s": 0,
                "pagerduty": {"events_url": pd.url}},
        **STREAM_CONFIG)
    changes: list[StreamChanged] = []
    opened: list[BreakerTransition] = []
    app.bus.subscribe(StreamChanged, changes.append)
    app.bus.subscribe(BreakerTransition, lambda e: opened.append(e) if e.to_state == "open"
                      else None)
    alerting = Alerting(app.config.alerts, Secrets(pagerduty_routing_key=SecretStr("rk")),
                        app.bus, SystemClock(), source="test", backoff_base_s=0.01)
    await alerting.start()
    try:
        async with grpc.aio.insecure_channel(app.grpc_target) as channel:
            stub = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]
            control = control_pb2_grpc.ControlServiceStub(channel)  # type: ignore[no-untyped-call]
            c = Collector(stub, tx_path(sim))
            await until(lambda: bool(c.of("SIDECAR_CONNECTED")))
            add_transactions(sim, 5)
            await until(lambda: len(c.ids()) == 5)
            # The host goes away: connections are refused, the open one is dropped.
            await add_fault(sim.url, kind="outage", mode="refuse",
                            match={"path": "*/transactions/stream"})
            await sim_fault(sim, kind="stream_drop", path="*/transactions/stream")
            await until(lambda: bool(c.of("SIDECAR_RECONNECTING")), timeout=3)
            add_transactions(sim, 7)  # while the stream is down
            await until(lambda: any(e.breaker == "stream" for e in opened), timeout=10)
            status = await control.GetStatus(control_pb2.GetStatusRequest())
            breaker = {b.name: b for b in status.breakers}["stream"]
            assert breaker.state == control_pb2.BREAKER_STATE_OPEN
            [stream] = status.streams
            assert stream.state == control_pb2.STREAM_STATE_RECONNECTING
            assert stream.subscribers == 1 and stream.HasField("down_since")
            try:
                await pd.wait_until(lambda r: any(k.endswith("breaker_open:stream")
                                                  for k in _keys(r)), within_s=5)
            except TimeoutError:
                raise AssertionError(f"alerts: {_keys(pd)} {alerting.recent()}") from None
            try:
                await pd.wait_until(lambda r: any("/stream_down:transactions" in k
                                                  for k in _keys(r)), within_s=5)
            except TimeoutError:
                raise AssertionError(f"alerts: {_keys(pd)} {alerting.recent()}") from None
            assert c.error is None  # the subscriber stayed connected throughout
            await clear_faults(sim.url)
            await until(lambda: len(c.ids()) == 12, timeout=10)
            assert c.ids() == log_ids(sim)[2:]
            assert all(m.replayed for m in c.messages if m.transaction_id
                       and int(m.transaction_id) > int(log_ids(sim)[6]))
            reasons = [line(m)["reason"] for m in c.of("SIDECAR_RECONNECTING")]
            assert "circuit_open" in reasons
            assert c.of("SIDECAR_CONNECTED")[-1].line and line(
                c.of("SIDECAR_CONNECTED")[-1])["reason"] == "reconnected"
            await pd.wait_until(lambda r: any(
                q.body.get("event_action") == "resolve"
                and "stream_down" in str(q.body.get("dedup_key", "")) for q in r.requests),
                within_s=5)
            await c.close()
    finally:
        await alerting.stop()
        await pd.close()
    assert any(e.state == "connected" and e.reason == "reconnected" for e in changes)


def _keys(receiver: PagerDutyReceiver) -> set[str]:
    return {str(r.body.get("dedup_key", "")) for r in receiver.requests}

