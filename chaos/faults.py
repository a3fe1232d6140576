"""The fault schedule: each fault is applied, held, cleared, and then left to heal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaos.run import Stage

Step = Callable[["Stage"], Awaitable[None]]


@dataclass(frozen=True)
class Fault:
    name: str
    what: str  # one line for the docs and the table's legend
    hold_s: float  # how long the fault lasts (where it has a length of its own)
    apply: Step
    clear: Step


def _nft(peer: str, rule: str) -> tuple[Step, Step]:
    async def apply(stage: Stage) -> None:
        stage.topo.nft(peer, rule)

    async def clear(stage: Stage) -> None:
        stage.topo.nft_clear(peer)

    return apply, clear


def blackhole(seconds: float) -> Fault:
    return Fault(f"black hole {seconds:g} s", "every packet between the sidecar and the "
                 "simulator dropped (nft drop), both ways", seconds, *_nft("sim", "drop"))


def tcp_reset(seconds: float) -> Fault:
    return Fault("TCP resets", "every established TCP segment between the sidecar and the "
                 "simulator answered with a reset (nft reject with tcp reset), both ways",
                 seconds, *_nft("sim", "ct state established reject with tcp reset"))


def loss(percent: int, seconds: float) -> Fault:
    return Fault(f"{percent}% loss", f"{percent}% of packets dropped at random each way "
                 "(nft numgen random mod 100)", seconds,
                 *_nft("sim", f"numgen random mod 100 < {percent} drop"))


def bandwidth(rate: str, seconds: float) -> Fault:
    async def apply(stage: Stage) -> None:
        stage.topo.shape("sim", rate)

    async def clear(stage: Stage) -> None:
        stage.topo.unshape("sim")

    return Fault(f"bandwidth {rate}/s", f"the sidecar-simulator link squeezed to {rate}/s "
                 "each way (tc tbf)", seconds, apply, clear)


def sidecar_kill(down_s: float) -> Fault:
    async def apply(stage: Stage) -> None:
        # Order answers take 0.3 s longer, so that the kill finds orders in flight.
        stage.notes["latency"] = await stage.sim.fault(
            kind="latency", latency_s=0.3, match={"method": "POST",
                                                  "path": "/v3/accounts/*/orders"})
        await asyncio.sleep(1.5)
        await stage.children["sidecar"].kill()
        await asyncio.sleep(down_s)
        await stage.children["sidecar"].start()

    async def clear(stage: Stage) -> None:
        await stage.sim.clear_fault(stage.notes.pop("latency"))

    return Fault("sidecar SIGKILL", "the sidecar killed (SIGKILL) with orders in flight "
                 f"(answers slowed by 0.3 s), restarted {down_s:g} s later", 0.0, apply, clear)


def sim_restart() -> Fault:
    async def apply(stage: Stage) -> None:
        await stage.children["sim"].stop()
        await stage.children["sim"].start()

    async def clear(stage: Stage) -> None:
        return None

    return Fault("simulator restart", "the simulator stopped (SIGTERM) and started again "
                 "with its state kept (--state-file)", 0.0, apply, clear)


def redis_kill(down_s: float) -> Fault:
    async def apply(stage: Stage) -> None:
        await stage.children["redis"].kill()
        await asyncio.sleep(down_s)
        await stage.children["redis"].start()

    async def clear(stage: Stage) -> None:
        return None

    return Fault("Redis SIGKILL", f"Valkey killed (SIGKILL), restarted {down_s:g} s later "
                 "(append-only file kept)", 0.0, apply, clear)


def telemetry_blackhole(seconds: float, upstream_s: float = 8.0) -> Fault:
    async def apply(stage: Stage) -> None:
        stage.topo.nft("obs", "drop")
        await asyncio.sleep(2.0)
        stage.topo.nft("sim", "drop")  # the breaker opens: alerts to receivers out of reach
        await asyncio.sleep(upstream_s)
        stage.topo.nft_clear("sim")
        await asyncio.sleep(max(0.0, seconds - 2.0 - upstream_s))

    async def clear(stage: Stage) -> None:
        stage.topo.nft_clear("obs")

    return Fault("OTLP + alerts black hole", f"every packet to the OTLP collector and the "
                 f"PagerDuty/Slack receivers dropped (nft drop) for {seconds:g} s, with an "
                 f"{upstream_s:g} s black hole of the simulator inside it so that alerts are "
                 "raised while their receivers are out of reach", 0.0, apply, clear)


def full() -> list[Fault]:
    return [blackhole(5), blackhole(60), tcp_reset(6), loss(5, 20), loss(20, 20),
            loss(50, 20), bandwidth("64kbit", 20), sidecar_kill(2), sim_restart(),
            redis_kill(5), telemetry_blackhole(20)]


def short() -> list[Fault]:
    return [blackhole(5), tcp_reset(6), loss(20, 8), sidecar_kill(2)]
