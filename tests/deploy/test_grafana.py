"""The Grafana dashboard in deploy/ reads only metrics a real sidecar exposes."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import grpc

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2_grpc
from sidecar.sim.server import Simulator
from tests.e2e.conftest import SidecarFactory
from tests.e2e.helpers import ROOT, add_fault, execute_request

DASHBOARD = ROOT / "deploy" / "grafana" / "oanda-sidecar-dashboard.json"
METRIC = re.compile(r"\b(oanda_sidecar_[A-Za-z0-9_]+)\b")
SELECTOR = re.compile(r"\b(oanda_sidecar_[A-Za-z0-9_]+)\{([^}]*)\}")
BY = re.compile(r"\bby\s*\(([^)]*)\)")
# Labels Prometheus adds at scrape time, and the histogram bucket label.
SCRAPE_LABELS = {"instance", "job", "le"}


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def expressions(dash: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in all_panels(dash["panels"]) for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        query = var.get("query")
        if var["type"] == "query":
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


async def exposed_metrics(app_url: str) -> tuple[set[str], dict[str, set[str]]]:
    """Names a scrape of /metrics can return (samples, plus every declared family expanded to
    its series names) and the label names seen per series name."""
    async with aiohttp.ClientSession() as session, session.get(f"{app_url}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    names: set[str] = set()
    labels: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
            names.update(name + s for s in suffixes)
        elif line and not line.startswith("#"):
            name, _, rest = line.partition("{")
            name = name.split(" ")[0]
            names.add(name)
            seen = labels.setdefault(name, set())
            seen.update(re.findall(r'(\w+)="', rest.rpartition("}")[0]))
    return names, labels


async def some_traffic(app_grpc: str, sim_url: str) -> None:
    """Waits for tokens, a retried 503 and plain successes, so histograms have samples."""
    async with grpc.aio.insecure_channel(app_grpc) as channel:
        proxy = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]
        calls = [proxy.Execute(execute_request("GET", "/v3/accounts")) for _ in range(3)]
        assert [r.status for r in await asyncio.gather(*calls)] == [200, 200, 200]
        await add_fault(sim_url, kind="status", status=503, count=1)
        answer = await proxy.Execute(execute_request("GET", "/v3/accounts"))
        assert (answer.status, answer.attempts) == (200, 2)


def test_panel_ids_are_unique_and_every_query_uses_the_datasource_variable() -> None:
    dash = load()
    ids = [p["id"] for p in all_panels(dash["panels"])]
    assert len(ids) == len(set(ids)) and len(ids) > 10
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in all_panels(dash["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_the_dashboard_covers_every_contract_metric() -> None:
    used = {m for e in expressions(load()) for m in METRIC.findall(e)}
    contract = ["requests_total", "attempts_total", "retries_total", "breaker_state",
                "breaker_transitions_total", "ratelimit_wait_seconds_bucket",
                "ratelimit_rejected_total", "degradation_level", "upstream_latency_seconds_bucket",
                "alerts_sent_total"]
    assert {f"oanda_sidecar_{m}" for m in contract} <= used


async def test_every_expression_reads_metrics_and_labels_the_sidecar_exposes(
        sim: Simulator, sidecar_factory: SidecarFactory) -> None:
    app = await sidecar_factory(retry={"max_attempts": 2},
                                rate_limit={"rate_per_s": 40, "burst": 1})
    await some_traffic(app.grpc_target, sim.url)
    names, labels = await exposed_metrics(app.admin_url)
    # The traffic above really produced the series the latency and wait panels read.
    assert {"oanda_sidecar_upstream_latency_seconds_bucket",
            "oanda_sidecar_ratelimit_wait_seconds_bucket", "oanda_sidecar_retries_total"} <= set(
        labels)
    for expr in expressions(load()):
        used = METRIC.findall(expr)
        assert used, f"no sidecar metric in {expr!r}"
        unknown = set(used) - names
        assert not unknown, f"{expr!r} reads metrics the sidecar does not expose: {unknown}"
        known = SCRAPE_LABELS.union(*(labels.get(m, set()) for m in used))
        if all(m in labels for m in used):  # label names can be checked once samples exist
            for metric, matchers in SELECTOR.findall(expr):
                for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers):
                    assert label in known, f"{metric} has no label {label!r}"
            for group in BY.findall(expr):
                for label in (x.strip() for x in group.split(",")):
                    assert label in known, f"{expr!r} groups by unknown label {label!r}"
