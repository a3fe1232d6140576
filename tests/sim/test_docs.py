"""docs/simulator.md says what the simulator does: the request-log fields, /_sim/state, the
demo's token, the calendar answer."""

from __future__ import annotations

import re
from pathlib import Path

from sidecar.demo import DEMO_TOKEN
from sidecar.sim.server import Simulator
from tests.sim.conftest import Client

DOC = (Path(__file__).resolve().parents[2] / "docs" / "simulator.md").read_text()


def _table_after(heading: str) -> list[str]:
    """The first column of the first table after `heading`."""
    rest = DOC.split(heading, 1)[1]
    table = rest[rest.index("\n|"):].split("\n\n", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", table, re.M)


async def test_documented_request_log_fields_are_the_real_ones(client: Client) -> None:
    await client.market("1", clientExtensions={"id": "doc-1"})
    _, log, _ = await client.call("GET", "/_sim/requests")
    record = log["requests"][-1]
    assert record["clientOrderID"] == "doc-1" and record["status"] == 201
    assert _table_after("Each entry of `/_sim/requests`") == list(record)


async def test_documented_state_is_the_real_answer(client: Client, sim: Simulator) -> None:
    _, state, _ = await client.call("GET", "/_sim/state")
    example = DOC.split("`/_sim/state` answers counts", 1)[1].split("```", 2)[1]
    documented = set(re.findall(r'"(\w+)":', example))
    assert documented == set(state) | set(state["accounts"][0])
    assert state["accounts"][0]["id"] == sim.account_id


async def test_documented_calendar_answer_has_the_real_keys(client: Client) -> None:
    _, calendar, _ = await client.call("GET", "/_sim/calendar")
    after = DOC.split("curl -s $SIM/_sim/calendar\n", 1)[1]
    example = "".join(line for line in after.splitlines(keepends=True)[:3]
                      if line.startswith("#"))
    assert set(re.findall(r'"(\w+)":', example)) == set(calendar)


def test_the_tokens_are_documented() -> None:
    assert f"**`{DEMO_TOKEN}`**" in DOC
    assert "token: sim-token" in DOC
