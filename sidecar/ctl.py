"""`oanda-sidecar ctl`: the ControlService RPCs with readable output, on the typed client.

Exit codes: 0 done; 1 the sidecar refused (bad name, bad token, ...); 2 usage; 3 unreachable.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

import grpc
from oanda_sidecar_client import SidecarClient
from oanda_sidecar_client.errors import SidecarError
from oanda_sidecar_client.models import (
    BreakerOverride,
    BreakerStatus,
    DegradationSetting,
    DegradationStatus,
    SharedRateLimitStatus,
    SidecarStatus,
    StreamStatus,
)

from sidecar.vocabulary import AUTOMATIC, Level, Override

OVERRIDES = tuple(Override)
LEVELS = (*Level, AUTOMATIC)
_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def add_ctl_parser(sub: Any) -> None:
    p = sub.add_parser("ctl", help="operate a running sidecar (ControlService)")
    p.add_argument("--target", default=os.environ.get("OANDA_SIDECAR_TARGET", "127.0.0.1:50051"))
    p.add_argument("--token-file", default=os.environ.get("OANDA_SIDECAR_CONTROL_TOKEN_FILE"),
                   help="file holding the control token, when the sidecar requires one")
    p.add_argument("--timeout", type=float, default=5.0)
    ops = p.add_subparsers(dest="op", required=True)
    ops.add_parser("status", help="breakers, limiter, degradation, upstream")
    ops.add_parser("watch", help="follow the status live (WatchStatus) until Ctrl-C")
    r = ops.add_parser("reset", help="reset a breaker (all when no name) to CLOSED")
    r.add_argument("name", nargs="?", default="")
    o = ops.add_parser("override", help="force a breaker open, disable it, or clear the override")
    o.add_argument("name")
    o.add_argument("mode", choices=[str(m) for m in OVERRIDES])
    d = ops.add_parser("degrade", help="hold a degradation level; 'automatic' hands control back")
    d.add_argument("level", choices=[str(level) for level in LEVELS])
    d.add_argument("--reason", default="")
    p.set_defaults(func=run_ctl)


def _token(ns: argparse.Namespace) -> str | None:
    if not ns.token_file:
        return None
    with open(ns.token_file) as f:
        return f.read().strip()


def run_ctl(ns: argparse.Namespace) -> int:
    try:
        token = _token(ns)
    except OSError as exc:
        print(f"ctl: cannot read --token-file: {exc.strerror}", file=sys.stderr)
        return 2
    with SidecarClient(ns.target, timeout=ns.timeout, control_token=token) as client:
        try:
            _OPS[ns.op](client, ns)
        except SidecarError as err:
            print(f"ctl: {err.code.name}: {err.reason}: {err.message}", file=sys.stderr)
            return 3 if err.code in _UNREACHABLE else 1
        except KeyboardInterrupt:
            return 0
    return 0


def _status(client: SidecarClient, ns: argparse.Namespace) -> None:
    print(format_status(client.get_status()))


def _watch(client: SidecarClient, ns: argparse.Namespace) -> None:
    for status in client.watch_status():
        print(f"--- {datetime.now().astimezone():%Y-%m-%d %H:%M:%S %Z} ---")
        print(format_status(status), flush=True)


def _reset(client: SidecarClient, ns: argparse.Namespace) -> None:
    print(format_breakers(client.reset_breaker(ns.name)))


def _override(client: SidecarClient, ns: argparse.Namespace) -> None:
    print(format_breakers(client.set_breaker_override(ns.name, cast(BreakerOverride, ns.mode))))


def _degrade(client: SidecarClient, ns: argparse.Namespace) -> None:
    print(format_degradation(client.set_degradation(cast(DegradationSetting, ns.level),
                                                    ns.reason)))


_OPS: dict[str, Callable[[SidecarClient, argparse.Namespace], None]] = {
    "status": _status, "watch": _watch, "reset": _reset, "override": _override,
    "degrade": _degrade}


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else "-"


def format_degradation(d: DegradationStatus) -> str:
    line = (f"degradation: {d.level.upper()} ({'manual' if d.manual else 'automatic'}) since "
            f"{_when(d.since)}{'  reason: ' + d.reason if d.reason else ''}")
    return line + (f"\n             waiting for {d.waiting_for}" if d.waiting_for else "")


def format_holds(s: SidecarStatus) -> str:
    held = [f"breaker {b.name} {b.state.upper()}" for b in s.breakers
            if b.state in ("forced_open", "disabled")]
    if s.degradation.manual:
        held.append(f"degradation {s.degradation.level.upper()}")
    kept = "kept across restarts" if s.holds_kept else "NOT kept across restarts (no state_dir)"
    return f"held:        {', '.join(held)} ({kept})" if held else "held:        nothing"


def format_decisions(s: SidecarStatus) -> str:
    if not s.recent_decisions:
        return "recent decisions: none"
    rows = [("WHEN", "CALL", "OUTCOME", "DETAIL")]
    for d in s.recent_decisions:
        call = f"{d.method} {d.endpoint}".strip() or "-"
        rows.append((_when(d.at), call, d.outcome, d.detail[:90]))
    return "recent decisions (newest first):\n" + _table(rows)


def format_breakers(breakers: Sequence[BreakerStatus]) -> str:
    rows = [("BREAKER", "STATE", "FAILURES", "NEXT PROBE", "SINCE")]
    for b in breakers:
        probe = f"{b.next_probe_in_ms / 1000:.1f}s" if b.next_probe_in_ms else "-"
        rows.append((b.name, b.state.upper(), f"{b.consecutive_failures}/{b.failure_threshold}",
                     probe, _when(b.state_since)))
    return _table(rows)


def format_status(s: SidecarStatus) -> str:
    rl, up = s.rate_limit, s.upstream
    lines = [
        f"sidecar {s.version}  ready={'yes' if s.ready else 'no'}",
        "",
        format_breakers(s.breakers),
        "",
        format_degradation(s.degradation),
        f"rate limit:  {rl.rate_per_s:g}/s of {rl.configured_rate_per_s:g}/s, burst {rl.burst:g},"
        f" tokens {rl.tokens:.1f}, queued {rl.queued_normal} normal + {rl.queued_critical} "
        f"critical, rejected {rl.rejected_total}",
        *([_shared_line(rl.shared)] if rl.shared is not None else []),
        f"upstream:    {up.health.upper()}  error rate {up.recent_error_rate:.0%}"
        f"  last success {_when(up.last_success)}  last error {_when(up.last_error)} "
        f"{up.last_error_message}",
        format_holds(s),
        "",
        format_decisions(s),
    ]
    if s.streams:
        lines += ["", format_streams(s.streams)]
    return "\n".join(lines)


def _shared_line(shared: SharedRateLimitStatus) -> str:
    state = "shared" if shared.healthy else "FALLBACK (local rate)"
    return (f"  shared:    {shared.backend} {state}, key {shared.key_hash}, "
            f"errors {shared.errors_total}, since {_when(shared.since)}")


def format_streams(streams: Sequence[StreamStatus]) -> str:
    rows = [("STREAM", "ACCOUNT", "INSTRUMENTS", "STATE", "SUBS", "RECONNECTS", "LAST TX",
             "LAST MESSAGE")]
    for st in streams:
        rows.append((st.stream, st.account, ",".join(st.instruments) or "-", st.state.upper(),
                     str(st.subscribers), str(st.reconnects), st.last_transaction_id or "-",
                     _when(st.last_message_at)))
    return _table(rows)


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)
