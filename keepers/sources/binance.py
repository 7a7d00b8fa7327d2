"""Binance's public price ticker: `GET /api/v3/ticker/price?symbol=ETHUSDT`.

A reply: `{"symbol": "ETHUSDT", "price": "3012.45000000"}`. The spot endpoint carries no
time, so the observation is timed by the server's HTTP `Date` (the futures shape's `time`,
in milliseconds, is used when present). Errors come as `{"code": -1121, "msg": "Invalid
symbol."}` with a 4xx; 429 (and 418, an IP ban for calling on after a 429) carry
`Retry-After`. Binance spot has no USD pairs: name the stablecoin you mean (ETH/USDT,
ETH/USDC) and mind its basis.
"""

from __future__ import annotations

from typing import Any

from keepers.sources.base import Observation
from keepers.sources.errors import InvalidReply, RateLimited, UnknownPair, UpstreamError
from keepers.sources.rest import RestSource, split_pair

BASE_URL = "https://api.binance.com"
#: Binance error codes: unknown symbol, illegal characters in it, too many requests.
INVALID_SYMBOL = -1121
BAD_SYMBOL_CHARS = -1100
TOO_MANY_REQUESTS = -1003


def binance_symbol(pair: str) -> str:
    """`"ETH/USDT"` -> `"ETHUSDT"`."""
    base, quote = split_pair(pair)
    return base + quote


class BinanceSource(RestSource):
    """The last price of one Binance spot symbol."""

    def __init__(
        self,
        pair: str = "ETH/USDT",
        *,
        base_url: str = BASE_URL,
        symbol: str | None = None,
        **options: Any,
    ):
        self.symbol = symbol or binance_symbol(pair)
        super().__init__(f"binance:{self.symbol}", base_url, **options)

    def observe(self) -> Observation:
        reply = self._get("/api/v3/ticker/price", {"symbol": self.symbol})
        body = reply.body
        if isinstance(body, dict) and "code" in body and "msg" in body:
            self._raise_coded(body["code"], body["msg"])
        if reply.status >= 400:
            raise UpstreamError(self.name, f"HTTP {reply.status}")
        if not isinstance(body, dict):
            raise InvalidReply(self.name, "ticker is not a JSON object")
        if body.get("symbol") != self.symbol:
            raise UnknownPair(self.name, f"answered for {body.get('symbol')!r}")
        millis = body.get("time")
        timestamp = int(millis) // 1000 if isinstance(millis, int) else reply.date
        return self._observation(body.get("price"), timestamp)

    def _raise_coded(self, code: object, msg: object) -> None:
        detail = f"code {code}: {msg}"
        if code in (INVALID_SYMBOL, BAD_SYMBOL_CHARS):
            raise UnknownPair(self.name, detail)
        if code == TOO_MANY_REQUESTS:
            raise RateLimited(self.name, detail)
        raise UpstreamError(self.name, detail)
