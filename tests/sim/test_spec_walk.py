"""Every operation of OANDA's v20 spec is either implemented by the simulator or listed in
docs/simulator.md as not implemented — and then refused by name, never accepted and ignored."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp

from sidecar.sim.refusals import NOT_IMPLEMENTED, PREFIX
from sidecar.sim.server import Simulator
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "oanda-v20-openapi" / "v20.openapi3.json"
DOC = ROOT / "docs" / "simulator.md"
METHODS = ("get", "put", "post", "patch", "delete")
ROUTER_404 = "The requested resource does not exist."


def spec_operations() -> list[tuple[str, str]]:
    require_tool(SPEC.is_file(), f"OANDA spec not found at {SPEC}")
    paths = json.loads(SPEC.read_text())["paths"]
    return sorted((m.upper(), "/v3" + p) for p, ops in paths.items() for m in ops
                  if m in METHODS)


def documented_as_not_implemented() -> set[tuple[str, str]]:
    """The rows of the table under '## Not implemented' in docs/simulator.md."""
    text = DOC.read_text()
    section = text.split("## Not implemented", 1)[1].split("\n## ", 1)[0]
    return {(m, p) for m, p in re.findall(r"^\| `(GET|PUT|POST|PATCH|DELETE) (/v3/\S+)`",
                                          section, re.MULTILINE)}


def _concrete(path: str, account_id: str) -> str:
    return (path.replace("{accountID}", account_id).replace("{instrument}", "EUR_USD")
            .replace("{orderSpecifier}", "1").replace("{tradeSpecifier}", "1")
            .replace("{transactionID}", "1"))


async def _answer(session: aiohttp.ClientSession, method: str, url: str) -> tuple[int, str]:
    try:
        async with session.request(method, url, json={} if method != "GET" else None,
                                   timeout=aiohttp.ClientTimeout(total=2)) as r:
            return r.status, (await r.text())[:300]
    except TimeoutError:
        return 200, "a stream: headers came, then lines"


async def test_every_spec_operation_is_implemented_or_listed(sim: Simulator) -> None:
    ops = spec_operations()
    listed = documented_as_not_implemented()
    assert set(NOT_IMPLEMENTED) <= set(ops), "the refusal table names operations of the spec"
    implemented, refused = [], []
    headers = {"Authorization": "Bearer sim-token"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for method, path in ops:
            status, text = await _answer(session, method,
                                         sim.url + _concrete(path, sim.account_id))
            assert status != 405 and ROUTER_404 not in text, (method, path, status, text)
            (refused if PREFIX in text else implemented).append((method, path))
            if PREFIX in text:
                assert status == 404 and f"{method} {path}" in text
    assert [op for op in refused if op not in listed] == [], "refused but not documented"
    assert [op for op in listed if op not in refused] == [], \
        "documented as not implemented, but the simulator answers it"
    assert len(implemented) + len(refused) == len(ops)
    print(f"spec operations: {len(ops)}, implemented {len(implemented)}, "
          f"listed and refused {len(refused)}")
