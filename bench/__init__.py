"""`make bench`: the sidecar measured side by side with the bare floor and with Envoy.

Topology (all on 127.0.0.1, every part its own process so that no part's CPU is charged to
another's event loop):

    load generator (this process)  ──►  subject process  ──►  upstream process
                                         bare proxy |           minimal responder (latency)
                                         sidecar    |           simulator (behaviour)
                                         envoy      |           OTLP sink (tracing on)

`sidecar` is driven over gRPC Execute, `rest` is the same daemon driven at its OANDA REST
listener over HTTP/1.1 (the same aiohttp client as `direct` and `envoy`).

`direct` has no subject process: the client talks to the upstream itself (the floor of one HTTP
hop). Modules: `load` (closed- and open-loop generators), `clients`, `procs` (processes and
/proc figures), `subjects`, `envoy`, `scenarios` (behaviour), `perf`, `report`.
"""
