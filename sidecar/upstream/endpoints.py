"""OANDA's v20 REST endpoints: the table that turns raw paths into bounded templates.

Templates (`/v3/accounts/{accountID}/orders`) label metrics and traces and select per-endpoint
limits, cache TTLs and the critical lane; a raw account ID never becomes a label.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

# Every path of OANDA's v20 spec (tests check this list against the spec).
TEMPLATES: tuple[str, ...] = (
    "/v3/accounts",
    "/v3/accounts/{accountID}",
    "/v3/accounts/{accountID}/summary",
    "/v3/accounts/{accountID}/instruments",
    "/v3/accounts/{accountID}/configuration",
    "/v3/accounts/{accountID}/changes",
    "/v3/accounts/{accountID}/candles/latest",
    "/v3/accounts/{accountID}/pricing",
    "/v3/accounts/{accountID}/pricing/stream",
    "/v3/accounts/{accountID}/instruments/{instrument}/candles",
    "/v3/accounts/{accountID}/orders",
    "/v3/accounts/{accountID}/pendingOrders",
    "/v3/accounts/{accountID}/orders/{orderSpecifier}",
    "/v3/accounts/{accountID}/orders/{orderSpecifier}/cancel",
    "/v3/accounts/{accountID}/orders/{orderSpecifier}/clientExtensions",
    "/v3/accounts/{accountID}/trades",
    "/v3/accounts/{accountID}/openTrades",
    "/v3/accounts/{accountID}/trades/{tradeSpecifier}",
    "/v3/accounts/{accountID}/trades/{tradeSpecifier}/close",
    "/v3/accounts/{accountID}/trades/{tradeSpecifier}/clientExtensions",
    "/v3/accounts/{accountID}/trades/{tradeSpecifier}/orders",
    "/v3/accounts/{accountID}/positions",
    "/v3/accounts/{accountID}/openPositions",
    "/v3/accounts/{accountID}/positions/{instrument}",
    "/v3/accounts/{accountID}/positions/{instrument}/close",
    "/v3/accounts/{accountID}/transactions",
    "/v3/accounts/{accountID}/transactions/{transactionID}",
    "/v3/accounts/{accountID}/transactions/idrange",
    "/v3/accounts/{accountID}/transactions/sinceid",
    "/v3/accounts/{accountID}/transactions/stream",
    "/v3/instruments/{instrument}/candles",
    "/v3/instruments/{instrument}/orderBook",
    "/v3/instruments/{instrument}/positionBook",
)

UNKNOWN_TEMPLATE = "/v3/{unknown}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    template: str
    known: bool = True


def _compile() -> dict[int, list[tuple[tuple[str | None, ...], Endpoint]]]:
    by_len: dict[int, list[tuple[tuple[str | None, ...], Endpoint]]] = {}
    for template in TEMPLATES:
        parts = tuple(None if p.startswith("{") else p for p in template.split("/"))
        by_len.setdefault(len(parts), []).append((parts, Endpoint(template)))
    for entries in by_len.values():
        # The most literal template wins: `/transactions/sinceid` before `/transactions/{id}`.
        entries.sort(key=lambda e: -sum(p is not None for p in e[0]))
    return by_len


_TABLE = _compile()
_UNKNOWN = Endpoint(UNKNOWN_TEMPLATE, known=False)
# What a call carries before the validator has resolved its path.
UNRESOLVED = _UNKNOWN
# Paths longer than this are never cached: the cache must not hold what a caller chooses.
_CACHED_PATH_MAX = 256


def resolve(path: str) -> Endpoint:
    """The endpoint a (validated) path belongs to; unknown paths share one template.

    Remembered for short paths only, so the cache is bounded in bytes as well as entries."""
    if len(path) > _CACHED_PATH_MAX:
        return _resolve(path)
    return _resolve_cached(path)


def _resolve(path: str) -> Endpoint:
    parts = path.split("/")
    for literals, endpoint in _TABLE.get(len(parts), ()):
        if all(lit is None or lit == part for lit, part in zip(literals, parts, strict=True)):
            if all(part for part in parts[1:]):
                return endpoint
    return _UNKNOWN


_resolve_cached = lru_cache(maxsize=4096)(_resolve)


@dataclass(frozen=True, slots=True)
class EndpointPattern:
    """`[METHOD ]GLOB` matched against a template, e.g. `PUT */positions/{instrument}/close`."""

    method: str | None
    glob: str

    @classmethod
    def parse(cls, text: str) -> EndpointPattern:
        text = text.strip()
        method, _, rest = text.partition(" ")
        if rest and method.isalpha() and method.isupper():
            return cls(method, rest.strip())
        return cls(None, text)

    def matches(self, method: str, template: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return fnmatch.fnmatchcase(template, self.glob)

    def __str__(self) -> str:
        return f"{self.method} {self.glob}" if self.method else self.glob


class PatternSet:
    """Whether a (method, template) matches any of some patterns, decided once per pair."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self._patterns = tuple(EndpointPattern.parse(p) for p in patterns)
        self._cache: dict[tuple[str, str], bool] = {}

    def __call__(self, method: str, template: str) -> bool:
        key = (method, template)
        hit = self._cache.get(key)
        if hit is None:
            hit = any(p.matches(method, template) for p in self._patterns)
            if len(self._cache) < 4096:  # methods x templates is bounded; this is a backstop
                self._cache[key] = hit
        return hit


DEFAULT_CRITICAL: tuple[str, ...] = (
    "PUT /v3/accounts/{accountID}/positions/{instrument}/close",
    "PUT /v3/accounts/{accountID}/trades/{tradeSpecifier}/close",
    "PUT /v3/accounts/{accountID}/orders/{orderSpecifier}/cancel",
)
