"""The fronts: the gRPC servicers (proxy, control) and their proto ↔ domain converters, the
one place domain errors become gRPC status (interceptors), the OANDA REST listener (rest, and
its one place errors become OANDA-shaped HTTP answers: rest_errors), the one path calls from
either front take (front), the control token, the admin HTTP server and its dashboard."""
