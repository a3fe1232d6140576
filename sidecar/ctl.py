"""`oanda-sidecar ctl`: the ControlService RPCs with readable output.

Exit codes: 0 done; 1 the sidecar refused (bad name, bad token, ...); 2 usage; 3 unreachable.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import grpc

from sidecar._gen.oanda.sidecar.v1 import control_pb2 as cpb
from sidecar._gen.oanda.sidecar.v1 import control_pb2_grpc
from sidecar._gen.oanda.sidecar.v1 import proxy_pb2 as ppb

OVERRIDES = {"none": cpb.BREAKER_OVERRIDE_NONE, "forced_open": cpb.BREAKER_OVERRIDE_FORCED_OPEN,
             "disabled": cpb.BREAKER_OVERRIDE_DISABLED}
LEVELS = {"none": ppb.DEGRADATION_LEVEL_NONE, "cached_data": ppb.DEGRADATION_LEVEL_CACHED_DATA,
          "read_only": ppb.DEGRADATION_LEVEL_READ_ONLY,
          "automatic": ppb.DEGRADATION_LEVEL_AUTOMATIC}


def add_ctl_parser(sub: Any) -> None:
    p = sub.add_parser("ctl", help="operate a running sidecar (ControlService)")
    p.add_argument("--target", default=os.environ.get("OANDA_SIDECAR_TARGET", "127.0.0.1:50051"))
    p.add_argument("--token-file", default=os.environ.get("OANDA_SIDECAR_CONTROL_TOKEN_FILE"),
                   help="file holding the control token, when the sidecar requires one")
    p.add_argument("--timeout", type=float, default=5.0)
    ops = p.add_subparsers(dest="op", required=True)
    ops.add_parser("status", help="breakers, limiter, degradation, upstream")
    r = ops.add_parser("reset", help="reset a breaker (all when no name) to CLOSED")
    r.add_argument("name", nargs="?", default="")
    o = ops.add_parser("override", help="force a breaker open, disable it, or clear the override")
    o.add_argument("name")
    o.add_argument("mode", choices=sorted(OVERRIDES))
    d = ops.add_parser("degrade", help="hold a degradation level; 'automatic' hands control back")
    d.add_argument("level", choices=sorted(LEVELS))
    d.add_argument("--reason", default="")
    p.set_defaults(func=run_ctl)


def _metadata(ns: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    if not ns.token_file:
        return ()
    with open(ns.token_file) as f:
        return (("authorization", f"Bearer {f.read().strip()}"),)


def run_ctl(ns: argparse.Namespace) -> int:
    try:
        metadata = _metadata(ns)
    except OSError as exc:
        print(f"ctl: cannot read --token-file: {exc.strerror}", file=sys.stderr)
        return 2
    with grpc.insecure_channel(ns.target) as channel:
        stub = control_pb2_grpc.ControlServiceStub(channel)  # type: ignore[no-untyped-call]
        kw = {"timeout": ns.timeout, "metadata": metadata}
        try:
            if ns.op == "status":
                print(format_status(stub.GetStatus(cpb.GetStatusRequest(), **kw)))
            elif ns.op == "reset":
                resp = stub.ResetBreaker(cpb.ResetBreakerRequest(name=ns.name), **kw)
                print(format_breakers(resp.breakers))
            elif ns.op == "override":
                resp = stub.SetBreakerOverride(cpb.SetBreakerOverrideRequest(
                    name=ns.name, override=OVERRIDES[ns.mode]), **kw)
                print(format_breakers(resp.breakers))
            elif ns.op == "degrade":
                d = stub.SetDegradation(cpb.SetDegradationRequest(
                    level=LEVELS[ns.level], reason=ns.reason), **kw)
                print(format_degradation(d))
        except grpc.RpcError as err:
            code = err.code()
            print(f"ctl: {code.name}: {err.details()}", file=sys.stderr)
            return 3 if code in (grpc.StatusCode.UNAVAILABLE,
                                 grpc.StatusCode.DEADLINE_EXCEEDED) else 1
    return 0


def _level(value: int) -> str:
    return ppb.DegradationLevel.Name(value).removeprefix("DEGRADATION_LEVEL_")


def _ago(ts: Any) -> str:
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC") if ts.seconds else "-"


def format_degradation(d: Any) -> str:
    return (f"degradation: {_level(d.level)} ({'manual' if d.manual else 'automatic'}) since "
            f"{_ago(d.since)}{'  reason: ' + d.reason if d.reason else ''}")


def format_breakers(breakers: Any) -> str:
    rows = [("BREAKER", "STATE", "FAILURES", "NEXT PROBE", "SINCE")]
    for b in breakers:
        probe = f"{b.next_probe_in_ms / 1000:.1f}s" if b.next_probe_in_ms else "-"
        rows.append((b.name, cpb.BreakerState.Name(b.state).removeprefix("BREAKER_STATE_"),
                     f"{b.consecutive_failures}/{b.failure_threshold}", probe,
                     _ago(b.state_since)))
    return _table(rows)


def format_status(s: cpb.GetStatusResponse) -> str:
    d, rl, up = s.degradation, s.rate_limit, s.upstream
    lines = [
        f"sidecar {s.version}  ready={'yes' if s.ready else 'no'}",
        "",
        format_breakers(s.breakers),
        "",
        format_degradation(d),
        f"rate limit:  {rl.rate_per_s:g}/s of {rl.configured_rate_per_s:g}/s, burst {rl.burst:g},"
        f" tokens {rl.tokens:.1f}, queued {rl.queued_normal} normal + {rl.queued_critical} "
        f"critical, rejected {rl.rejected_total}",
        f"upstream:    {cpb.UpstreamHealth.Name(up.health).removeprefix('UPSTREAM_HEALTH_')}"
        f"  error rate {up.recent_error_rate:.0%}  last success {_ago(up.last_success)}"
        f"  last error {_ago(up.last_error)} {up.last_error_message}",
    ]
    return "\n".join(lines)


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)
