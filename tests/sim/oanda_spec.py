"""Response schemas of OANDA's v20 OpenAPI spec, made strict enough to catch drift.

The spec declares no `required` fields and allows extra properties, so a body with a misspelt
field would pass it. Here every object schema gets `additionalProperties: false`, and the
polymorphic `Transaction` and `Order` are checked against the concrete schema their `type` names
(`MARKET_ORDER` -> `MarketOrderTransaction`, `LIMIT` -> `LimitOrder`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator  # type: ignore[import-untyped]

REF = "#/components/schemas/"
GENERIC_ERROR = {"type": "object", "required": ["errorMessage"],
                 "properties": {"errorCode": {"type": "string"},
                                "errorMessage": {"type": "string"}}}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


def _dispatch(schemas: dict[str, Any], types: list[str], suffix: str) -> dict[str, Any]:
    concrete = {t: _camel(t) + suffix for t in types if _camel(t) + suffix in schemas}
    return {"type": "object", "required": ["type"],
            "properties": {"type": {"enum": sorted(concrete)}},
            "allOf": [{"if": {"properties": {"type": {"const": t}}},
                       "then": {"$ref": REF + name}} for t, name in concrete.items()]}


class OandaSpec:
    def __init__(self, folder: Path) -> None:
        doc = json.loads((folder / "v20.openapi3.json").read_text())
        self.paths: dict[str, Any] = doc["paths"]
        schemas = _strict(copy.deepcopy(doc["components"]["schemas"]))
        schemas["Transaction"] = _dispatch(schemas, schemas["TransactionType"]["enum"],
                                           "Transaction")
        schemas["Order"] = _dispatch(schemas, schemas["OrderType"]["enum"], "Order")
        self.components = {"schemas": schemas}

    def schema(self, method: str, template: str, status: int) -> dict[str, Any]:
        """The strict response schema; statuses the spec leaves without one get the generic
        `{errorCode?, errorMessage}` body of OANDA.md."""
        op = self.paths[template][method.lower()]
        response = op["responses"].get(str(status))
        assert response is not None, f"{method} {template} declares no {status}"
        content = response.get("content", {}).get("application/json")
        schema = _strict(content["schema"]) if content else _strict(GENERIC_ERROR)
        return {**schema, "components": self.components}

    def errors(self, method: str, template: str, status: int, body: Any) -> list[str]:
        validator = Draft7Validator(self.schema(method, template, status))
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validator.iter_errors(body)]
