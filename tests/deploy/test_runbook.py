"""docs/runbook.md: every grpcurl command in it runs, in document order, against a real sidecar.

Each command is taken from the markdown's fenced code blocks, its `kubectl exec ... --` prefix
is stripped (kubectl runs the rest as an argv in the container, with no shell: so does this
test), `grpcurl` becomes the real binary, the address the test sidecar's, and `CONTROL_TOKEN`
(which the pod sets from the Secret) is set to the token in the file the sidecar was started
with. The sidecar's config is loaded with `load_config`, so the token is read from that file as
in the pod.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from sidecar._gen.oanda.sidecar.v1 import control_pb2 as cpb
from sidecar._gen.oanda.sidecar.v1 import control_pb2_grpc, proxy_pb2_grpc
from sidecar.app import App
from sidecar.config import load_config
from sidecar.sim.server import Simulator
from tests.deploy.helpers import ROOT, env_of, one, rendered, sidecar_config, sidecar_container
from tests.e2e.conftest import TEST_CONFIG, TOKEN, merge
from tests.e2e.helpers import add_fault, clean_env, clear_faults, execute_request, grpcurl_path

RUNBOOK = ROOT / "docs" / "runbook.md"
PREFIX = "kubectl exec -n trading deploy/trading-bot -c oanda-sidecar --"
ADDRESS = "127.0.0.1:50051"
HEADER = "authorization: Bearer ${CONTROL_TOKEN}"
CONTROL = "oanda.sidecar.v1.ControlService/"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Command:
    text: str
    argv: list[str]  # after the `kubectl exec ... --` prefix

    @property
    def method(self) -> str:
        return next((a for a in self.argv if "/" in a and not a.startswith("{")), "list")

    @property
    def request(self) -> dict[str, Any]:
        data = self.argv[self.argv.index("-d") + 1] if "-d" in self.argv else "{}"
        parsed: dict[str, Any] = json.loads(data)
        return parsed


def grpcurl_commands(markdown: str) -> list[Command]:
    """Every command in a fenced block that runs grpcurl, continuation lines joined."""
    commands = []
    for block in FENCE.findall(markdown):
        for line in block.replace("\\\n", " ").splitlines():
            if "grpcurl" in line:
                argv = shlex.split(line)
                prefix = shlex.split(PREFIX)
                assert argv[:len(prefix)] == prefix, f"not `{PREFIX} grpcurl ...`: {line}"
                commands.append(Command(" ".join(line.split()), argv[len(prefix):]))
    return commands


COMMANDS = grpcurl_commands(RUNBOOK.read_text())


def test_runbook_commands_match_the_live_deployment() -> None:
    objs = rendered("overlays/live")
    sidecar = sidecar_container(objs)
    _, config = sidecar_config(objs)
    assert one(objs, "Deployment")["metadata"]["namespace"] == "trading"
    assert (one(objs, "Deployment")["metadata"]["name"], sidecar["name"]) == \
        ("trading-bot", "oanda-sidecar")
    assert config["server"]["grpc_listen"] == ADDRESS
    assert "secretKeyRef" in env_of(sidecar)["CONTROL_TOKEN"]
    methods = {c.method.rpartition("/")[2] for c in COMMANDS}
    assert {"GetStatus", "ResetBreaker", "SetBreakerOverride", "SetDegradation",
            "GetDegradation", "Check", "Execute", "list"} <= methods
    for command in COMMANDS:
        assert command.argv[0] == "grpcurl" and ADDRESS in command.argv
        if command.method.startswith(CONTROL):
            # Single-quoted in the doc, so `${CONTROL_TOKEN}` reaches grpcurl unexpanded.
            assert "-expand-headers" in command.argv, command.text
            assert command.argv[command.argv.index("-H") + 1] == HEADER, command.text


@pytest.fixture
async def sidecar(sim: Simulator, tmp_path: Path) -> AsyncIterator[App]:
    """A sidecar configured from a file with a control token file, as in the pod."""
    token_file = tmp_path / "control-token"
    token_file.write_text("runbook-control-token\n")
    data = merge(TEST_CONFIG, {"oanda": {"base_url": sim.url},
                               "server": {"control_token_file": str(token_file)},
                               "breaker": {"recovery_timeout_s": 60}})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data))
    app = App(load_config(tmp_path / "config.yaml", env={"OANDA_API_TOKEN": TOKEN}))
    await app.start()
    yield app
    await app.stop(0.5)


async def _run(command: Command, target: str, token: str) -> tuple[int, str, str]:
    argv = [grpcurl_path() if a == "grpcurl" else target if a == ADDRESS else a
            for a in command.argv]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=clean_env(CONTROL_TOKEN=token))
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _trip_breaker(app: App, sim: Simulator) -> None:
    """Make the `rest` breaker open, then heal OANDA: the situation the reset section is for."""
    await add_fault(sim.url, kind="status", status=503)
    async with grpc.aio.insecure_channel(app.grpc_target) as channel:
        stub = control_pb2_grpc.ControlServiceStub(channel)  # type: ignore[no-untyped-call]
        proxy = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]
        metadata = (("authorization", "Bearer runbook-control-token"),)
        for _ in range(10):
            try:
                await proxy.Execute(execute_request("GET", "/v3/accounts"))
            except grpc.aio.AioRpcError:
                pass
            status = await stub.GetStatus(cpb.GetStatusRequest(), metadata=metadata)
            if _rest(status.breakers) == cpb.BREAKER_STATE_OPEN:
                break
        assert _rest(status.breakers) == cpb.BREAKER_STATE_OPEN
    await clear_faults(sim.url)


def _rest(breakers: Any) -> Any:
    return next(b.state for b in breakers if b.name == "rest")


def _state_of(answer: dict[str, Any]) -> str:
    return str(next(b["state"] for b in answer["breakers"] if b["name"] == "rest"))


# What each RPC's answer must show for the runbook's words to be true: (request, answer) -> ok.
CHECKS: dict[str, Callable[[dict[str, Any], dict[str, Any]], bool]] = {
    "grpc.health.v1.Health/Check": lambda req, ans: ans["status"] == "SERVING",
    "oanda.sidecar.v1.ProxyService/Execute": lambda req, ans: ans["status"] == 200,
    CONTROL + "GetStatus": lambda req, ans: ans["ready"] is True,
    CONTROL + "ResetBreaker": lambda req, ans: _state_of(ans) == "BREAKER_STATE_CLOSED",
    CONTROL + "SetBreakerOverride": lambda req, ans: _state_of(ans) == (
        "BREAKER_STATE_FORCED_OPEN" if req["override"].endswith("FORCED_OPEN")
        else "BREAKER_STATE_CLOSED"),
    CONTROL + "SetDegradation": lambda req, ans: ans.get("manual", False) == (
        req["level"] != "DEGRADATION_LEVEL_AUTOMATIC") and (
        req["level"] == "DEGRADATION_LEVEL_AUTOMATIC" or ans["level"] == req["level"]),
    CONTROL + "GetDegradation": lambda req, ans: ans["level"] == "DEGRADATION_LEVEL_READ_ONLY"
    and ans["manual"] is True,
}


async def test_every_runbook_grpcurl_command_succeeds_in_order(sidecar: App,
                                                               sim: Simulator) -> None:
    token = "runbook-control-token"
    tripped = False
    for command in COMMANDS:
        if command.method.endswith("/ResetBreaker") and not tripped:
            await _trip_breaker(sidecar, sim)
            tripped = True
        code, out, err = await _run(command, sidecar.grpc_target, token)
        assert code == 0, f"{command.text}\n{err}"
        if command.method == "list":
            assert CONTROL.rstrip("/") in out.split()
            continue
        assert CHECKS[command.method](command.request, json.loads(out)), f"{command.text}\n{out}"
    # The runbook hands everything back: no override, no manual degradation.
    status = sidecar.parts.board.snapshot()
    assert all(str(getattr(b.state, "value", b.state)) == "closed" for b in status.breakers)
    assert status.degradation is not None and not status.degradation.manual


async def test_control_commands_need_the_token_they_carry(sidecar: App) -> None:
    get_status = next(c for c in COMMANDS if c.method == CONTROL + "GetStatus")
    code, _, err = await _run(get_status, sidecar.grpc_target, "wrong-token")
    assert code != 0 and "Unauthenticated" in err
    code, _, err = await _run(get_status, sidecar.grpc_target, "runbook-control-token")
    assert code == 0, err
