"""`oanda-sidecar demo`: the simulator and the sidecar on loopback, until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import sys

from sidecar.app import App
from sidecar.config import load_config
from sidecar.errors import ConfigError
from sidecar.sim.server import Simulator

DEMO_TOKEN = "demo-token"


async def demo(*, grpc_listen: str, admin_listen: str, sim_listen: str,
               rest_listen: str = "127.0.0.1:8081") -> int:
    host, _, port = sim_listen.rpartition(":")
    sim = Simulator(token=DEMO_TOKEN)
    try:
        await sim.start(host=host, port=int(port))
    except OSError as exc:
        print(f"oanda-sidecar demo: simulator cannot listen on {sim_listen}: {exc.strerror}",
              file=sys.stderr)
        return 1
    env = {"OANDA_API_TOKEN": DEMO_TOKEN,
           "OANDA_SIDECAR__OANDA__BASE_URL": sim.url,
           "OANDA_SIDECAR__OANDA__STREAM_URL": sim.url,
           "OANDA_SIDECAR__SERVER__GRPC_LISTEN": grpc_listen,
           "OANDA_SIDECAR__SERVER__ADMIN_LISTEN": admin_listen,
           "OANDA_SIDECAR__SERVER__REST_LISTEN": rest_listen,
           "OANDA_SIDECAR__LOGGING__FORMAT": "console",
           "OANDA_SIDECAR__TELEMETRY__TRACING_ENABLED": "false"}
    config = load_config(None, env=env)
    from sidecar.observability.setup import configure_process_logging

    configure_process_logging(config)
    app = App(config)
    try:
        await app.start()
    except ConfigError as exc:
        print(f"oanda-sidecar demo: {exc}", file=sys.stderr)
        await sim.close()
        return 1
    print(_banner(app, sim), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await app.stop(5.0)
    await sim.close()
    return 0


def _banner(app: App, sim: Simulator) -> str:
    target = app.grpc_target
    grpcurl = ".venv/bin/grpcurl"
    acct = sim.account_id
    stream = ('{"path":"/v3/accounts/' + acct + '/pricing/stream",'
              '"query":{"instruments":"EUR_USD"}}')
    return f"""{app.ready_line()}
simulator (OANDA v20) at {sim.url}, account {acct}; dashboard {app.admin_url}/

Try, in another terminal:
  {grpcurl} -plaintext {target} list
  {grpcurl} -plaintext -d '{{"method":"GET","path":"/v3/accounts"}}' \\
      {target} oanda.sidecar.v1.ProxyService/Execute
  {grpcurl} -plaintext {target} oanda.sidecar.v1.ControlService/GetStatus
  {grpcurl} -plaintext -d '{stream}' \\
      {target} oanda.sidecar.v1.ProxyService/Stream
  curl -s {app.rest_url}/v3/accounts/{acct}/summary     # the OANDA REST listener
  .venv/bin/oanda-sidecar ctl --target {target} status
  curl -s -XPOST {sim.url}/_sim/faults -d '{{"kind":"status","status":503,"count":5}}'
Ctrl-C stops both."""
