"""What the exchange REST sources share: a name, a `JsonGetter`, a freshness limit and a clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import httpx

from keepers.sources.base import Observation, check_fresh
from keepers.sources.errors import InvalidReply
from keepers.sources.http import JsonGetter, JsonReply
from keepers.sources.numbers import PriceFormatError, parse_price

#: Exchange tickers change every second in liquid markets; a minute-old one is stale.
DEFAULT_MAX_AGE = 60


def split_pair(pair: str) -> tuple[str, str]:
    """`"ETH/USD"` -> `("ETH", "USD")`.

    Raises:
        ValueError: not BASE/QUOTE in letters and digits.
    """
    base, sep, quote = pair.upper().partition("/")
    if not sep or not base.isalnum() or not quote.isalnum():
        raise ValueError(f"pair {pair!r} is not BASE/QUOTE, e.g. ETH/USD")
    return base, quote


class RestSource:
    """Base of the exchange sources; subclasses implement `observe`."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        max_age: int = DEFAULT_MAX_AGE,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ):
        if max_age <= 0 or timeout <= 0:
            raise ValueError("max_age and timeout must be positive")
        self._name = name
        self.max_age = max_age
        self._clock = clock
        self._http = JsonGetter(name, base_url, timeout, clock, transport)

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> JsonReply:
        return self._http.get(path, params)

    def _observation(self, raw_price: object, timestamp: int | None) -> Observation:
        """The observation of a raw price and its timestamp, checked for form and age."""
        try:
            price = parse_price(raw_price)
        except PriceFormatError as exc:
            raise InvalidReply(self.name, str(exc)) from None
        if timestamp is None:
            raise InvalidReply(self.name, "reply carries no timestamp")
        check_fresh(self.name, timestamp, int(self._clock()), self.max_age)
        return Observation(self.name, price, timestamp)
