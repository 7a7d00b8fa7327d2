"""Coinbase Exchange's public ticker: `GET /products/{product_id}/ticker`.

A reply: `{"ask": "...", "bid": "...", "volume": "...", "trade_id": 1, "price": "3012.45",
"size": "0.1", "time": "2026-12-06T15:00:00.123456Z"}`; `price` and `time` are the last
trade's. Errors come as `{"message": "..."}`: 404 `NotFound` for an unknown or renamed
product, 429 when rate limited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keepers.sources.base import Observation
from keepers.sources.errors import InvalidReply, UnknownPair, UpstreamError
from keepers.sources.rest import RestSource, split_pair

BASE_URL = "https://api.exchange.coinbase.com"


def coinbase_product(pair: str) -> str:
    """`"ETH/USD"` -> `"ETH-USD"`."""
    base, quote = split_pair(pair)
    return f"{base}-{quote}"


class CoinbaseSource(RestSource):
    """The last trade price of one Coinbase product."""

    def __init__(
        self,
        pair: str = "ETH/USD",
        *,
        base_url: str = BASE_URL,
        product: str | None = None,
        **options: Any,
    ):
        self.product = product or coinbase_product(pair)
        super().__init__(f"coinbase:{self.product}", base_url, **options)

    def observe(self) -> Observation:
        reply = self._get(f"/products/{self.product}/ticker")
        body = reply.body
        message = body.get("message") if isinstance(body, dict) else None
        if reply.status == 404:
            raise UnknownPair(self.name, f"product {self.product} not found ({message})")
        if reply.status >= 400:
            if isinstance(message, str) and "product" in message.lower():
                raise UnknownPair(self.name, f"HTTP {reply.status}: {message}")
            raise UpstreamError(self.name, f"HTTP {reply.status}: {message}")
        if not isinstance(body, dict):
            raise InvalidReply(self.name, "ticker is not a JSON object")
        return self._observation(body.get("price"), self._trade_time(body.get("time")))

    def _trade_time(self, value: object) -> int:
        if not isinstance(value, str):
            raise InvalidReply(self.name, "ticker has no trade time")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidReply(self.name, f"trade time {value[:40]!r} is not ISO 8601") from None
        if parsed.tzinfo is None:
            raise InvalidReply(self.name, f"trade time {value[:40]!r} has no time zone")
        return int(parsed.timestamp())
