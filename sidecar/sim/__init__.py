"""The OANDA v20 simulator: a stateful fake REST API with fault injection (docs/simulator.md)."""
