"""The fronts: the gRPC servicers (proxy, control) and their proto ↔ domain converters, the
one place domain errors become gRPC status (interceptors), the control token, the admin HTTP
server and its dashboard."""
