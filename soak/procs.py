"""The two processes under test: `oanda-sidecar sim` and `oanda-sidecar serve` in front of it,
on free loopback ports, and a restart of the simulator that keeps its accounts (when this
simulator has `--state-file`)."""

from __future__ import annotations

import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.procs import Proc, free_port, spawn, wait_for_line

TOKEN = "soak-oanda-token-5e1d"
# Bounds made small so that each is reached during the warm-up: the soak checks that nothing
# grows past its bound, and a 24 h bound would only be reached after the run (docs/soak.md).
CONFIG = """\
server: {{grpc_listen: "127.0.0.1:{grpc}", admin_listen: "127.0.0.1:{admin}", drain_grace_s: 5,
  rest_listen: "127.0.0.1:{rest}"}}
oanda: {{base_url: "{sim}", stream_url: "{sim}"}}
degradation: {{cache_max_bytes: 2097152}}
orders: {{max_remembered: 300}}
telemetry: {{tracing_enabled: false}}
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OANDA_SIDECAR") and k != "OANDA_API_TOKEN"}
    return {**env, "OANDA_API_TOKEN": TOKEN}


def rest_listen_known() -> bool:
    from sidecar.config import ServerConfig

    return "rest_listen" in ServerConfig.model_fields


def sim_keeps_state() -> bool:
    from sidecar.sim.server import Simulator

    return "state_file" in inspect.signature(Simulator).parameters


@dataclass(slots=True)
class Processes:
    sim: Proc
    sidecar: Proc
    sim_argv: list[str]
    workdir: Path
    sim_url: str
    grpc_port: int
    admin_port: int
    rest_port: int  # 0: this sidecar has no REST listener
    sim_restarts: int = 0

    @property
    def can_restart_sim(self) -> bool:
        return "--state-file" in self.sim_argv

    async def restart_sim(self) -> None:
        """SIGTERM (the simulator writes its state), then the same command on the same port."""
        await self.sim.stop()
        self.sim_restarts += 1
        self.sim = await spawn(f"sim-{self.sim_restarts}", self.sim_argv, self.workdir, _env())
        await wait_for_line(self.sim, "simulator listening")

    async def stop(self) -> None:
        await self.sidecar.stop()
        await self.sim.stop()


async def start_processes(workdir: Path) -> Processes:
    sim_port, grpc_port, admin_port = free_port(), free_port(), free_port()
    rest_port = free_port() if rest_listen_known() else 0
    argv = [sys.executable, "-m", "sidecar", "sim", "--listen", f"127.0.0.1:{sim_port}",
            "--token", TOKEN, "--market-hours", "always", "--seed", "18"]
    if sim_keeps_state():
        argv += ["--state-file", str(workdir / "sim-state")]
    sim = await spawn("sim", argv, workdir, _env())
    await wait_for_line(sim, "simulator listening")
    sim_url = f"http://127.0.0.1:{sim_port}"
    text = CONFIG.format(grpc=grpc_port, admin=admin_port, sim=sim_url, rest=rest_port)
    if not rest_port:
        text = text.replace(f',\n  rest_listen: "127.0.0.1:{rest_port}"', "")
    config = workdir / "sidecar.yaml"
    config.write_text(text)
    sidecar = await spawn("sidecar", [sys.executable, "-m", "sidecar", "serve", "--config",
                                      str(config)], workdir, _env())
    try:
        await wait_for_line(sidecar, "oanda-sidecar")
    except BaseException:
        await sim.stop()
        raise
    return Processes(sim, sidecar, argv, workdir, sim_url, grpc_port, admin_port, rest_port)
