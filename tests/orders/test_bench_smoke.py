"""`python -m bench.orders --smoke` runs end to end (a check of the harness, not figures)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_orders_benchmark_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "bench.orders", "--smoke"], cwd=ROOT,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "| sidecar |" in out and "| bare proxy |" in out
    assert "| 1 s |" in out and "p50, first" in out
