"""`python -m chaos [--short]`: the fault schedule, its table printed and written."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from chaos import faults, report
from chaos.netns import probe
from chaos.run import Settings, run

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "chaos.md"
TOLERANCE_S = 1.0  # a loaded 2-core machine may answer a little after a deadline


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the short schedule of make test")
    parser.add_argument("--out", type=Path, default=RESULTS, help="markdown table written here")
    parser.add_argument("--keep", type=Path, default=None,
                        help="copy the run's logs and records to this directory")
    ns = parser.parse_args()
    why = probe()
    if why is not None:
        print(f"chaos: cannot run here: {why}", file=sys.stderr)
        return 2
    schedule = faults.short() if ns.short else faults.full()
    settings = Settings(gap_s=3.0, final_s=15.0) if ns.short else Settings()
    started = time.monotonic()
    result = asyncio.run(run(schedule, settings, out=ns.keep))
    table = report.markdown(result)
    took = time.monotonic() - started
    title = "short schedule" if ns.short else "full schedule"
    text = (f"# Chaos run ({title})\n\n`python -m chaos{' --short' if ns.short else ''}`, "
            f"{took:.0f} s in all, on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
            "What each column means: docs/chaos.md.\n\n" + table)
    print(text)
    failures = result.failures(TOLERANCE_S)
    for line in failures:
        print(f"FAILED: {line}")
    ns.out.write_text(text + "".join(f"\nFAILED: {line}\n" for line in failures))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
