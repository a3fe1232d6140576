"""Observability: structured logs, Prometheus metrics, OpenTelemetry traces and the dashboard's
activity, each a subscriber of bus events; `setup` builds them for the composition root."""
