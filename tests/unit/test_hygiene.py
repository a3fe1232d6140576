"""Hygiene: buf lint (STANDARD), current generated code, the endpoint table, ruff."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_current() -> None:
    result = subprocess.run([sys.executable, "scripts/genproto.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_buf_lint_standard_rules_pass() -> None:
    buf = shutil.which("buf", path=str(Path(sys.executable).parent)) or shutil.which("buf")
    require_tool(buf is not None, "buf not installed (PyPI buf-bin)")
    assert buf is not None
    result = subprocess.run([buf, "lint"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    require_tool(ruff is not None, "ruff not installed")
    assert ruff is not None
    result = subprocess.run([ruff, "check", "sidecar", "clients", "tests", "scripts", "bench"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_configuration_page_is_current() -> None:
    result = subprocess.run([sys.executable, "scripts/configdoc.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
