"""`python -m soak [--minutes M] [--warmup W] [--out FILE]`; env SOAK_MINUTES, SOAK_WARMUP_MINUTES.

Exit 0: every slope flat and every check passed; 1: a slope not flat or a check failed (the
report says which); 2: the harness itself failed (a process did not start, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import uvloop

from soak.report import Run, render
from soak.run import soak

OUT = Path(__file__).resolve().parents[1] / "bench" / "results" / "soak.md"


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"soak: {name}={raw!r} is not a number of minutes") from None


def parse(argv: list[str] | None) -> argparse.Namespace:
    minutes = _float_env("SOAK_MINUTES", 30.0)
    parser = argparse.ArgumentParser(prog="python -m soak")
    parser.add_argument("--minutes", type=float, default=minutes)
    parser.add_argument("--warmup", type=float,
                        default=_float_env("SOAK_WARMUP_MINUTES", min(5.0, minutes / 6)),
                        help="minutes left out of the slopes (default 5, or a sixth of a "
                             "shorter run)")
    parser.add_argument("--fault-every", type=float, default=150.0, help="seconds")
    parser.add_argument("--first-fault", type=float, default=60.0, help="seconds")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds")
    parser.add_argument("--churn-every", type=float, default=20.0, help="seconds")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    ns = parser.parse_args(argv)
    if ns.minutes <= 0 or not 0 <= ns.warmup < ns.minutes:
        parser.error("need minutes > 0 and 0 <= warmup < minutes")
    return ns


def raw(run: Run) -> dict[str, Any]:
    """The samples, tallies and faults, for another look (written beside the report)."""
    return {"minutes": run.minutes, "warmup_min": run.warmup_min, "cycle_min": run.cycle_min,
            "samples": [dataclasses.asdict(s) for s in run.samples],
            "outcomes_by_minute": {str(m): dict(c) for m, c in sorted(run.tally.items())},
            "faults": [dataclasses.asdict(f) for f in run.faults], "problems": run.problems}


def main(argv: list[str] | None = None) -> int:
    ns = parse(argv)
    print(f"soak: {ns.minutes:g} min (warm-up {ns.warmup:g}), report -> {ns.out}",
          file=sys.stderr, flush=True)
    try:
        run = uvloop.run(soak(ns.minutes, ns.warmup, fault_every_s=ns.fault_every,
                              first_fault_s=ns.first_fault, sample_every_s=ns.sample_every,
                              churn_every_s=ns.churn_every, quiet=ns.quiet))
    except Exception:
        traceback.print_exc()
        return 2
    text = render(run)
    print(text)
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    ns.out.write_text(text)
    ns.out.with_suffix(".json").write_text(json.dumps(raw(run), indent=1) + "\n")
    return 0 if run.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
