"""oanda-sidecar: a resilience sidecar between trading code and OANDA's v20 REST API."""

__version__ = "0.1.0"
