"""The tree stays legible: modules <= 300 lines, functions <= 40 lines in sidecar/ (STYLE.md).

Generated code (`sidecar/_gen`) is excluded. A function's length runs from its `def` (decorators
excluded) to its last line, docstring and comments included.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for p in (ROOT / "sidecar").rglob("*.py") if "_gen" not in p.parts)
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 40


def test_there_are_modules_to_check() -> None:
    assert len(SOURCES) > 40


def test_no_module_is_longer_than_300_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in SOURCES
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_is_longer_than_40_lines() -> None:
    long: dict[str, int] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = length
    assert long == {}
