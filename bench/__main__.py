"""`python -m bench [--smoke] [--out FILE] [--subjects a,b]`: run, print, write Markdown."""

from __future__ import annotations

import os

# The harness spawns processes while gRPC channels are open: no fork handlers are needed.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import argparse
import asyncio
import sys
from pathlib import Path

import uvloop

from bench import report, runner
from bench.subjects import EXTRA_KINDS, KINDS

LATEST = Path(__file__).resolve().parent / "results" / "latest.md"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true",
                        help="every phase for a fraction of a second (a check, not figures)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"Markdown file to write (default {LATEST}; none with --smoke)")
    parser.add_argument("--subjects", default=",".join(KINDS),
                        help=f"comma-separated subset of {','.join(KINDS)}")
    ns = parser.parse_args(argv)
    kinds = tuple(k for k in ns.subjects.split(",") if k)
    unknown = [k for k in kinds if k not in KINDS + EXTRA_KINDS]
    if unknown:
        parser.error(f"unknown subjects: {', '.join(unknown)}")
    ns.kinds = kinds
    if ns.out is None and not ns.smoke:
        ns.out = LATEST
    return ns


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["streams"]:  # the stream hub's figures (bench/streams.py)
        from bench import streams

        return streams.main(args[1:])
    ns = parse(argv)
    plan = runner.SMOKE if ns.smoke else runner.FULL
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop:
        results = loop.run(runner.run(plan, ns.kinds))
    text = report.render(results)
    print(text)
    if ns.out is not None:
        ns.out.parent.mkdir(parents=True, exist_ok=True)
        ns.out.write_text(text)
        print(f"bench: written to {ns.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
