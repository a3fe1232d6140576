"""The periodic faults: one every `every_s`, cycling through the simulator's fault kinds.

Each but one is injected through the simulator's fault API (docs/simulator.md, docs/streams.md) and
cleared by its own duration (or a count of orders). A burst is bounded in time, not
in answers: an open breaker lets one probe a minute through, so "the next 30 answers" would
keep it open for half an hour. The other is a restart of the simulator process with its
accounts kept (`--state-file`); with a simulator that cannot keep them it is left out, as a
restarted one would be a different broker (transaction IDs from 1 again), which OANDA never is.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

ORDERS = {"method": "POST", "path": "/v3/accounts/*/orders"}
RESTART = "simulator restart (SIGTERM, same port, accounts kept with --state-file)"

# (name, fault specs): what a trading sidecar meets in a week, a few minutes apart.
FAULTS: tuple[tuple[str, tuple[dict[str, Any], ...]], ...] = (
    ("5xx burst (every call answered 503 for 5 s)",
     ({"kind": "status", "status": 503, "duration_s": 5},)),
    ("latency +300 ms on half the calls, 20 s",
     ({"kind": "latency", "latency_s": 0.3, "ratio": 0.5, "duration_s": 20},)),
    ("stream cut (mid-line, every stream connection)",
     ({"kind": "stream_drop", "count": 10},)),
    ("connection resets on 20 % of calls, 10 s",
     ({"kind": "reset", "ratio": 0.2, "duration_s": 10},)),
    ("orders committed then dropped (2) or 503 (2)",
     ({"kind": "drop_after_commit", "count": 2, "match": ORDERS},
      {"kind": "commit_then_503", "count": 2, "match": ORDERS})),
    ("stream stall 15 s (heartbeats too)", ({"kind": "stream_stall", "duration_s": 15},)),
    ("HTML 502s from a gateway on half the calls, 5 s",
     ({"kind": "status", "status": 502, "body": "html", "ratio": 0.5, "duration_s": 5},)),
    ("maintenance outage 3 s", ({"kind": "outage", "duration_s": 3},)),
    (RESTART, ()),  # not through the fault API: the harness restarts the process
)


@dataclass(frozen=True, slots=True)
class Injected:
    t_min: float
    name: str
    ok: bool
    detail: str = ""


async def inject(session: aiohttp.ClientSession, sim_url: str,
                 specs: tuple[dict[str, Any], ...]) -> str:
    """Add every spec; '' when all were accepted, else what the simulator answered."""
    problems = []
    for spec in specs:
        async with session.post(f"{sim_url}/_sim/faults", json=spec) as resp:
            if resp.status not in (200, 201):
                problems.append(f"{spec['kind']}: {resp.status} {(await resp.text())[:200]}")
    return "; ".join(problems)


async def schedule(sim_url: str, started: float, log: list[Injected], *,
                   first_after_s: float = 60.0, every_s: float = 120.0,
                   restart: Callable[[], Awaitable[None]] | None = None) -> None:
    """Inject the faults in turn until cancelled, recording each in `log`."""
    loop = asyncio.get_running_loop()
    faults = [f for f in FAULTS if f[1] or restart is not None]
    async with aiohttp.ClientSession() as session:
        await asyncio.sleep(first_after_s)
        for name, specs in itertools.cycle(faults):
            at = (loop.time() - started) / 60
            try:
                if specs:
                    problem = await inject(session, sim_url, specs)
                else:
                    assert restart is not None
                    await restart()
                    problem = ""
            except (OSError, aiohttp.ClientError, RuntimeError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            log.append(Injected(at, name, not problem, problem))
            await asyncio.sleep(every_s)
