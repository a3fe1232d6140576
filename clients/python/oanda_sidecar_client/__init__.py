"""Typed client for oanda-sidecar."""
