"""The endpoint table: every path of OANDA's spec, templates for labels, bounded caching."""

from __future__ import annotations

import json
from pathlib import Path

from sidecar.upstream.endpoints import TEMPLATES, UNKNOWN_TEMPLATE, PatternSet, resolve
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]


def test_endpoint_table_covers_every_path_of_oandas_spec() -> None:
    spec_file = ROOT.parent / "shared" / "oanda-v20-openapi" / "v20.openapi3.json"
    require_tool(spec_file.exists(), f"OANDA spec not found at {spec_file}")
    paths = {"/v3" + p for p in json.loads(spec_file.read_text())["paths"]}
    assert paths == set(TEMPLATES)


def test_the_most_literal_template_wins() -> None:
    assert resolve("/v3/accounts/A/transactions/sinceid").template == \
        "/v3/accounts/{accountID}/transactions/sinceid"
    assert resolve("/v3/accounts/A/transactions/42").template == \
        "/v3/accounts/{accountID}/transactions/{transactionID}"
    assert resolve("/v3/accounts/A/nothing").template == UNKNOWN_TEMPLATE
    assert resolve("/v3/accounts//summary").template == UNKNOWN_TEMPLATE  # empty segment


def test_long_paths_are_resolved_without_being_remembered() -> None:
    from sidecar.upstream import endpoints

    endpoints._resolve_cached.cache_clear()
    long_path = "/v3/accounts/" + "a" * 2000 + "/summary"
    assert resolve(long_path).template == "/v3/accounts/{accountID}/summary"
    assert endpoints._resolve_cached.cache_info().currsize == 0
    resolve("/v3/accounts/A/summary")
    assert endpoints._resolve_cached.cache_info().currsize == 1


def test_patterns_match_method_and_template() -> None:
    critical = PatternSet(["PUT */trades/{tradeSpecifier}/close", "*/cancel"])
    assert critical("PUT", "/v3/accounts/{accountID}/trades/{tradeSpecifier}/close")
    assert not critical("GET", "/v3/accounts/{accountID}/trades/{tradeSpecifier}/close")
    assert critical("PUT", "/v3/accounts/{accountID}/orders/{orderSpecifier}/cancel")
