"""Kraken's public ticker: `GET /0/public/Ticker?pair=ETHUSD`.

A reply is always `{"error": [...], "result": {...}}`, usually with HTTP 200 even when it
failed: `EQuery:Unknown asset pair`, `EAPI:Rate limit exceeded`, `EService:Unavailable`,
`EService: Throttled: <unix time>`. The result is keyed by Kraken's canonical pair name,
which differs from the name asked for (`ETHUSD` answers as `XETHZUSD`); `c` is the last
trade `[price, lot volume]`. The ticker carries no time, so the observation is timed by the
server's HTTP `Date`.
"""

from __future__ import annotations

from typing import Any

from keepers.sources.base import Observation
from keepers.sources.errors import (
    InvalidReply,
    RateLimited,
    SourceUnavailable,
    UnknownPair,
    UpstreamError,
)
from keepers.sources.rest import RestSource, split_pair

BASE_URL = "https://api.kraken.com"
#: Kraken calls bitcoin XBT; older pairs carry X/Z prefixes in their canonical names.
KRAKEN_PAIRS: dict[str, tuple[str, str]] = {
    "BTC/USD": ("XBTUSD", "XXBTZUSD"),
    "ETH/USD": ("ETHUSD", "XETHZUSD"),
    "ETH/EUR": ("ETHEUR", "XETHZEUR"),
    "BTC/EUR": ("XBTEUR", "XXBTZEUR"),
}
_UNAVAILABLE = ("EService:Unavailable", "EService:Busy", "EGeneral:Internal error")
_RATE_LIMITED = ("EAPI:Rate limit exceeded", "EGeneral:Too many requests")


def kraken_pair(pair: str) -> tuple[str, set[str]]:
    """The name to ask for and the result keys Kraken may answer under."""
    base, quote = split_pair(pair)
    if f"{base}/{quote}" in KRAKEN_PAIRS:
        query, canonical = KRAKEN_PAIRS[f"{base}/{quote}"]
        return query, {query, canonical}
    query = base + quote
    return query, {query}


class KrakenSource(RestSource):
    """The last trade price of one Kraken pair."""

    def __init__(
        self,
        pair: str = "ETH/USD",
        *,
        base_url: str = BASE_URL,
        query: str | None = None,
        result_keys: set[str] | None = None,
        **options: Any,
    ):
        default_query, default_keys = kraken_pair(pair)
        self.query = query or default_query
        self.result_keys = result_keys or (default_keys if query is None else {query})
        super().__init__(f"kraken:{self.query}", base_url, **options)

    def observe(self) -> Observation:
        reply = self._get("/0/public/Ticker", {"pair": self.query})
        body = reply.body
        if not isinstance(body, dict):
            raise InvalidReply(self.name, "reply is not a JSON object")
        listed = body.get("error", [])
        if not isinstance(listed, list):
            raise InvalidReply(self.name, "reply's error field is not a list")
        errors = [str(e) for e in listed if str(e).startswith("E")]  # W...: warnings
        if errors:
            self._raise_error(errors[0])
        if reply.status >= 400:
            raise UpstreamError(self.name, f"HTTP {reply.status}")
        result = body.get("result")
        if not isinstance(result, dict) or not result:
            raise InvalidReply(self.name, "reply has no result")
        keys = set(result)
        if len(keys) != 1 or not keys <= self.result_keys:
            raise UnknownPair(self.name, f"answered for {sorted(keys)}")
        ticker = result[keys.pop()]
        last = ticker.get("c") if isinstance(ticker, dict) else None
        if not isinstance(last, list) or not last:
            raise InvalidReply(self.name, "ticker has no last trade")
        return self._observation(last[0], reply.date)

    def _raise_error(self, error: str) -> None:
        compact = error.replace(" ", "")
        if compact.startswith("EQuery:Unknownassetpair"):
            raise UnknownPair(self.name, error)
        if compact.startswith("EService:Throttled:"):
            until = compact.rpartition(":")[2]
            wait = int(until) - self._clock() if until.isdigit() else None
            raise RateLimited(self.name, error, wait)
        if any(compact.startswith(e.replace(" ", "")) for e in _RATE_LIMITED):
            raise RateLimited(self.name, error)
        if any(compact.startswith(e.replace(" ", "")) for e in _UNAVAILABLE):
            raise SourceUnavailable(self.name, error)
        raise UpstreamError(self.name, error)
