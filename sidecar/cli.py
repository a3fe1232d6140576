"""Command-line entry points: serve, sim, demo, ctl, check-config."""

from __future__ import annotations

import os

# gRPC's C core writes its own unstructured lines to stderr (a failed bind prints one before our
# one-line reason). Quiet by default; GRPC_VERBOSITY=debug brings them back. Read at import.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import uvloop

from sidecar.config import Config, load_config, preflight
from sidecar.errors import ConfigError


def _run(coro: Coroutine[Any, Any, int]) -> int:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _fail(message: str) -> int:
    print(f"oanda-sidecar: {message}", file=sys.stderr)
    return 2


async def _wait_for_signal() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve(config: Config) -> int:
    from sidecar.app import App
    from sidecar.observability.setup import configure_process_logging

    configure_process_logging(config)
    app = App(config)
    try:
        await app.start()
    except ConfigError as exc:
        await app.stop(0)
        print(f"oanda-sidecar: {exc}", file=sys.stderr)
        return 1
    print(app.ready_line(), flush=True)
    await _wait_for_signal()
    grace = config.server.drain_grace_s
    logging.getLogger("sidecar.app").info("draining: not ready, in-flight calls have %gs", grace)
    await app.stop()
    logging.getLogger("sidecar.app").info("stopped")
    return 0


def cmd_serve(ns: argparse.Namespace) -> int:
    try:
        config = load_config(ns.config)
        preflight(config)
    except ConfigError as exc:
        return _fail(str(exc))
    return _run(serve(config))


def cmd_check_config(ns: argparse.Namespace) -> int:
    try:
        config = load_config(ns.config)
        preflight(config)  # the same refusals as `serve`
    except ConfigError as exc:
        return _fail(str(exc))
    print(f"{ns.config}: ok (grpc {config.server.grpc_listen}, admin "
          f"{config.server.admin_listen}, upstream {config.oanda.base_url})")
    return 0


def cmd_sim(ns: argparse.Namespace) -> int:
    from sidecar.sim.calendar import MarketCalendar
    from sidecar.sim.server import run_simulator

    host, _, port = ns.listen.rpartition(":")
    try:
        calendar = MarketCalendar.parse(ns.market_hours)
    except ValueError as exc:
        return _fail(f"--market-hours: {exc}")
    try:
        _run(_until_signal(run_simulator(host, int(port), token=ns.token,
                                         rate_limit_per_s=ns.rate_limit_per_s,
                                         accounts=ns.accounts, seed=ns.seed,
                                         calendar=calendar, gsl_mode=ns.gsl_mode,
                                         state_file=ns.state_file)))
    except OSError as exc:
        return _fail(f"--listen {ns.listen}: {exc.strerror or exc}")
    return 0


async def _until_signal(coro: Coroutine[Any, Any, Any]) -> int:
    task = asyncio.ensure_future(coro)
    waiter = asyncio.ensure_future(_wait_for_signal())
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    for t in (task, waiter):
        t.cancel()
    # Let the simulator close (and save its state) before the loop ends: a task still
    # cleaning up when asyncio.run returns is cancelled a second time, mid-cleanup.
    await asyncio.gather(task, waiter, return_exceptions=True)
    if task in done and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    return 0


def cmd_demo(ns: argparse.Namespace) -> int:
    from sidecar.demo import demo

    return _run(demo(grpc_listen=ns.grpc_listen, admin_listen=ns.admin_listen,
                     sim_listen=ns.sim_listen, rest_listen=ns.rest_listen))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oanda-sidecar", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the sidecar daemon")
    p.add_argument("--config", required=True, help="YAML config file")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("check-config", help="validate a config file")
    p.add_argument("--config", required=True)
    p.set_defaults(func=cmd_check_config)
    p = sub.add_parser("sim", help="run the OANDA v20 simulator alone")
    p.add_argument("--listen", default="127.0.0.1:8080")
    p.add_argument("--token", default=os.environ.get("OANDA_API_TOKEN", "sim-token"))
    p.add_argument("--rate-limit-per-s", type=int, default=120,
                   help="requests per token in any sliding second before 429 (OANDA: 120)")
    p.add_argument("--accounts", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="prices and fault ratios are seeded")
    p.add_argument("--market-hours", default="weekend",
                   help="weekend (closed Fri 21:00-Sun 21:00 UTC), always, "
                        "or 'fri 22:00-sun 22:00'")
    p.add_argument("--gsl-mode", default="DISABLED",
                   choices=("DISABLED", "ALLOWED", "REQUIRED"),
                   help="the accounts' guaranteedStopLossOrderMode")
    p.add_argument("--state-file", type=Path, default=None,
                   help="keep the accounts across restarts: read at start, written at exit")
    p.set_defaults(func=cmd_sim)
    p = sub.add_parser("demo", help="the simulator and the sidecar in one command")
    p.add_argument("--grpc-listen", default="127.0.0.1:50051")
    p.add_argument("--admin-listen", default="127.0.0.1:9464")
    p.add_argument("--sim-listen", default="127.0.0.1:8080")
    p.add_argument("--rest-listen", default="127.0.0.1:8081",
                   help="the OANDA REST listener, for v20 / oandapyV20 bots ('' turns it off)")
    p.set_defaults(func=cmd_demo)
    from sidecar.ctl import add_ctl_parser

    add_ctl_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    result: int = ns.func(ns)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
