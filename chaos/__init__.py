"""`make chaos`: the sidecar, the simulator, Valkey and the telemetry receivers in their own
network namespaces, faults injected below HTTP (nftables, tc), truth read from the simulator.
See docs/chaos.md."""
