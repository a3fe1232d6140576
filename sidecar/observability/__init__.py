"""Observability: structured logs, Prometheus metrics, OpenTelemetry traces, the dashboard's
activity and the recent decisions of the status, each a subscriber of bus events; `setup`
builds them for the composition root."""
